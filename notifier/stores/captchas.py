"""Captcha codes and send limits in Redis.

Keys (``{scope}`` is ``client:purpose:recipient``, the recipient a phone in E.164 or a mail
address; ``<window>`` is ``phone`` for a phone, ``mail`` for an address; ``{counted}`` is the
recipient as the limits count it: the phone, or the mailbox an address reaches):

* ``notifier:captcha:code:{scope}``  hash {digest, attempts}, expiring with the code;
* ``notifier:captcha:resend:client:purpose:{counted}`` present during the resend interval
  (``{counted}`` in braces is the key's hash tag);
* ``notifier:captcha:<window>:{counted}``  sorted set of sends in the last 24 h (all clients:
  the recipient's daily ceiling);
* ``notifier:captcha:<window>:{counted}:<client>`` the same, of one client (its daily limit);
* ``notifier:captcha:ip:{<address>}:<client>`` sorted set of one client's sends in the last
  hour from an end user's address, by :func:`address_bucket` (an IPv4 address, or an IPv6
  /64): the client's limit, so one product's users cannot lock another's out behind one NAT;
* ``notifier:captcha:ip:{<address>}`` the same, of every client (the address's ceiling).

A phone (``+`` and digits) and an address (which holds an ``@``) never spell the same scope.

Only an HMAC of a code is ever stored. A recipient's limits are checked and taken in one Lua
script, and so are the end user's IP address's, so two concurrent requests cannot both pass a
limit that has room for one. The two are two steps (their keys hash to two slots on a Redis
Cluster): a send the IP address refuses gives back what the recipient's step took.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from typing import Literal, cast

import redis
from redis import Redis
from redis.typing import EncodableT

from notifier.stores.scripts import Lua

DAY_MS = 24 * 3600 * 1000
HOUR_MS = 3600 * 1000


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

    @property
    def resend_key(self) -> str:
        return f"notifier:captcha:resend:{self.client}:{self.purpose}:{{{self.counted}}}"

    @property
    def recipient_key(self) -> str:
        return f"notifier:captcha:{self.window}:{{{self.counted}}}"

    @property
    def client_recipient_key(self) -> str:
        return f"{self.recipient_key}:{self.client}"

    @property
    def ip_key(self) -> str:
        bucket = address_bucket(self.client_ip) if self.client_ip else "-"
        return f"notifier:captcha:ip:{{{bucket}}}"

    @property
    def client_ip_key(self) -> str:
        return f"{self.ip_key}:{self.client}"


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

    def __init__(self, redis: Redis, secret: bytes) -> None:
        self.redis = redis
        self._secret = secret

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
        keys = [sender.resend_key, sender.client_recipient_key, sender.recipient_key]
        limit, wait_ms = self._take_recipient(keys=keys, args=args)
        if limit == "ok" and sender.client_ip:
            limit, wait_ms = self._take_ip(
                keys=[sender.client_ip_key, sender.ip_key],
                args=[now, member, ip_limit, ip_ceiling or ip_limit, HOUR_MS],
            )
            if limit != "ok":
                self._give_back_recipient(sender, member)
        if limit == "ok":
            return None
        return Limited(limit=str(limit), retry_after=max(1, -(-int(wait_ms) // 1000)))

    def _give_back_recipient(self, sender: Sender, member: str) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(sender.resend_key)
            pipe.zrem(sender.client_recipient_key, member)
            pipe.zrem(sender.recipient_key, member)
            pipe.execute()

    def give_back(self, sender: Sender, *, member: str) -> None:
        """Undo :meth:`take_send` for a send that was not accepted after all."""
        self._give_back_recipient(sender, member)
        if sender.client_ip:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(sender.client_ip_key, member)
                pipe.zrem(sender.ip_key, member)
                pipe.execute()

    def digest(self, scope: str, code: str) -> str:
        """The keyed hash of a code, bound to its client, purpose and recipient."""
        return hmac.new(self._secret, f"{scope}\x00{code}".encode(), hashlib.sha256).hexdigest()

    def new_code(self, scope: str, *, length: int, ttl: float) -> str:
        """Make a code, keep its digest for ``ttl`` seconds (replacing any earlier code)."""
        code = "".join(secrets.choice("0123456789") for _ in range(length))
        key = f"notifier:captcha:code:{scope}"
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={"digest": self.digest(scope, code), "attempts": 0})
            pipe.pexpire(key, max(1, int(ttl * 1000)))
            pipe.execute()
        return code

    def verify(self, scope: str, code: str, *, max_attempts: int) -> Verdict:
        """Check a code: good once; void after ``max_attempts`` wrong tries."""
        key = f"notifier:captcha:code:{scope}"
        candidate = self.digest(scope, code)
        while True:
            with self.redis.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    stored = cast(dict[str, str], pipe.hgetall(key))
                    if not stored:
                        return Verdict(False, "expired", 0)
                    attempts = int(stored["attempts"])
                    if attempts >= max_attempts:
                        return Verdict(False, "too_many_attempts", 0)
                    good = hmac.compare_digest(candidate, stored["digest"])
                    pipe.multi()
                    if good:
                        pipe.delete(key)
                    else:
                        pipe.hincrby(key, "attempts", 1)
                    pipe.execute()
                except redis.WatchError:
                    continue  # another verify of the same code came first: look again
            if good:
                return Verdict(True)
            return Verdict(False, "mismatch", max_attempts - attempts - 1)
