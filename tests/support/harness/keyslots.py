"""Which of the Redis commands a block of code sends would Redis Cluster refuse as cross-slot.

:class:`SlotWatch` listens with ``MONITOR`` while the block runs, then groups what it saw into
the operations Cluster judges as one: a script (its ``EVALSHA`` line, whose keys are the ones
it declared, then the lines its Lua ran, which this Redis 6.2 shows right after it with client
``lua``), a ``MULTI`` … ``EXEC`` of one connection (with the keys it ``WATCH``ed first), or a
command alone. Cluster runs each only if all its keys hash to one slot: a script routed by the
keys it declared may touch others in that same slot (the node that owns the slot has them; the
stores' scripts find a row's batch so, from its record), never one of another slot. What breaks
that is reported as :class:`Violation` data.

The keys of a command are read by position, from the tables below; a command not in them stops
the analysis (:class:`UnknownCommand`) rather than being guessed at. ``MONITOR`` joins a
command's arguments with spaces and values may hold spaces, so only the leading positions,
where keys are, are read.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import redis
from redis.crc import key_slot

# Commands without keys (or whose arguments are not keys of this database).
KEYLESS = frozenset((
    "AUTH", "CLIENT", "COMMAND", "CONFIG", "DBSIZE", "DISCARD", "ECHO", "EXEC", "FLUSHALL",
    "FLUSHDB", "HELLO", "INFO", "KEYS", "MULTI", "PING", "PUBLISH", "QUIT", "READONLY",
    "READWRITE", "RESET", "SCAN", "SCRIPT", "SELECT", "TIME", "UNWATCH", "WAIT",
))  # fmt: skip
# Commands whose every argument is a key.
ALL_KEYS = frozenset((
    "DEL", "EXISTS", "MGET", "TOUCH", "UNLINK", "WATCH",
))  # fmt: skip
# Commands whose first argument is their one key.
FIRST_KEY = frozenset((
    "APPEND", "DECR", "DECRBY", "EXPIRE", "EXPIREAT", "GET", "GETDEL", "GETEX", "GETSET",
    "HDEL", "HEXISTS", "HGET", "HGETALL", "HINCRBY", "HINCRBYFLOAT", "HKEYS", "HLEN", "HMGET",
    "HMSET", "HSCAN", "HSET", "HSETNX", "HVALS", "INCR", "INCRBY", "INCRBYFLOAT", "LINDEX",
    "LLEN", "LPOP", "LPUSH", "LRANGE", "LREM", "LSET", "LTRIM", "PERSIST", "PEXPIRE",
    "PEXPIREAT", "PSETEX", "PTTL", "RPOP", "RPUSH", "SADD", "SCARD", "SET", "SETEX", "SETNX",
    "SISMEMBER", "SMEMBERS", "SPOP", "SREM", "SSCAN", "STRLEN", "TTL", "TYPE", "ZADD", "ZCARD",
    "ZCOUNT", "ZINCRBY", "ZPOPMAX", "ZPOPMIN", "ZRANGE", "ZRANGEBYSCORE", "ZRANK", "ZREM",
    "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYSCORE", "ZSCAN", "ZSCORE",
))  # fmt: skip
# Commands whose first two arguments are keys (a source and a destination).
FIRST_TWO = frozenset((
    "BLMOVE", "BRPOPLPUSH", "LMOVE", "RENAME", "RENAMENX", "RPOPLPUSH", "SMOVE",
))  # fmt: skip
# Blocking pops: every argument but the last (the timeout) is a key.
ALL_BUT_LAST = frozenset((
    "BLPOP", "BRPOP", "BZPOPMAX", "BZPOPMIN",
))  # fmt: skip
# Keys and values taking turns.
PAIRS = frozenset((
    "MSET", "MSETNX",
))  # fmt: skip
# Scripts: their keys follow the number of them.
SCRIPTS = frozenset((
    "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO",
))  # fmt: skip

Kind = Literal[
    "cross-slot script", "undeclared key in script", "cross-slot transaction",
    "cross-slot command",
]  # fmt: skip


class UnknownCommand(Exception):
    """A command the key tables do not know: add it to them rather than let it pass unread."""


def command_keys(args: Sequence[str]) -> tuple[str, ...]:
    """The keys of one command, given as its arguments (the name first)."""
    name, rest = args[0].upper(), tuple(args[1:])
    if name in SCRIPTS:
        return rest[2 : 2 + int(rest[1])]
    if name in KEYLESS:
        return ()
    if name in ALL_KEYS:
        return rest
    if name in FIRST_KEY:
        return rest[:1]
    if name in FIRST_TWO:
        return rest[:2]
    if name in ALL_BUT_LAST:
        return rest[:-1]
    if name in PAIRS:
        return rest[::2]
    raise UnknownCommand(f"keyslots does not know where the keys of {name} are: {' '.join(args)}")


def slots(keys: Iterable[str]) -> tuple[int, ...]:
    """The distinct hash slots of ``keys``, sorted."""
    return tuple(sorted({key_slot(k.encode()) for k in keys}))


@dataclass(frozen=True)
class Command:
    """One line of ``MONITOR``: who sent it (``address:port``, or ``lua``) and its arguments."""

    client: str
    args: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.args[0].upper()

    @property
    def keys(self) -> tuple[str, ...]:
        return command_keys(self.args)


@dataclass(frozen=True)
class Operation:
    """What Cluster judges as one: a ``script`` (``body``: the commands its Lua ran), a
    ``transaction`` (``parts``: its scripts and commands; ``watched``: keys WATCHed before it),
    or a ``command`` alone."""

    kind: Literal["script", "transaction", "command"]
    head: Command  # the EVALSHA line, the MULTI line, or the command
    body: tuple[Command, ...] = ()
    parts: tuple[Operation, ...] = ()
    watched: tuple[str, ...] = ()

    def touched(self) -> tuple[str, ...]:
        """Every key it touches: for a script, those it declared and those its Lua used."""
        found = [*self.watched, *self.head.keys]
        for command in self.body:
            found += command.keys
        for part in self.parts:
            found += part.touched()
        return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class Violation:
    """An operation Cluster would refuse: what kind of fault, which operation, the keys at
    fault and their slots."""

    kind: Kind
    command: str
    keys: tuple[str, ...]
    slots: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.kind}: {self.command}: {' '.join(map(repr, self.keys))} (slots {self.slots})"


def group(commands: Iterable[Command]) -> list[Operation]:
    """Group ``MONITOR``'s lines into operations, in the order they ended."""
    done: list[Operation] = []
    transactions: dict[str, list[Operation]] = {}  # by client: the MULTIs still open
    heads: dict[str, Command] = {}
    watched: dict[str, list[str]] = {}
    script: tuple[Command, list[Command]] | None = None

    def emit(operation: Operation) -> None:
        open_parts = transactions.get(operation.head.client)
        (done if open_parts is None else open_parts).append(operation)

    def end_script() -> None:
        nonlocal script
        if script is not None:
            emit(Operation("script", script[0], body=tuple(script[1])))
            script = None

    def end_transaction(client: str) -> None:
        parts = transactions.pop(client)
        seen = tuple(watched.pop(client, ()))
        done.append(Operation("transaction", heads.pop(client), parts=tuple(parts), watched=seen))

    for command in commands:
        if command.client == "lua":
            if script is None:
                raise UnknownCommand(f"a Lua line without the script that ran it: {command.args}")
            script[1].append(command)
            continue
        end_script()  # a script's lines all come before the next client's command
        name, client = command.name, command.client
        if name in SCRIPTS:
            script = (command, [])
        elif name == "MULTI":
            transactions[client], heads[client] = [], command
        elif name in ("EXEC", "DISCARD") and client in transactions:
            end_transaction(client)
        elif name == "UNWATCH":
            watched.pop(client, None)
        else:
            if name == "WATCH":
                watched.setdefault(client, []).extend(command.keys)
            emit(Operation("command", command))
    end_script()
    for client in list(transactions):
        end_transaction(client)  # left open: judged on what it queued
    return done


def violations(
    operations: Iterable[Operation],
    *,
    ignore: Callable[[str], bool] = lambda key: False,
    names: Mapping[str, str] | None = None,
) -> list[Violation]:
    """What of ``operations`` Cluster would refuse. ``ignore`` leaves keys out of every check
    (e.g. a broker's queues, kept on another server); ``names`` names scripts by their SHA1."""
    found: list[Violation] = []
    for operation in operations:
        found += _judge(operation, ignore, names or {})
    return found


def _judge(
    operation: Operation, ignore: Callable[[str], bool], names: Mapping[str, str]
) -> list[Violation]:
    found: list[Violation] = []
    keys = tuple(k for k in operation.touched() if not ignore(k))
    what = _summary(operation, names)
    if operation.kind == "script":
        declared = tuple(k for k in operation.head.keys if not ignore(k))
        if len(slots(declared)) > 1:
            found.append(Violation("cross-slot script", what, declared, slots(declared)))
        home = slots(declared)
        for command in operation.body:
            extra = tuple(
                k for k in command.keys
                if k not in declared and not ignore(k) and (not home or slots([k]) != home)
            )  # fmt: skip
            if extra:
                found.append(
                    Violation("undeclared key in script", f"{what} {command.name}", extra,
                              slots(extra))
                )  # fmt: skip
    elif operation.kind == "transaction":
        if len(slots(keys)) > 1:
            found.append(Violation("cross-slot transaction", what, keys, slots(keys)))
        for part in operation.parts:
            if part.kind == "script":
                found += _judge(part, ignore, names)
    elif len(slots(keys)) > 1:
        found.append(Violation("cross-slot command", what, keys, slots(keys)))
    return found


def _summary(operation: Operation, names: Mapping[str, str]) -> str:
    """A short name of an operation: a script's name (or SHA1), MULTI's commands, a command's."""
    head = operation.head
    if operation.kind == "script":
        if head.name.startswith("EVALSHA"):
            return names.get(head.args[1], f"EVALSHA {head.args[1][:10]}")
        return f"EVAL {head.args[1][:40]!r}"
    if operation.kind == "transaction":
        inner = [_summary(p, names) if p.kind == "script" else p.head.name for p in operation.parts]
        return f"MULTI[{' '.join(inner)}]"
    return head.name


@dataclass
class SlotWatch:
    """Record every command sent to ``redis_url``'s database while the block runs; then
    :attr:`operations` and :attr:`violations` say what Cluster would make of them."""

    redis_url: str
    ignore: Callable[[str], bool] = lambda key: False
    names: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    commands: list[Command] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lines: queue.Queue[dict[str, Any] | Exception] = queue.Queue()
        self._client = redis.Redis.from_url(self.redis_url, decode_responses=True)
        self._db = int(self._client.connection_pool.connection_kwargs.get("db", 0))
        self._monitor: Any = None

    def __enter__(self) -> SlotWatch:
        # MONITOR answers OK once this connection is among the server's monitors: from then on
        # it sees every command, and the start marker's line is where the block's begin.
        monitor = redis.Redis.from_url(self.redis_url).monitor()  # type: ignore[no-untyped-call]
        self._monitor = monitor.__enter__()
        threading.Thread(target=self._read, name="slotwatch", daemon=True).start()
        try:
            self._until(self._marker("start"))
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.commands = self._until(self._marker("end"))
        finally:
            self._close()
        if kind is None:  # a failing block's own error says more than the analysis
            self.operations = group(self.commands)
            self.violations = violations(self.operations, ignore=self.ignore, names=self.names)

    def _close(self) -> None:
        """Close both connections (the reader thread ends on its connection's close)."""
        self._monitor.__exit__(None, None, None)
        self._client.close()

    def _marker(self, what: str) -> str:
        """Send a command no one else sends, and return its line as MONITOR shows it."""
        marker = f"slotwatch:{what}:{uuid.uuid4().hex}"
        self._client.echo(marker)
        return f"ECHO {marker}"

    def _read(self) -> None:
        """Pass MONITOR's lines on until the connection closes."""
        try:
            while True:
                self._lines.put(self._monitor.next_command())
        except Exception as e:  # the connection closed (the end), or broke
            self._lines.put(e)

    def _until(self, marker: str) -> list[Command]:
        """This database's commands read until ``marker``'s line (which is left out)."""
        seen: list[Command] = []
        while True:
            try:
                line = self._lines.get(timeout=self.timeout)
            except queue.Empty:
                raise AssertionError(
                    f"MONITOR did not show {marker!r} in {self.timeout} s"
                ) from None
            if isinstance(line, BaseException):
                raise AssertionError("the MONITOR connection broke") from line
            if line["command"] == marker:
                return seen
            if line["db"] == self._db:
                client = (
                    "lua"
                    if line["client_type"] == "lua"
                    else f"{line['client_address']}:{line['client_port']}"
                )
                seen.append(Command(client, tuple(line["command"].split(" "))))
