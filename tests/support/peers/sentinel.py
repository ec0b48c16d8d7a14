"""A primary, its replicas and three sentinels: real ``redis-server`` processes of the test run."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import redis

from notifier.embedded import free_port, redis_server_binary
from tests.support.harness.processes import stop_group
from tests.support.harness.wait import wait_for
from tests.support.peers.redis_server import RedisServer

MASTER = "notifier"
# Sentinel's defaults (30 s down-after) would make a test wait half a minute for a promotion.
DOWN_AFTER_MS = 1000
# How long a replica a losing sentinel had promoted stays a stray primary (docs/production.md, "Sentinel"):
# 3 s here as 10 to 30 s in production, scaled down with down-after.
FAILOVER_TIMEOUT_MS = 3000


class SentinelGroup:
    """``replicas`` replicas of one primary, watched by ``sentinels`` sentinels (quorum 2)."""

    def __init__(self, replicas: int = 2, sentinels: int = 3) -> None:
        self.nodes = [RedisServer()]
        primary = self.nodes[0].port
        self.nodes += [
            RedisServer(args=("--replicaof", "127.0.0.1", str(primary))) for _ in range(replicas)
        ]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.dir = Path(tempfile.mkdtemp(prefix="notifier-sentinels-"))
        self.sentinels: list[subprocess.Popen[bytes]] = []

    def url(self, db: int = 0) -> str:
        """``NOTIFIER_REDIS_URL`` for this group."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER}/{db}"

    def start(self) -> SentinelGroup:
        for node in self.nodes:
            node.start()
        wait_for(lambda: self._replicas_of(self.nodes[0]) == len(self.nodes) - 1,
                 what="the replicas to sync")  # fmt: skip
        for index, port in enumerate(self.sentinel_ports):
            conf = self.dir / f"sentinel-{index}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.nodes[0].port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            self.sentinels.append(
                subprocess.Popen(
                    [redis_server_binary(), str(conf), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        # Each sentinel knows the others and every replica before anything is killed.
        wait_for(self._all_known, timeout=30, what="the sentinels to find each other")
        return self

    def _sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=0.5, decode_responses=True)

    def _all_known(self) -> bool:
        try:
            return all(
                len(cast(list[Any], s.sentinel_sentinels(MASTER))) == len(self.sentinel_ports) - 1
                and len(cast(list[Any], s.sentinel_slaves(MASTER))) == len(self.nodes) - 1
                for s in map(self._sentinel, self.sentinel_ports)
            )
        except redis.RedisError:
            return False

    def _named_port(self, sentinel_port: int) -> int:
        """The port of the primary one sentinel names."""
        named = self._sentinel(sentinel_port).sentinel_get_master_addr_by_name(MASTER)
        return int(cast(tuple[str, int], named)[1])

    @staticmethod
    def _replicas_of(node: RedisServer) -> int:
        try:
            info = redis.Redis(port=node.port, socket_timeout=0.5).info("replication")
        except redis.RedisError:
            return -1
        return int(info.get("connected_slaves", 0))

    def primary(self) -> RedisServer:
        """The node the sentinels name as primary now."""
        port = self._named_port(self.sentinel_ports[0])
        return next(node for node in self.nodes if node.port == port)

    def kill_primary(self) -> tuple[RedisServer, float]:
        """SIGKILL the primary; it and the moment it died."""
        old = self.primary()
        old.kill()
        return old, time.monotonic()

    def wait_promoted(self, old: RedisServer, timeout: float = 30) -> float:
        """Wait until every sentinel names a live primary other than ``old``; when it was seen."""

        def promoted() -> bool:
            try:
                named = {self._named_port(port) for port in self.sentinel_ports}
            except (redis.RedisError, TypeError):
                return False
            if len(named) != 1 or old.port in named:
                return False
            role = redis.Redis(port=named.pop(), socket_timeout=0.5).role()
            return bool(role[0] == b"master")

        wait_for(promoted, timeout=timeout, what="the sentinels to promote a replica")
        return time.monotonic()

    @staticmethod
    def role(node: RedisServer) -> str:
        """``master`` or ``slave``, as ``node`` says of itself (``""`` while it answers not)."""
        try:
            role = redis.Redis(port=node.port, socket_timeout=0.5).role()
        except redis.RedisError:
            return ""
        return bytes(role[0]).decode()

    def pause(self, node: RedisServer, *, cut: bool = False) -> None:
        """SIGSTOP a node: it keeps its connections and answers nothing (a replica acknowledges
        nothing more). With ``cut``, the primary also drops its link, so what the primary writes
        next never reaches the replica's socket (a replica that fell behind, as on a congested
        network)."""
        assert node.process is not None
        node.process.send_signal(signal.SIGSTOP)
        if cut:
            redis.Redis(port=self.primary().port, socket_timeout=1).client_kill_filter(
                _type="replica"
            )

    def resume(self, node: RedisServer) -> None:
        assert node.process is not None
        node.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        for process in self.sentinels:
            stop_group(process, timeout=10)
        for node in self.nodes:
            if node.process is not None:
                node.process.send_signal(signal.SIGCONT)
            node.stop()
