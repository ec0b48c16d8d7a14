"""A private RabbitMQ node for the test run (the Debian package's), never the machine's own."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import kombu
import kombu.exceptions

from notifier.embedded import free_port
from tests.support.harness.processes import start_server, stop_and_remove
from tests.support.harness.wait import wait_for
from tests.support.peers import system

# The real start script. /usr/sbin/rabbitmq-server is a wrapper that, run as root, does
# ``su rabbitmq`` and ``cd /var/lib/rabbitmq``: the node would then run as another user that
# cannot write our temp dir. This one runs as whoever calls it, with the environment we give.
SERVER_SCRIPT = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
# Likewise the real rabbitmqctl, run with the node's environment (its $HOME holds the cookie).
CTL_SCRIPT = SERVER_SCRIPT.with_name("rabbitmqctl")
CTL_TIMEOUT = 60.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

NOT_INSTALLED = (
    f"RabbitMQ is not installed ({SERVER_SCRIPT} is missing): install it with "
    '`apt-get install rabbitmq-server`, or deselect these tests with `-m "not rabbitmq"`'
)


def _new_nodename() -> str:
    return f"notifier-test-{secrets.token_hex(4)}@localhost"


def _stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is stopped (state T in /proc)."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            states.append(stat.read_text().rpartition(")")[2].split()[0])
    return bool(states) and all(state == "T" for state in states)


def _two_free_ports() -> tuple[int, int]:
    """Two distinct free ports: ``free_port`` may hand out the same one twice in a row."""
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


class RabbitServer:
    """A ``rabbitmq-server`` child process with its own node name, ports and directories.

    Everything the node reads or writes lives in a fresh temp dir: the config files, the
    Mnesia/quorum/stream data, logs, the pid file and even ``$HOME`` (so the Erlang cookie is
    a new one there, not root's). Only epmd, the machine-wide Erlang port mapper, is shared;
    our node registers a name no other node uses.
    """

    def __init__(
        self, nodename: str | None = None, *, cluster: RabbitCluster | None = None
    ) -> None:
        self.port, self.dist_port = _two_free_ports()
        self.nodename = nodename or _new_nodename()
        # A node of a cluster finds the others in its config file, and shares its cookie.
        self.cluster = cluster
        self.dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}
        self.is_frozen = False  # inside frozen(): running, but answering nothing

    @property
    def url(self) -> str:
        """The broker URL; RabbitMQ lets ``guest`` in from localhost only, which is us."""
        return self.vhost_url("/")

    def vhost_url(self, vhost: str) -> str:
        """The broker URL of one virtual host (``/`` is the default one)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{quote(vhost, safe='')}"

    def ctl(self, *args: str) -> str:
        """Run ``rabbitmqctl`` against this node; its output (fails the test if it fails)."""
        done = subprocess.run(
            [str(CTL_SCRIPT), "-n", self.nodename, "-q", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=CTL_TIMEOUT,
        )
        if done.returncode != 0:
            raise AssertionError(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout

    def add_vhost(self, vhost: str) -> str:
        """A new virtual host that ``guest`` may use; its broker URL.

        Queues of one name can be of one type only in a virtual host, so a test of another
        type needs one of its own.
        """
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return self.vhost_url(vhost)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The node stopped (SIGSTOP) for the body: it takes connections and answers nothing."""
        found = subprocess.run(
            ["pgrep", "-f", f"notifier_test_node {self.nodename}"], capture_output=True, text=True
        )
        pids = [int(pid) for pid in found.stdout.split()]
        assert pids, f"no process of {self.nodename}"
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        # SIGSTOP lands on each thread as it next leaves the kernel: the body starts once every
        # thread of the VM is stopped, so nothing it does can come from the node.
        wait_for(lambda: all(_stopped(pid) for pid in pids), timeout=10, what="the node to stop")
        self.is_frozen = True
        try:
            yield
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
            self.is_frozen = False

    def ready(self, queue: str, vhost: str = "/") -> int:
        """Messages waiting in ``queue`` (a passive declare: no management plugin needed)."""
        with kombu.Connection(self.vhost_url(vhost), connect_timeout=2) as connection:
            channel: Any = connection.default_channel  # an AMQP channel (kombu types it vaguely)
            return int(channel.queue_declare(queue=queue, passive=True).message_count)

    def table(self, listing: str, vhost: str, *columns: str) -> list[list[str]]:
        """The rows of a ``rabbitmqctl list_…`` of ``vhost``, as ``columns``."""
        listed = self.ctl(listing, "-p", vhost, "--no-table-headers", *columns)
        return [line.split("\t") for line in listed.splitlines() if line.strip()]

    def queue_types(self, vhost: str = "/") -> dict[str, str]:
        """Each queue of ``vhost`` and its type (``classic``, ``quorum``)."""
        return {name: kind for name, kind in self.table("list_queues", vhost, "name", "type")}

    @property
    def log_file(self) -> Path:
        assert self.dir is not None, "RabbitServer not started"
        return self.dir / "log" / "rabbit.log"

    @property
    def output_file(self) -> Path:
        """What the start script and the VM print (boot failures often only show here)."""
        assert self.dir is not None, "RabbitServer not started"
        return self.dir / "output.log"

    def start(self) -> None:
        """Start the node and wait until it takes AMQP connections (about 60 s at most)."""
        system.require("rabbitmq", "RabbitMQ")
        if not SERVER_SCRIPT.exists():
            raise AssertionError(NOT_INSTALLED)
        if self.process is not None:
            raise AssertionError("RabbitServer already started")
        self.dir = Path(tempfile.mkdtemp(prefix="notifier-rabbitmq-"))
        env = self.env = self._environment(self._write_config(self.dir))
        try:
            self.process = start_server(
                [str(SERVER_SCRIPT)],
                output=self.output_file,
                ready=self._accepts,
                what=f"RabbitMQ on port {self.port}",
                timeout=START_TIMEOUT,
                logs=[self.log_file, self.output_file],
                cwd=self.dir,
                env=env,
            )
        except AssertionError:
            self.stop()
            raise

    def _write_config(self, base: Path) -> dict[str, str]:
        """Write the node's config files under ``base``; the variables that point at them."""
        for sub in ("mnesia", "log", "conf.d", "home"):
            (base / sub).mkdir()
        conf = base / "rabbitmq.conf"
        conf.write_text(
            "\n".join(
                [
                    f"listeners.tcp.1 = 127.0.0.1:{self.port}",
                    # Sent to every client: how start() knows that the broker answering is ours.
                    f"cluster_name = {self.cluster_name}",
                    # A busy or nearly full machine must not raise alarms that block publishing:
                    # tests publish a few small messages.
                    "disk_free_limit.absolute = 1MB",
                    "vm_memory_high_watermark.relative = 0.8",
                    "log.console = false",
                    "log.file.level = info",
                    *(self.cluster.peer_discovery() if self.cluster else []),
                    "",
                ]
            )
        )
        if self.cluster is not None:
            # Nodes of one cluster authenticate to each other (and the CLI to them) with the
            # same Erlang cookie, read from $HOME; the VM refuses a cookie others can read.
            cookie = base / "home" / ".erlang.cookie"
            cookie.write_text(self.cluster.cookie)
            cookie.chmod(0o400)
        advanced = base / "advanced.config"
        advanced.write_text("[].\n")
        plugins = base / "enabled_plugins"
        plugins.write_text("[].\n")
        # Read by the start script and by the node; the default one in /etc/rabbitmq would set
        # NODENAME and friends of the machine's own node.
        env_conf = base / "rabbitmq-env.conf"
        env_conf.write_text("")
        return {
            "RABBITMQ_CONF_ENV_FILE": str(env_conf),
            "RABBITMQ_CONFIG_FILE": str(conf),
            "RABBITMQ_CONFIG_FILES": str(base / "conf.d"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(advanced),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_LOGS": str(base / "log" / "rabbit.log"),
            "RABBITMQ_PID_FILE": str(base / "rabbit.pid"),
            "RABBITMQ_MOTD_FILE": str(base / "motd"),
        }

    def _environment(self, paths: dict[str, str]) -> dict[str, str]:
        """Ours without any RABBITMQ_*/ERL_* of the caller (they could aim at another node)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        assert self.dir is not None
        env.update(paths)
        env.update(
            {
                "HOME": str(self.dir / "home"),
                "RABBITMQ_NODENAME": self.nodename,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                # Should the VM have to start epmd itself, it listens on loopback only.
                "ERL_EPMD_ADDRESS": "127.0.0.1",
                # The node name reaches the VM through the environment only; the inert
                # user flag puts it on the command line too, for ``pgrep -f <nodename>``.
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                    "-kernel inet_dist_use_interface {127,0,0,1} "
                    f"-notifier_test_node {self.nodename}"
                ),
            }
        )
        return env

    def _accepts(self, node: subprocess.Popen[bytes]) -> bool:
        """Whether an AMQP connection succeeds now; fails the wait if the node died."""
        if node.poll() is not None:
            raise AssertionError(f"rabbitmq-server exited with {node.returncode}")
        # A plain connect first: it fails fast, while the node boots, without kombu's machinery.
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return False
        # max_retries=0 is a single attempt: with 1, kombu sleeps 2 s and tries again.
        try:
            with kombu.Connection(self.url, connect_timeout=2) as connection:
                connection.ensure_connection(max_retries=0)
                properties = connection.connection.server_properties
        except (OSError, kombu.exceptions.OperationalError):
            return False
        # Should another broker have taken the port meanwhile, it must not pass for ours.
        if properties.get("cluster_name") != self.cluster_name:
            raise AssertionError(
                f"port {self.port} answers for {properties.get('cluster_name')!r}, "
                f"not {self.cluster_name!r}"
            )
        return True

    @property
    def cluster_name(self) -> str:
        """What the node tells clients it belongs to: its cluster's name, or its own."""
        return self.cluster.name if self.cluster else self.nodename

    def kill(self) -> None:
        """SIGKILL the node (the VM and the script that started it): a machine that died."""
        assert self.process is not None, "RabbitServer not started"
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Stop the node cleanly (SIGKILL if it hangs) and remove its directory.

        SIGTERM goes to the whole process group: the start script traps it and stops the VM,
        and the VM shuts RabbitMQ down in order on it too. The final SIGKILL of the group takes
        anything still left in it (``erl_child_setup``, ``inet_gethost``) once the script is
        gone; the group's id stays reserved while any member lives, so it cannot hit others.
        """
        process, directory = self.process, self.dir
        self.process = self.dir = None
        stop_and_remove(process, directory, STOP_TIMEOUT)


@dataclass(frozen=True)
class Replicas:
    """Where a quorum queue lives: its leader, its members and which of them are up."""

    leader: str
    members: frozenset[str]
    online: frozenset[str]
    messages: int  # ready and unacknowledged


def _node_list(listed: str) -> frozenset[str]:
    """rabbitmqctl's ``[a@h, b@h]``, as a set of node names."""
    return frozenset(name.strip() for name in listed.strip("[]").split(",") if name.strip())


NET_TICKTIME = 10


class RabbitCluster:
    """Three :class:`RabbitServer` nodes started at once, which form one cluster by themselves.

    Each lists all three in its config file (peer discovery ``classic_config``): booting, a node
    joins whichever of them is up, and the first to boot, holding the discovery lock the others
    wait for, forms the cluster. Starting them in parallel costs one node's start-up, not three.
    """

    SIZE = 3

    def __init__(self) -> None:
        self.name = f"notifier-test-cluster-{secrets.token_hex(4)}"
        self.cookie = secrets.token_hex(16)
        names = [_new_nodename() for _ in range(self.SIZE)]
        self.nodes = [RabbitServer(name, cluster=self) for name in names]

    def peer_discovery(self) -> list[str]:
        """The config lines that name every node of the cluster."""
        return [
            # A node that goes silent is taken for down after about this many seconds (Erlang's
            # net ticks; 60 by default): until then the others wait for it in every operation
            # that involves it (docs/production.md, "RabbitMQ as the broker").
            f"net_ticktime = {NET_TICKTIME}",
            "cluster_formation.peer_discovery_backend = classic_config",
            # The first node to take the discovery lock finds no peer it can join (the others
            # wait for that lock) and tries again, by default ten times at 500 ms, before it
            # forms the cluster alone: 5 s for nothing when all three start at once.
            "cluster_formation.discovery_retry_limit = 1",
            "cluster_formation.discovery_retry_interval = 200",
            *(
                f"cluster_formation.classic_config.nodes.{n} = {node.nodename}"
                for n, node in enumerate(self.nodes, start=1)
            ),
        ]

    @property
    def url(self) -> str:
        """Every node's URL, ``;``-separated: kombu's failover list, as Notifier takes it."""
        return ";".join(node.url for node in self.nodes)

    def vhost_url(self, vhost: str) -> str:
        return ";".join(node.vhost_url(vhost) for node in self.nodes)

    def start(self) -> RabbitCluster:
        """Start the nodes in parallel; return once all three run as one cluster."""
        with ThreadPoolExecutor(self.SIZE) as pool:
            started = [pool.submit(node.start) for node in self.nodes]
        try:
            for future in started:
                future.result()
            wait_for(
                lambda: self.running(self.nodes[0]) == {n.nodename for n in self.nodes},
                timeout=CTL_TIMEOUT,
                what="the three nodes to run as one cluster",
            )
        except AssertionError:
            self.stop()
            raise
        return self

    def running(self, asked: RabbitServer) -> set[str]:
        """The nodes that ``asked`` sees running in its cluster."""
        status = json.loads(asked.ctl("cluster_status", "--formatter", "json"))
        return set(status["running_nodes"])

    def alive(self) -> list[RabbitServer]:
        """The nodes that run and answer (not killed, not frozen)."""
        return [
            node
            for node in self.nodes
            if node.process and node.process.poll() is None and not node.is_frozen
        ]

    def add_vhost(self, vhost: str) -> str:
        """A virtual host (on every node: they share it); its failover URL list."""
        self.nodes[0].add_vhost(vhost)
        return self.vhost_url(vhost)

    def node(self, nodename: str) -> RabbitServer:
        return next(node for node in self.nodes if node.nodename == nodename)

    def quorum(self, vhost: str) -> dict[str, Replicas]:
        """Each quorum queue of ``vhost``, as a node still alive sees it.

        RabbitMQ leaves out of its listing a queue that has no leader (one being elected).
        """
        columns = ("name", "leader", "members", "online", "messages")
        rows = self.alive()[0].table("list_queues", vhost, *columns, "type")
        return {
            name: Replicas(leader, _node_list(members), _node_list(online), int(messages))
            for name, leader, members, online, messages, kind in rows
            if kind == "quorum"
        }

    def client_ports(self, vhost: str) -> set[int]:
        """The AMQP ports of the nodes that the clients of ``vhost`` are connected to."""
        listed = self.alive()[0].ctl("list_connections", "--no-table-headers", "vhost", "port")
        rows = [line.split("\t") for line in listed.splitlines() if line.strip()]
        return {int(port) for host, port in rows if host == vhost}

    def stop(self) -> None:
        with ThreadPoolExecutor(self.SIZE) as pool:
            list(pool.map(RabbitServer.stop, self.nodes))
