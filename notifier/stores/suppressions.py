"""Each client's suppression list: the addresses its mail is no longer sent to.

Key: ``notifier:suppressed:{<client>}``, a hash of address (in lower case) to its entry, JSON
``{"reason", "created_at"}``, and ``"by"``: the operator who added it in the console. One key a client, so a Redis Cluster keeps each list in one slot.

Reasons, and what each stops:

* ``bounced`` (a hard bounce) and ``manual`` (added through the API): every mail to the address;
* ``complained`` (the person marked a mail as spam, as the provider reported it): every mail
  but codes by mail, which the person asks for themselves;
* ``unsubscribed`` (the one-click unsubscribe): bulk mail only, a batch's rows and mail sent
  with ``"unsubscribe": true``; a receipt or a login code still reaches the person.

An address is on a list once: a reason that stops more replaces one that stops less
(:data:`STOPS`), never the other way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, cast

from redis import Redis

from notifier.stores.scripts import Lua
from notifier.timestamps import rfc3339

Reason = Literal["bounced", "manual", "complained", "unsubscribed"]
# How much each reason stops (suppressions/add.lua keeps the same order): bulk mail; every mail
# but codes by mail; every mail.
STOPS: dict[Reason, int] = {"unsubscribed": 1, "complained": 2, "bounced": 3, "manual": 3}
BULK_ONLY = frozenset({"unsubscribed"})
NOT_CODES = frozenset({"complained"})  # a code by mail still goes: the person asked for it


def key(client: str) -> str:
    return f"notifier:suppressed:{{{client}}}"


def normal(address: str) -> str:
    """An address as the list keeps it: in lower case (domains ignore case, and so do nearly all
    mailboxes)."""
    return address.strip().lower()


@dataclass(frozen=True)
class Entry:
    address: str
    reason: Reason
    created_at: str
    by: str | None = None  # the operator who added it in the console


class SuppressionList:
    """Add, remove, read and apply the clients' suppression lists."""

    _add = Lua("suppressions/add")

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def add(
        self, client: str, address: str, reason: Reason, *, by: str | None = None
    ) -> tuple[Entry, bool]:
        """Suppress ``address`` for ``client`` (``by`` an operator of the console); the entry,
        and whether it is new. An address already there keeps its entry, unless the new reason
        stops more (``unsubscribed`` -> ``complained`` -> ``bounced``). One step: a remove or
        another add meanwhile cannot split it."""
        address = normal(address)
        value = json.dumps(
            {"reason": reason, "created_at": rfc3339(time.time()), **({"by": by} if by else {})}
        )
        added, now = self._add(keys=[key(client)], args=[address, value, STOPS[reason]])
        return _entry(address, now), bool(added)

    def remove(self, client: str, address: str) -> bool:
        return bool(self.redis.hdel(key(client), normal(address)))

    def get(self, client: str, address: str) -> Entry | None:
        raw = cast(str | None, self.redis.hget(key(client), normal(address)))
        return None if raw is None else _entry(normal(address), raw)

    def page(self, client: str, cursor: int, count: int = 100) -> tuple[list[Entry], int]:
        """A page of the list (in no order) and the cursor of the next (0: the last)."""
        after, found = self.redis.hscan(key(client), cursor, count=count)
        raw = cast(dict[str, str], found)
        return [_entry(a, v) for a, v in sorted(raw.items())], int(after)

    def blocked(
        self, client: str, addresses: Iterable[str], *, bulk: bool, code: bool = False
    ) -> dict[str, Reason]:
        """Which of ``addresses`` the list stops for this mail (``bulk`` mail; a ``code`` by
        mail), and why (one round trip)."""
        wanted = list(dict.fromkeys(addresses))
        if not wanted:
            return {}
        values = cast(list[str | None], self.redis.hmget(key(client), [normal(a) for a in wanted]))
        stopped: dict[str, Reason] = {}
        for address, raw in zip(wanted, values, strict=True):
            if raw is None:
                continue
            reason = cast(Reason, json.loads(raw)["reason"])
            if (bulk or reason not in BULK_ONLY) and not (code and reason in NOT_CODES):
                stopped[address] = reason
        return stopped


def _entry(address: str, raw: str) -> Entry:
    value = json.loads(raw)
    return Entry(address, value["reason"], value["created_at"], value.get("by"))


class UnsubscribeLinks:
    """The one-click unsubscribe links of bulk mail (RFC 8058): an unguessable token a
    recipient of a client, found again when the link is used.

    The token is an HMAC of the client and the address, so every mail to one recipient carries
    the same link and one key a recipient is kept, ``notifier:unsub:<token>`` holding
    ``client`` and ``address``, renewed with each mail for ``ttl`` seconds. A link cannot be
    made from an address without the secret, and says nothing about it.
    """

    def __init__(self, redis: Redis, secret: bytes, ttl: int = 180 * 24 * 3600) -> None:
        self.redis, self.ttl = redis, ttl
        self._secret = hmac.new(secret, b"one-click unsubscribe", hashlib.sha256).digest()

    def token(self, client: str, address: str) -> str:
        """The token of ``address`` for ``client``, kept (or renewed) so it can be used."""
        mac = hmac.new(self._secret, f"{client}\0{normal(address)}".encode(), hashlib.sha256)
        token = base64.urlsafe_b64encode(mac.digest()[:18]).decode()
        value = json.dumps({"client": client, "address": normal(address)})
        self.redis.set(f"notifier:unsub:{token}", value, ex=self.ttl)
        return token

    def find(self, token: str) -> tuple[str, str] | None:
        """The (client, address) of a token, or None for one never made (or long unused)."""
        if not TOKEN.fullmatch(token):
            return None
        raw = cast(str | None, self.redis.get(f"notifier:unsub:{token}"))
        if raw is None:
            return None
        found = json.loads(raw)
        return found["client"], found["address"]


TOKEN = re.compile(r"[A-Za-z0-9_-]{24}")
