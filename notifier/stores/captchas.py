"""Captcha codes and send limits in Redis.

Keys (``{scope}`` is ``client:purpose:phone``):

* ``notifier:captcha:code:{scope}``  hash {digest, attempts}, expiring with the code;
* ``notifier:captcha:resend:{scope}`` present during the resend interval;
* ``notifier:captcha:phone:{phone}``  sorted set of sends in the last 24 h (all clients);
* ``notifier:captcha:ip:{address}``   sorted set of sends in the last hour, by
  :func:`address_bucket` (an IPv4 address, or an IPv6 /64).

Only an HMAC of a code is ever stored. The limits are checked and taken in one Lua script,
so two concurrent requests cannot both pass a limit that has room for one.
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

DAY_MS = 24 * 3600 * 1000
HOUR_MS = 3600 * 1000

# KEYS: resend, phone window, ip window. ARGV: now ms, member, resend ms, phone limit,
# ip limit, has ip (1/0), day ms, hour ms. Returns {limit name, ms to wait} or {'ok', 0}.
_TAKE = """
local now = tonumber(ARGV[1])
local wait = redis.call('PTTL', KEYS[1])
if wait > 0 then return {'resend_interval', wait} end
local function full(key, window, limit)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) < limit then return 0 end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + window - now
end
wait = full(KEYS[2], tonumber(ARGV[7]), tonumber(ARGV[4]))
if wait > 0 then return {'daily_limit', wait} end
if ARGV[6] == '1' then
  wait = full(KEYS[3], tonumber(ARGV[8]), tonumber(ARGV[5]))
  if wait > 0 then return {'ip_limit', wait} end
  redis.call('ZADD', KEYS[3], now, ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[8])
end
redis.call('ZADD', KEYS[2], now, ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return {'ok', 0}
"""


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
    """Who a send counts against: the code's scope, the phone, the end user's address."""

    scope: str
    phone: str
    client_ip: str | None = None

    @property
    def ip_key(self) -> str:
        bucket = address_bucket(self.client_ip) if self.client_ip else "-"
        return f"notifier:captcha:ip:{bucket}"


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

    def __init__(self, redis: Redis, secret: bytes) -> None:
        self.redis = redis
        self._secret = secret
        self._take = redis.register_script(_TAKE)

    def take_send(
        self,
        sender: Sender,
        *,
        member: str,
        resend_interval: int,
        daily_limit: int,
        ip_limit: int,
    ) -> Limited | None:
        """Count one send against every limit, or say which limit refuses it (counting nothing)."""
        keys = [
            f"notifier:captcha:resend:{sender.scope}",
            f"notifier:captcha:phone:{sender.phone}",
            sender.ip_key,
        ]
        args: list[EncodableT] = [
            int(time.time() * 1000), member, resend_interval * 1000, daily_limit, ip_limit,
            "1" if sender.client_ip else "0", DAY_MS, HOUR_MS,
        ]  # fmt: skip
        limit, wait_ms = self._take(keys=keys, args=args)
        if limit == "ok":
            return None
        return Limited(limit=str(limit), retry_after=max(1, -(-int(wait_ms) // 1000)))

    def give_back(self, sender: Sender, *, member: str) -> None:
        """Undo :meth:`take_send` for a send that was not accepted after all."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"notifier:captcha:resend:{sender.scope}")
            pipe.zrem(f"notifier:captcha:phone:{sender.phone}", member)
            if sender.client_ip:
                pipe.zrem(sender.ip_key, member)
            pipe.execute()

    def digest(self, scope: str, code: str) -> str:
        """The keyed hash of a code, bound to its client, purpose and phone."""
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
