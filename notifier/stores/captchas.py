"""Captcha codes and send limits in Redis.

Keys (``<client>`` and ``<purpose>`` as the client sent them; ``<window>`` is ``phone`` for a
phone, ``mail`` for an address; ``{h}`` is the :func:`pseudonym` of the recipient in braces, the
key's hash tag, so a recipient's keys share one Redis Cluster slot):

* ``notifier:captcha:code:<client>:<purpose>:{h}`` hash {digest, attempts, until, delivered,
  previous, previous_until, carried}, expiring with the codes it holds; ``h`` of the recipient as the
  code was asked for (a phone in E.164, an address). ``previous``: the last code a provider
  took, while a newer one (a resend) is not yet taken: a resend that fails leaves the person
  the code they have;
* ``notifier:captcha:resend:<client>:<purpose>:{h}`` present during the resend interval;
* ``notifier:captcha:<window>:{h}``  sorted set of sends in the last 24 h (all clients: the
  recipient's daily ceiling);
* ``notifier:captcha:<window>:{h}:<client>`` the same, of one client (its daily limit);

  the last three with ``h`` of the recipient as the limits count it (:class:`Sender`'s
  ``counted``: the phone, or the mailbox an address reaches), so they count as they did when the
  key held the recipient itself;
* ``notifier:captcha:ip:{h}:<client>`` sorted set of one client's sends in the last hour from an
  end user's address, ``h`` of its :func:`address_bucket` (an IPv4 address, or an IPv6 /64): the
  client's limit, so one product's users cannot lock another's out behind one NAT;
* ``notifier:captcha:ip:{h}`` the same, of every client (the address's ceiling).

No recipient and no end user's address is in a key name: a key holds a *pseudonym*, the message
log's keyed hash (:func:`~notifier.stores.notifications.log.tag`, keyed by the secret derived
from ``NOTIFIER_CAPTCHA_SECRET`` for it) taken to 16 bytes, in hex. The log's tags are 8 bytes:
an index, where a shared tag costs a search one more entry to read; a key here is the limit
itself, and two recipients that shared a pseudonym would share their limits. At 16 bytes that
takes some 2^64 recipients (the birthday bound); at 8 it would begin to be likely at a few
billion. Hex rather than base64url (32 characters, not 22): a few bytes more a key, for a name
that is plainly a hash, and a shape (:func:`named`) that no phone (``+``), address (``@``) or IP
address (``.``, ``:``) has, by which :mod:`notifier.stores.layout` tells the names of an earlier
release from these. Without the secret a pseudonym cannot be tried against guessed recipients.

Only an HMAC of a code is ever stored, bound to the client, purpose and recipient (in the
clear inside the HMAC, as before the pseudonyms: a code sent before an upgrade still verifies).
A recipient's limits are checked and taken in one Lua script, and so are the end user's IP
address's, so two concurrent requests cannot both pass a limit that has room for one. The two
are two steps (their keys hash to two slots on a Redis Cluster): a send the IP address refuses
gives back what the recipient's step took.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar, cast

import redis
from redis import Redis, RedisError
from redis.client import Pipeline
from redis.typing import EncodableT

from notifier.redisconn import described
from notifier.stores.notifications.log import tag
from notifier.stores.scripts import Lua

log = logging.getLogger(__name__)
# How many captcha purposes of each client are counted under their own label in /metrics; any
# past them, as ``other`` (a purpose is whatever a client sends).
LABELLED_PURPOSES = 32
PURPOSES_KEY = "notifier:captcha_purposes"  # :<client>
T = TypeVar("T")

DAY_MS = 24 * 3600 * 1000
HOUR_MS = 3600 * 1000
PSEUDONYM = 16  # bytes of a key's pseudonym (the module's docstring says why)
_PSEUDONYM = re.compile(r"\{[0-9a-f]{32}\}")  # one as a key holds it: its hash tag


def pseudonym(secret: bytes, value: str, *, what: str = "captcha") -> str:
    """The name a recipient (an end user's address: ``what`` ``ip``) has in a key."""
    return tag(secret, what, value, PSEUDONYM).hex()


def named(key: str) -> bool:
    """Whether ``key`` names its recipient or address by a pseudonym (not in the clear)."""
    return _PSEUDONYM.search(key) is not None


def code_key(secret: bytes, scope: str) -> str:
    """The key of the code of ``scope`` (``client:purpose:recipient``)."""
    client, purpose, recipient = scope.split(":", 2)  # neither a client nor a purpose holds ":"
    return f"notifier:captcha:code:{client}:{purpose}:{{{pseudonym(secret, recipient)}}}"


def resend_key(client: str, purpose: str, name: str) -> str:
    """The key of a resend interval, for the recipient of pseudonym ``name``."""
    return f"notifier:captcha:resend:{client}:{purpose}:{{{name}}}"


def window_key(window: str, name: str, client: str = "") -> str:
    """The key of a window of sends (every client's, or ``client``'s), for the recipient (or
    end user's address: ``window`` ``ip``) of pseudonym ``name``."""
    return f"notifier:captcha:{window}:{{{name}}}" + (f":{client}" if client else "")


def address_bucket(address: str) -> str:
    """What an end user's address counts as: itself, or for IPv6 its /64.

    An IPv4 address written as IPv6 (``::ffff:198.51.100.7``) is that IPv4 address. One IPv6
    subscriber usually has a /64 or more to pick addresses from, so counting each address
    alone would let one caller change address for every send.
    """
    ip = ipaddress.ip_address(address.partition("%")[0])  # without an IPv6 zone
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


@dataclass(frozen=True)
class Sender:
    """Who a send counts against: the client, the purpose, the recipient as the limits count it
    (in the limits' ``window``: ``phone`` or ``mail``), the end user's address."""

    client: str
    purpose: str
    counted: str
    client_ip: str | None = None
    window: str = "phone"

    @property
    def noun(self) -> str:
        """What the recipient is called in a refusal."""
        return "address" if self.window == "mail" else "phone"

    def recipient_keys(self, secret: bytes) -> list[str]:
        """The keys of the recipient's limits: the resend interval, the client's window,
        every client's (``take_recipient.lua``'s order)."""
        name = pseudonym(secret, self.counted)
        return [
            resend_key(self.client, self.purpose, name),
            window_key(self.window, name, self.client),
            window_key(self.window, name),
        ]

    def ip_keys(self, secret: bytes) -> list[str]:
        """The keys of the end user's address's limits: the client's window, every client's
        (``take_ip.lua``'s order); none without an address."""
        if not self.client_ip:
            return []
        name = pseudonym(secret, address_bucket(self.client_ip), what="ip")
        return [window_key("ip", name, self.client), window_key("ip", name)]


@dataclass(frozen=True)
class Limited:
    """A send refused by ``limit``; it may be tried again after ``retry_after`` seconds."""

    limit: str
    retry_after: int


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: Literal["mismatch", "expired", "too_many_attempts"] | None = None
    attempts_left: int | None = None


class CaptchaStore:
    """Take send limits, keep code digests, check codes."""

    _take_recipient = Lua("captchas/take_recipient")
    _take_ip = Lua("captchas/take_ip")
    _purpose_label = Lua("captchas/purpose_label")

    def __init__(self, redis: Redis, secret: bytes, names: bytes) -> None:
        self.redis = redis
        self._secret = secret  # keys the codes' digests
        self._names = names  # keys the pseudonyms in key names (the message log's secret)
        # (client, purpose) pairs known to have their label: a label once given stays, so each
        # code's count asks Redis only for a purpose this process has not seen labelled.
        self._labelled: set[tuple[str, str]] = set()

    def purpose_label(self, client: str, purpose: str) -> str:
        """The label ``purpose`` is counted under in /metrics: itself, if it is one of the first
        :data:`LABELLED_PURPOSES` purposes ``client`` used (each client its own, so that one
        making purposes up takes no label from another); ``other`` past them, and when Redis
        cannot say (a count must never fail the send or verify it follows)."""
        if (client, purpose) in self._labelled:
            return purpose
        key = f"{PURPOSES_KEY}:{client}"
        try:
            label = str(self._purpose_label(keys=[key], args=[purpose, LABELLED_PURPOSES]))
        except RedisError as e:
            log.warning("a captcha purpose was counted as 'other': %s", described(e))
            return "other"
        if label == purpose:
            self._labelled.add((client, purpose))
        return label

    def take_send(
        self,
        sender: Sender,
        *,
        member: str,
        resend_interval: int,
        daily_limit: int,
        ip_limit: int,
        ceiling: int | None = None,
        ip_ceiling: int | None = None,
    ) -> Limited | None:
        """Count one send against every limit, or say which limit refuses it (counting nothing).

        ``daily_limit`` is the client's for the recipient, ``ip_limit`` its for the end user's
        address; ``ceiling`` and ``ip_ceiling`` are every client's together (unset: no more
        than the client's)."""
        now = int(time.time() * 1000)
        args: list[EncodableT] = [
            now, member, resend_interval * 1000, daily_limit, DAY_MS, ceiling or daily_limit,
            f"{sender.noun}_daily_ceiling",
        ]  # fmt: skip
        keys = sender.recipient_keys(self._names)
        limit, wait_ms = self._take_recipient(keys=keys, args=args)
        ip_keys = sender.ip_keys(self._names)
        if limit == "ok" and ip_keys:
            try:
                limit, wait_ms = self._take_ip(
                    keys=ip_keys, args=[now, member, ip_limit, ip_ceiling or ip_limit, HOUR_MS]
                )
            except RedisError:
                # The recipient's limits are taken and the request ends 503 ("retry later"):
                # given back, or the retry meets the resend interval (429) for nothing sent.
                with contextlib.suppress(RedisError):
                    self._give_back_recipient(sender, member)
                raise
            if limit != "ok":
                self._give_back_recipient(sender, member)
        if limit == "ok":
            return None
        return Limited(limit=str(limit), retry_after=max(1, -(-int(wait_ms) // 1000)))

    def _give_back_recipient(self, sender: Sender, member: str) -> None:
        resend, *windows = sender.recipient_keys(self._names)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(resend)
            for window in windows:
                pipe.zrem(window, member)
            pipe.execute()

    def give_back(self, sender: Sender, *, member: str) -> None:
        """Undo :meth:`take_send` for a send that was not accepted after all."""
        self._give_back_recipient(sender, member)
        ip_keys = sender.ip_keys(self._names)
        if ip_keys:
            with self.redis.pipeline(transaction=True) as pipe:
                for window in ip_keys:
                    pipe.zrem(window, member)
                pipe.execute()

    def digest(self, scope: str, code: str) -> str:
        """The keyed hash of a code, bound to its client, purpose and recipient."""
        return hmac.new(self._secret, f"{scope}\x00{code}".encode(), hashlib.sha256).hexdigest()

    def new_code(self, scope: str, *, length: int, ttl: float, max_attempts: int) -> str:
        """Make a code, keep its digest for ``ttl`` seconds, in place of any earlier code; but
        the last one a provider took (:meth:`delivered`) stays good, until it expires, while
        this one is not taken: a resend that fails (a provider's per-number limit, a
        suppressed address, every provider down) must not void the code the person has. That
        code keeps its wrong tries (one void after ``max_attempts`` stays void): a resend that
        fails gives no more tries at it."""
        code = "".join(secrets.choice("0123456789") for _ in range(length))
        key = code_key(self._names, scope)
        now = int(time.time() * 1000)
        until = now + max(1, int(ttl * 1000))

        def replace(pipe: Pipeline, stored: dict[str, str]) -> None:
            tried = int(stored.get("attempts", 0))
            held = _held_code(stored, now) if tried < max_attempts else {}
            fields: dict[EncodableT, EncodableT] = {
                "digest": self.digest(scope, code), "until": until,
                "attempts": tried if held else 0,
            }  # fmt: skip
            fields.update(held.items())
            if held and tried:
                fields["carried"] = tried  # the kept code's, not this one's (delivered)
            pipe.multi()
            pipe.delete(key)
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, max(until, int(held.get("previous_until", 0))) - now)
            pipe.execute()

        self._watched(key, replace)
        return code

    def delivered(self, scope: str, code: str, *, until: float) -> None:
        """A provider took ``code`` (good until ``until``, Unix seconds): the person has it.
        The newest, it is the one that verifies from now on, with its own tries; a newer one
        not taken yet (two sends crossed) keeps it as the code the person has. Not marked
        (Redis full, or down: the send is recorded already), a resend that fails later voids
        it as before."""
        key = code_key(self._names, scope)
        digest = self.digest(scope, code)

        def mark(pipe: Pipeline, stored: dict[str, str]) -> None:
            if not stored or (stored["digest"] != digest and stored.get("delivered")):
                return  # verified already, expired, or a newer one was taken
            pipe.multi()
            if stored["digest"] == digest:
                # Its own tries from now on: the kept code's go with it (only those: a wrong
                # try at this code, made before this mark, still counts).
                pipe.hset(key, "delivered", 1)
                if carried := int(stored.get("carried", 0)):
                    pipe.hincrby(key, "attempts", -carried)
                pipe.hdel(key, "previous", "previous_until", "carried")
            else:
                pipe.hset(key, mapping={"previous": digest, "previous_until": int(until * 1000)})
            pipe.execute()

        try:
            self._watched(key, mark)
        except RedisError as e:
            log.warning("a delivered code was not marked: %s", described(e))

    def verify(self, scope: str, code: str, *, max_attempts: int) -> Verdict:
        """Check a code: good once; void after ``max_attempts`` wrong tries."""
        key = code_key(self._names, scope)
        candidate = self.digest(scope, code)

        def check(pipe: Pipeline, stored: dict[str, str]) -> Verdict:
            if not stored:
                return Verdict(False, "expired", 0)
            attempts = int(stored["attempts"])
            if attempts >= max_attempts:
                return Verdict(False, "too_many_attempts", 0)
            now = int(time.time() * 1000)
            good = hmac.compare_digest(candidate, stored["digest"])
            good &= int(stored.get("until", now + 1)) > now  # (none: an earlier release's)
            held = _held_code(stored, now, newest=False)
            if "previous" in held:  # the code the person has, while a resend is not
                good |= hmac.compare_digest(candidate, held["previous"])
            pipe.multi()
            if good:
                pipe.delete(key)
            else:
                pipe.hincrby(key, "attempts", 1)
            pipe.execute()
            if good:
                return Verdict(True)
            return Verdict(False, "mismatch", max_attempts - attempts - 1)

        return self._watched(key, check)

    def _watched(self, key: str, step: Callable[[Pipeline, dict[str, str]], T]) -> T:
        """What ``step`` answers, given a pipeline watching the code's ``key`` and its fields as
        read then (it queues its writes after ``multi`` and executes them): again from the
        read when another verify or send changed the key in between."""
        while True:
            with self.redis.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    return step(pipe, cast(dict[str, str], pipe.hgetall(key)))
                except redis.WatchError:
                    continue


def _held_code(stored: dict[str, str], now: int, *, newest: bool = True) -> dict[str, str]:
    """Of a code key's fields, the code a provider last took that is still good, as
    ``previous`` and ``previous_until`` (none: empty): with ``newest``, the stored code itself
    when it was taken, else (and when it was not) the one it kept."""
    if newest and stored.get("delivered") and int(stored.get("until", 0)) > now:
        return {"previous": stored["digest"], "previous_until": stored["until"]}
    if stored.get("previous") and int(stored.get("previous_until", 0)) > now:
        return {"previous": stored["previous"], "previous_until": stored["previous_until"]}
    return {}
