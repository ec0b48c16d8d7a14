"""Reaching Redis: one server, or the primary its sentinels name; and writes that outlive it.

``NOTIFIER_REDIS_URL`` (and ``NOTIFIER_BROKER_URL``) is either a plain ``redis://`` URL or
``redis+sentinel://[:password@]host:port[,host:port…]/<master name>[/<db>]``. With sentinels,
redis-py asks them for the primary on every new connection and drops its idle connections when
the answer changes, so a promoted replica is followed without a restart (``redis/sentinel.py``).

Replication is asynchronous: a write the primary acknowledged can die with it. :class:`Replication`
closes that window for what must survive (a 202, a captcha's attempts, a cancel, a claim before a
send, the outcome after one): ``WAIT`` until ``replicas`` replicas hold everything written so far.
Redis replicates one ordered stream, so the replicas that acknowledge one write hold every write
before it, on any connection; and the sentinels promote the replica that is furthest along.

A Redis can also answer and still refuse to write (:func:`refusal`): full (``OOM``: its used
memory over ``maxmemory``, with the ``noeviction`` policy production needs), a replica
(``READONLY``), or unable to save to disk (``MISCONF``). A worker's durable write waits that out
as it waits out a silent primary; the web answers 503 naming the cause.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import redis
from redis.retry import Retry
from redis.sentinel import Sentinel

from notifier.patches.redis_sentinel import FollowingPool

T = TypeVar("T")
SENTINEL_SCHEME = "redis+sentinel://"
# Written by every confirmation: WAIT counts the replicas that hold this connection's last write.
MARK = "notifier:replicated"
# That write, made even by a full Redis: a script whose first write needs no memory (the DEL) is
# not stopped by maxmemory after it (EVAL's docs, "Execution under low memory conditions").
_MARK_PAST_FULL = "redis.call('DEL', KEYS[1]) return redis.call('INCR', KEYS[1])"


@dataclass(frozen=True)
class Refusal:
    """Redis answered, and would not write: its error's code, and why, in an operator's words."""

    code: str  # OOM, READONLY or MISCONF
    why: str

    def __str__(self) -> str:
        return f"Redis refuses writes ({self.code}): {self.why}"


# Each refusal by the words of its error: redis-py names two by class, but inside a script, or
# wrapped by kombu, only the words are left.
_REFUSALS = (
    ("used memory > 'maxmemory'", Refusal("OOM", "it is full, its used memory over maxmemory")),
    ("READONLY", Refusal("READONLY", "it is a read-only replica, not the primary")),
    ("read only replica", Refusal("READONLY", "it is a read-only replica, not the primary")),
    ("MISCONF", Refusal("MISCONF", "it cannot save to disk")),
)


def refusal(error: BaseException | None) -> Refusal | None:
    """The refusal ``error`` is (or was raised from), or None for any other error."""
    while error is not None:
        if isinstance(error, redis.ResponseError):
            found = next((r for words, r in _REFUSALS if words in str(error)), None)
            if found is not None:
                return found
        error = error.__cause__ or error.__context__
    return None


def described(error: BaseException) -> str:
    """For a log line: the refusal ``error`` is (``Redis refuses writes (OOM): …``), or its kind."""
    return str(refusal(error) or type(error).__name__)


@dataclass(frozen=True)
class RedisTarget:
    """Where Redis is: a server's URL, or sentinels and the name of the primary they watch."""

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = ""
    db: int = 0
    password: str | None = None

    @property
    def sentinel(self) -> bool:
        return bool(self.sentinels)


def parse(url: str) -> RedisTarget:
    """Read a Redis URL; a ``ValueError`` says what is wrong with it (a port or a database
    that is not a number: redis-py's own parser raises on the one at first use, and takes
    ``/abc`` for database 0)."""
    if url.startswith(("redis://", "rediss://")):
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 (urllib checks the port as it reads it)
        except ValueError:
            raise ValueError(f"port of {parts.hostname!r} is not a number") from None
        if (db := parts.path.strip("/")) and not db.isdigit():
            # Not quoted: a password with an unencoded / reads as part of the path here.
            raise ValueError("the database (the path after the host) is not a number")
    if not url.startswith(SENTINEL_SCHEME):
        return RedisTarget(url)
    rest = url.removeprefix(SENTINEL_SCHEME)
    auth, _, rest = rest.rpartition("@")
    hosts, _, path = rest.partition("/")
    password = unquote(auth.partition(":")[2]) if auth else None
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"sentinel {host!r} is not host:port")
        if any(c.isspace() for c in host):
            # ' h2' resolves to nothing: redis-py and kombu would skip that sentinel unsaid.
            raise ValueError(f"sentinel {host!r} has a space: list them as h1:26379,h2:26379")
        sentinels.append((name.strip("[]"), int(port)))
    master, _, db = path.partition("/")
    if not master:
        raise ValueError(
            "names no primary: redis+sentinel://host:port[,host:port…]/<master>[/<db>]"
        )
    if db and not db.isdigit():
        raise ValueError(f"database {db!r} is not a number")
    return RedisTarget(url, tuple(sentinels), master, int(db or 0), password or None)


def eviction_policy(redis_client: redis.Redis) -> str | None:
    """Redis's ``maxmemory-policy``: ``CONFIG GET``'s, else ``INFO memory``'s (managed Redis
    often renames or refuses ``CONFIG``); None when neither says. A Redis that does not answer
    raises its error."""
    try:
        found = redis_client.config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.ResponseError:
        found = None
    if not found:
        try:
            found = redis_client.info("memory").get("maxmemory_policy")
        except redis.ResponseError:
            return None
    return str(found) if found else None


def client(target: RedisTarget, *, timeout: float, retry: Retry) -> redis.Redis:
    """A client of the primary that gives up a command after ``timeout`` seconds."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": min(1.0, timeout),
        "socket_timeout": timeout,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "retry": retry,
    }
    if not target.sentinel:
        return redis.Redis.from_url(target.url, **options)
    sentinels = Sentinel(  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8.2
        list(target.sentinels),
        # A sentinel that does not answer at once is passed over for the next one.
        sentinel_kwargs={"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    )
    found: redis.Redis = sentinels.master_for(  # type: ignore[no-untyped-call,unused-ignore]
        target.master,
        connection_pool_class=FollowingPool,
        db=target.db,
        password=target.password,
        **options,
    )
    return found


def primary_moves(redis_client: redis.Redis) -> int:
    """How often this client's primary has changed (always 0 for a single server)."""
    pool = redis_client.connection_pool
    return pool.moves if isinstance(pool, FollowingPool) else 0


def _ask_sentinels(redis_client: redis.Redis) -> None:
    """Follow the primary the sentinels name now, if this client has sentinels.

    At most once a second a pool: sentinels that do not answer cost up to their timeouts, and a
    burst of refused writes must not each pay that.
    """
    pool = redis_client.connection_pool
    if not isinstance(pool, FollowingPool) or time.monotonic() - pool.asked < 1.0:
        return
    pool.asked = time.monotonic()
    with contextlib.suppress(redis.RedisError):  # none answers: the next command will tell
        pool.get_master_address()  # type: ignore[no-untyped-call]


def kombu_url(target: RedisTarget) -> tuple[str, dict[str, Any]]:
    """The URL and transport options Celery and kombu take for the same Redis."""
    if not target.sentinel:
        return target.url, {}
    auth = f":{quote(target.password, safe='')}@" if target.password else ""
    hosts = [(f"[{host}]" if ":" in host else host, port) for host, port in target.sentinels]
    url = ";".join(f"sentinel://{auth}{host}:{port}/{target.db}" for host, port in hosts)
    return url, {
        "master_name": target.master,
        "sentinel_kwargs": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }


class NotReplicated(redis.ConnectionError):
    """Fewer replicas than asked for hold a write in time; it may die with the primary.

    Nothing is promised about the write: the web answers 503, safe to repeat with the same
    ``Idempotency-Key``; a worker makes the write again on the primary that is there now.
    """


@dataclass(frozen=True)
class Replication:
    """How many replicas must hold a write before it counts, and how long to wait for them."""

    replicas: int
    timeout_ms: int

    def confirm(self, redis_client: redis.Redis, moves: int) -> None:
        """Return once ``replicas`` replicas hold every write made so far on this primary.

        ``moves`` is :func:`primary_moves` from before those writes: if the primary changed since,
        they may have been made on the old one, and are not confirmed.
        """
        if self.replicas <= 0:
            return
        with redis_client.pipeline(transaction=False) as pipe:
            redis_client.register_script(_MARK_PAST_FULL)(keys=[MARK], client=pipe)
            pipe.wait(self.replicas, self.timeout_ms)
            _, acknowledged = pipe.execute()
        if int(acknowledged) < self.replicas:
            # This connection's primary may be one the sentinels no longer name: a replica that
            # a failover's losing leader had already promoted stays a primary, without replicas,
            # until Sentinel's failover-timeout (3 minutes by default) makes it a replica again,
            # and a pooled connection made to it meanwhile stays there. Asking the sentinels now
            # moves the pool to the primary they name (and counts that as a move), so the next
            # write goes there instead of being refused here until then.
            _ask_sentinels(redis_client)
        if primary_moves(redis_client) != moves:
            raise NotReplicated("the Redis primary changed during the write")
        if int(acknowledged) < self.replicas:
            raise NotReplicated(
                f"{acknowledged} of {self.replicas} Redis replicas acknowledged in "
                f"{self.timeout_ms} ms"
            )

    def durably(
        self,
        redis_client: redis.Redis,
        write: Callable[[], T],
        patience: float,
        *,
        reconnect: bool = False,
    ) -> T:
        """Make ``write`` (safe to repeat) and confirm it, again on a new primary, for a while.

        For workers: the write is made again when the primary changed under it, when it could
        not be made (with replicas asked for, a primary that died or went silent is promoted
        away within a failover's time; with ``reconnect``, without replicas too: a Redis
        restarting comes back), or when Redis refused it (:func:`refusal`: full, a replica, a
        disk it cannot save to: each may pass), and the confirmation waited for again while
        replicas catch up, until ``patience`` seconds pass; then :class:`NotReplicated` (or the
        error) is raised.
        """
        deadline = time.monotonic() + patience
        while True:
            moves = primary_moves(redis_client)
            try:
                result = write()
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
                self._wait_out(redis_client, e, deadline, reconnect=reconnect)
                continue
            while True:
                try:
                    self.confirm(redis_client, moves)
                    return result
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                except redis.ResponseError as e:
                    self._wait_out(redis_client, e, deadline, reconnect=reconnect)
                    break  # refused (a replica now, a disk that failed): make the write again
                if primary_moves(redis_client) != moves:
                    break  # the write may be lost with the old primary: make it again

    def _wait_out(
        self,
        redis_client: redis.Redis,
        error: redis.RedisError,
        deadline: float,
        *,
        reconnect: bool = False,
    ) -> None:
        """Return when ``error`` may pass and there is time to try again; else raise it."""
        refused = refusal(error)
        if isinstance(error, redis.ResponseError) and refused is None:
            raise error  # a bug of ours, not a state of Redis
        unreachable = refused is None and self.replicas <= 0 and not reconnect
        if time.monotonic() > deadline or unreachable:
            raise error
        if refused is not None and refused.code == "READONLY":
            # A plain URL whose name now leads to the new primary (a managed Redis's failover):
            # new connections find it; those kept are to the old one.
            redis_client.connection_pool.disconnect(inuse_connections=False)
        _ask_sentinels(redis_client)
        time.sleep(0.2)
