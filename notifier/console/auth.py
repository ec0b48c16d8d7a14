"""Who may use the console: operators' passwords, their sessions, CSRF tokens, the login limit.

* Passwords: werkzeug's scrypt hashes from ``NOTIFIER_CONSOLE_USERS``. An unknown name is
  checked against a hash of its own, so it takes as long as a wrong password; every failed
  login then waits :data:`FAILURE_DELAY` more.
* Sessions live in Redis (``notifier:console:session:<SHA-256 of the token>``: the operator,
  the CSRF token, when it began, and a digest of the password hash it began with), so a logout
  ends one at once, and so does taking the operator out of ``NOTIFIER_CONSOLE_USERS`` or giving
  her a new password (the digest no longer matches). The cookie holds only the random token:
  ``__Host-`` (``Secure``, ``Path=/``, no ``Domain``: a sibling subdomain cannot plant one),
  ``HttpOnly``, ``SameSite=Strict``, and no expiry of its own (the browser's session; Redis
  keeps the time). A session idle :data:`IDLE` seconds, or older than :data:`LONGEST`, is over.
* CSRF: every POST carries the session's token (the login form: the one its own cookie holds).
* The login limit: failed logins per name and per address (``notifier:console:login:…``)
  over the last :data:`WINDOW` seconds, sliding (each login counted before its password is
  checked, and forgiven when it was right); past either, a login is refused before its password
  is looked at.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import time
from dataclasses import dataclass
from functools import cache
from typing import cast

from redis import Redis
from werkzeug.security import check_password_hash, generate_password_hash

from notifier.settings import ConsoleUser
from notifier.stores.scripts import Lua

COOKIE = "__Host-notifier_console"
LOGIN_COOKIE = "__Host-notifier_console_login"  # the login form's CSRF token, before any session
IDLE = 30 * 60
LONGEST = 12 * 3600
FAILURE_DELAY = 1.0  # seconds a failed login waits, on top of the hash's own time
WINDOW = 15 * 60
NAME_LIMIT = 5  # failed logins of one name in any WINDOW seconds
ADDRESS_LIMIT = 20  # failed logins from one address in any WINDOW seconds
PREFIX = "notifier:console"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def _decoy(method: str) -> str:
    """What an unknown name is checked against: a hash made as the operators' are (``method``,
    werkzeug's ``scrypt:32768:8:1``), so the same work as a known name's wrong password. Made
    once a process (a password no one knows, 0.1 s of CPU with the default), not once an app,
    and only when first needed: a worker or beat, which serve no login, never pays for it."""
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


class Operators:
    """The console's accounts, by name."""

    def __init__(self, users: list[ConsoleUser]) -> None:
        self._hashes = {u.name: u.password_hash.get_secret_value() for u in users}
        # An unknown name costs what the first operator's wrong password does: `notifier console
        # add-user` makes every entry alike.
        self._method = next(iter(self._hashes.values()), "scrypt").split("$", 1)[0]

    def __bool__(self) -> bool:
        return bool(self._hashes)

    def key(self, name: str) -> str | None:
        """A digest of ``name``'s password hash (None: no such operator): what her sessions
        began with, so that a new password or her removal ends them."""
        known = self._hashes.get(name)
        return None if known is None else _digest(known)[:32]

    def check(self, name: str, password: str) -> bool:
        """Whether ``password`` is ``name``'s (as slow for an unknown name)."""
        known = self._hashes.get(name)
        good = check_password_hash(known or _decoy(self._method), password)
        return good and known is not None


@dataclass(frozen=True)
class Session:
    """An operator's session: who, and the token every change carries."""

    operator: str
    csrf: str
    key: str | None  # Operators.key of the operator when it began


class Sessions:
    """Sessions kept in Redis, found by the SHA-256 of their cookie's token."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def _key(self, token: str) -> str:
        return f"{PREFIX}:session:{_digest(token)}"

    def begin(self, operator: str, key: str | None) -> str:
        """A new session for ``operator`` (``key``: her Operators.key); its token, for the
        cookie."""
        token = new_token()
        value = {"operator": operator, "csrf": new_token(), "began": time.time(), "key": key}
        self.redis.set(self._key(token), json.dumps(value), ex=IDLE)
        return token

    def find(self, token: str | None, *, touch: bool = True) -> Session | None:
        """The session of ``token`` if it is live; its idle time starts again when ``touch``
        (an operator's request, not the page's own live refresh)."""
        if not token or len(token) > 100:
            return None
        raw = cast(str | None, self.redis.get(self._key(token)))
        if raw is None:
            return None
        value = json.loads(raw)
        if time.time() - float(value["began"]) > LONGEST:
            self.end(token)
            return None
        if touch:
            self.redis.expire(self._key(token), IDLE)
        return Session(operator=value["operator"], csrf=value["csrf"], key=value.get("key"))

    def end(self, token: str | None) -> None:
        if token:
            self.redis.delete(self._key(token))


def new_token() -> str:
    """A random token (a session's, a form's)."""
    return secrets.token_urlsafe(32)


def same_token(given: str | None, expected: str) -> bool:
    """Whether a form's CSRF token is the expected one (compared in constant time)."""
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


@dataclass(frozen=True)
class Counted:
    """A login counted against the limit (``member`` in the name's and the address's windows),
    or refused: then ``wait`` is the seconds until one may be tried again, and nothing counted."""

    keys: tuple[str, str]
    member: str
    wait: int | None


class LoginLimit:
    """Failed logins per name and per address over the last :data:`WINDOW` seconds.

    The windows slide (a failure leaves them :data:`WINDOW` seconds after it was made): fixed
    windows let as many again through just after a window's turn. A login is counted before its
    password is checked, and forgiven once it proved right, so that many tried at once cannot
    all pass the limit before any is counted; a login refused for the limit counts nothing, so
    guessing on at a locked name does not keep it locked.
    """

    _take = Lua("console/take_login")

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def take(self, name: str, address: str) -> Counted:
        """Count a login about to be checked, or refuse it."""
        keys = (
            f"{PREFIX}:login:{{console}}:name:{_digest(name)}",
            f"{PREFIX}:login:{{console}}:address:{_digest(address)}",
        )
        member = new_token()
        window = WINDOW * 1000
        limits = [NAME_LIMIT, ADDRESS_LIMIT]
        _, wait_ms = self._take(keys=keys, args=[int(time.time() * 1000), member, *limits, window])
        return Counted(keys, member, math.ceil(int(wait_ms) / 1000) if int(wait_ms) else None)

    def forgive(self, counted: Counted) -> None:
        """Take back the count of a login whose password was right."""
        with self.redis.pipeline(transaction=False) as pipe:
            for key in counted.keys:
                pipe.zrem(key, counted.member)
            pipe.execute()


class Sealed:
    """A recipient searched for travels in the console's URLs sealed (AES-GCM, bound to the
    session), so no address or number shows in a URL, a proxy's log or the browser's history."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(hashlib.sha256(key).digest())

    def seal(self, text: str, session: Session) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, text.encode(), session.csrf.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, token: str, session: Session) -> str | None:
        """The text sealed in ``token`` for this session; None for anything else."""
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            return self._aead.decrypt(raw[:12], raw[12:], session.csrf.encode()).decode()
        except (ValueError, InvalidTag):
            return None
