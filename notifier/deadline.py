"""A whole-call deadline for every outbound connection: a total budget, not a timeout per read.

A socket's timeout bounds one read. A peer that sends a byte just before each read would time
out (a status line, then a header byte every 2 s) keeps a call going for as long as it likes,
and the worker thread with it. So every outbound call Notifier makes (provider APIs, status
callbacks, SMTP, certificate fetches) runs inside a :class:`Deadline`:

- each connection the call uses is registered with the deadline as it is opened or taken from
  a pool (:func:`watch`), and one watcher thread a process shuts its socket down
  (``shutdown(SHUT_RDWR)``) when the time is up: a read blocked on it returns at once, and every
  later read or write fails, however the peer trickles;
- the time left also caps each socket timeout (connect, read), so a call never waits past its
  budget on one operation either.

The watcher keeps its own duplicate of each socket's descriptor, so a socket that TLS wraps (a
new object on the same connection) is still reached, and a descriptor number the call closed and
the process reused is never touched. A connection goes back to a pool once its answer is read;
the next call to take it registers it as its own, and only the deadline that owns a connection
may shut it down. A pool that closes its connections itself (``notifier.providers.smtp``) keeps
each one's duplicate for as long as the connection (``watch(…, kept=True)``, then
:func:`let_go` as it closes it): a call on a kept connection then costs no ``dup``.

For ``requests`` (the Twilio SDK, the Aliyun and Tencent adapters, callbacks and anything to
come, such as SNS certificate fetches): mount a :class:`DeadlineAdapter`, which gives each
request, its body included, the adapter's budget (``session(DeadlineAdapter(total=5, …))``). For
another client: ``with Deadline(seconds) as d`` around the call, and :func:`watch` with each
socket it opens (``notifier.providers.smtp`` does so for smtplib).

Not covered: resolving a host name (``getaddrinfo`` cannot be interrupted; the resolver's own
timeouts bound it) and a TCP connect, which the time left caps but which urllib3 tries once for
each address a name resolves to.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
import urllib.request
import weakref
from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, ClassVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.response import BaseHTTPResponse
from urllib3.util import Timeout, parse_url


class DeadlineExceeded(requests.Timeout):
    """A call ran out of its whole budget; retrying may help.

    A ``requests.Timeout``, and so an ``OSError``: whoever handles network faults handles it.
    """


_current: ContextVar[Deadline | None] = ContextVar("notifier_deadline", default=None)


class Deadline:
    """Shut down every connection a call uses once ``seconds`` have passed.

    ``with Deadline(5) as d:`` the call; afterwards ``d.expired`` says whether the time ran out.
    Nested in another deadline, it ends no later than the outer one.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self._cut = False  # the watcher shut its connections down
        # (the connection object, our duplicate of its socket, whether this deadline made it)
        self._sockets: list[tuple[object, socket.socket, bool]] = []
        self._token: Token[Deadline | None] | None = None

    @property
    def expired(self) -> bool:
        """Whether the time is up (a socket timeout capped to it may fire a moment before the
        watcher does: that is the deadline too)."""
        return self._cut or time.monotonic() >= self.at

    def remaining(self) -> float:
        """Seconds left; never below a millisecond (a socket timeout of 0 means non-blocking)."""
        return max(0.001, self.at - time.monotonic())

    def __enter__(self) -> Deadline:
        outer = _current.get()
        if outer is not None:
            self.at = min(self.at, outer.at)
        self._token = _current.set(self)
        _watcher.add(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _watcher.discard(self)
        if self._token is not None:
            _current.reset(self._token)
        for _, duplicate, made in self._sockets:
            if made:
                duplicate.close()
        self._sockets.clear()

    def _watch(self, owner: object, duplicate: socket.socket, made: bool) -> None:
        # Called with the watcher's lock held.
        if self.expired:
            raise DeadlineExceeded(f"no complete answer within {self.seconds:g} s")
        self._sockets.append((owner, duplicate, made))

    def _expire(self, owners: Mapping[object, Deadline]) -> None:
        # Called with the watcher's lock held.
        self._cut = True
        for owner, duplicate, _ in self._sockets:
            if owners.get(owner) is self:
                with contextlib.suppress(OSError):  # the peer or the call closed it first
                    duplicate.shutdown(socket.SHUT_RDWR)


def _duplicate(sock: socket.socket) -> socket.socket:
    return socket.fromfd(sock.fileno(), sock.family, sock.type, sock.proto)


def watch(owner: object, sock: socket.socket, *, kept: bool = False) -> None:
    """Put ``sock``, the socket of connection ``owner``, under the current deadline, if any.

    From now until that deadline ends, ``owner`` is its call's: an earlier deadline that let
    the connection go (back to a pool) no longer shuts it down. If the time is already up (a
    reconnect after it ran out), ``sock`` is closed and DeadlineExceeded raised.

    ``kept``: ``owner`` is a pool's connection that many calls use; the duplicate of its socket
    is kept for the next call, and closed by :func:`let_go` (which the pool must call as it
    closes the connection: the duplicate holds the connection open) or once ``owner`` is
    collected.
    """
    deadline = _current.get()
    if deadline is None:
        return
    try:
        _watcher.watch(deadline, owner, sock, kept)
    except DeadlineExceeded:
        sock.close()
        raise


def let_go(owner: object) -> None:
    """Close the duplicate kept for connection ``owner`` (see :func:`watch`), as it is closed."""
    _watcher.let_go(owner)


class _Watcher:
    """One thread a process that shuts down the connections of deadlines that ran out."""

    def __init__(self) -> None:
        # On a plain lock (nothing here takes it twice), not Condition()'s default RLock: the
        # web's gevent workers patch threading after gunicorn imported it, which leaves RLock
        # the C one, owned by the OS thread every greenlet shares; the watcher, a greenlet
        # there, then took the lock its starter held, and waiting released it from under it.
        self._wake = threading.Condition(threading.Lock())
        self._live: set[Deadline] = set()
        self._owners: dict[object, Deadline] = {}
        # A kept connection's socket, our duplicate of it, and what closes the duplicate.
        self._kept: weakref.WeakKeyDictionary[
            object, tuple[socket.socket, socket.socket, weakref.finalize[Any, Any]]
        ] = weakref.WeakKeyDictionary()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._wakes_at = math.inf  # when the thread looks next, unless woken

    def add(self, deadline: Deadline) -> None:
        with self._wake:
            self._live.add(deadline)
            # A forked child inherits the object but not the thread.
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._wakes_at = math.inf
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            if deadline.at < self._wakes_at:
                # Woken only for a deadline earlier than its next look: deadlines of one length
                # (each mail's) come in order, and each costs the thread nothing.
                self._wakes_at = deadline.at
                self._wake.notify()

    def discard(self, deadline: Deadline) -> None:
        with self._wake:
            self._live.discard(deadline)
            for owner, _, _ in deadline._sockets:
                if self._owners.get(owner) is deadline:
                    del self._owners[owner]

    def watch(self, deadline: Deadline, owner: object, sock: socket.socket, kept: bool) -> None:
        # The duplicate is made before the lock is taken: dup() lets the GIL go, and a thread
        # that held the lock meanwhile would stall every other call's start and end behind it.
        try:
            duplicate = self.kept(owner, sock) if kept else _duplicate(sock)
        except OSError:
            return  # closed already: nothing left to cut
        try:
            with self._wake:
                deadline._watch(owner, duplicate, not kept)
                self._owners[owner] = deadline
        except DeadlineExceeded:
            if not kept:
                duplicate.close()
            raise

    def kept(self, owner: object, sock: socket.socket) -> socket.socket:
        """The duplicate kept for ``owner``'s ``sock``, made if it has none (or had another
        socket's: reconnected, or wrapped by TLS). One call at a time uses a connection, so
        nothing else changes ``owner``'s entry meanwhile."""
        found = self._kept.get(owner)
        if found is not None:
            original, duplicate, close = found
            if original is sock and close.alive:
                return duplicate
            close()
        duplicate = _duplicate(sock)
        self._kept[owner] = (sock, duplicate, weakref.finalize(owner, duplicate.close))
        return duplicate

    def let_go(self, owner: object) -> None:
        found = self._kept.pop(owner, None)
        if found is not None:
            found[2]()

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                for deadline in [d for d in self._live if d.at <= now]:
                    self._live.discard(deadline)
                    deadline._expire(self._owners)
                self._wakes_at = min((d.at for d in self._live), default=math.inf)
                self._wake.wait(None if self._wakes_at == math.inf else self._wakes_at - now)


_watcher = _Watcher()


class _Watched:
    """A urllib3 connection that puts its socket under the current deadline: a new one as soon
    as it is connected (before TLS, so a handshake that trickles is cut too), a kept one as a
    request starts on it."""

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        watch(self, sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            # Kept: the duplicate serves every call on this connection (a call then costs no
            # dup and close), and goes as the connection closes.
            watch(self, sock, kept=True)
        super().request(*args, **kwargs)  # type: ignore[misc]

    def close(self) -> None:
        let_go(self)
        super().close()  # type: ignore[misc]


def watched_pools(*mixins: type) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3's pool classes by scheme, their connections watched (and made of ``mixins``
    first: a guard on the connected address, say), for an adapter's ``pools``."""
    found: dict[str, type[HTTPConnectionPool]] = {}
    for scheme, pool, connection in (
        ("http", HTTPConnectionPool, HTTPConnection),
        ("https", HTTPSConnectionPool, HTTPSConnection),
    ):
        made = type(f"Watched{connection.__name__}", (*mixins, _Watched, connection), {})
        found[scheme] = type(f"Watched{pool.__name__}", (pool,), {"ConnectionCls": made})
    return found


WATCHED_POOLS = watched_pools()

_Timeout = float | tuple[float | None, float | None] | None


def _capped(timeout: object, left: float) -> _Timeout:
    """``timeout`` (a float or a (connect, read) pair, as requests takes it) within ``left``."""
    if isinstance(timeout, int | float):
        return min(float(timeout), left)
    if isinstance(timeout, tuple) and len(timeout) == 2:
        return tuple(left if t is None else min(float(t), left) for t in timeout)  # type: ignore[return-value]
    return left


class DeadlineAdapter(HTTPAdapter):
    """A ``requests`` adapter that gives each request ``total`` seconds in all, the body read
    included, and keeps up to ``max_connections`` connections a host alive.

    No automatic retries: a retry is the caller's decision (a send is not idempotent). Do not
    stream (``stream=True``) through it: the body would be read after the budget ended, and its
    socket, still registered to that spent deadline, would be cut by nothing (a body trickled a
    byte at a time outlives any :class:`Deadline` of the caller's). To cap an answer's size,
    wrap its raw body in ``build_response`` instead, as :class:`notifier.sns.CertificateAdapter`
    does, so that ``send`` reads it within the budget.
    """

    # The pools of connections made straight to the host; a subclass may guard them more.
    pools: ClassVar[dict[str, type[HTTPConnectionPool]]] = WATCHED_POOLS

    def __init__(self, *, total: float, max_connections: int) -> None:
        self.total = total
        super().__init__(pool_connections=1, pool_maxsize=max_connections, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(self.pools)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            # Through a proxy the socket reaches the proxy, not the host: watched, not guarded.
            manager.pool_classes_by_scheme = dict(WATCHED_POOLS)
        return manager

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, timeout: object = None,
        **kwargs: Any,
    ) -> requests.Response:  # fmt: skip
        with Deadline(self.total) as deadline:
            try:
                response = super().send(
                    request, stream=stream, timeout=_capped(timeout, deadline.remaining()),
                    **kwargs,
                )  # fmt: skip
                if not stream:
                    _ = response.content  # the body within the budget too
            except OSError as e:  # requests' errors are OSErrors too
                if deadline.expired:
                    raise self._exceeded(request) from e
                raise
            # A socket shut down mid-answer reads as its end: http.client takes headers cut
            # short, or a body without a length, for a whole answer. Never trust one.
            if deadline.expired:
                response.close()
                raise self._exceeded(request)
        return response

    def urlopen(
        self, method: str, url: str, *, headers: Mapping[str, str | bytes], body: bytes | None,
        verify: bool | str,
    ) -> BaseHTTPResponse:  # fmt: skip
        """One request straight on the adapter's pools, its answer read whole within the
        budget, for a caller that holds a request another library built and checked (botocore's,
        signed): requests' session and request objects would cost a fifth of the call's CPU over
        again. ``verify`` as a session's. Not through a proxy (send those through the session).
        Raises what the session would: ``requests``' errors, :class:`DeadlineExceeded` among
        them."""
        target = requests.PreparedRequest()
        target.url = url  # all that choosing (or making) the pool reads of a request
        with Deadline(self.total) as deadline:
            try:
                pool = self.get_connection_with_tls_context(target, verify)
                self.cert_verify(pool, url, verify, None)
                left = deadline.remaining()
                answer = pool.urlopen(
                    # http.client sends a bytes value as it is (urllib3's hints say str only)
                    method, parse_url(url).request_uri, body=body, headers=headers,  # type: ignore[arg-type]
                    redirect=False, assert_same_host=False, preload_content=True,
                    decode_content=False, retries=False, timeout=Timeout(connect=left, read=left),
                )  # fmt: skip
            except (OSError, HTTPError) as e:
                if deadline.expired:
                    raise DeadlineExceeded(f"no complete answer within {self.total:g} s") from e
                raise _as_requests(e) from e
            if deadline.expired:  # as in send: an answer cut short reads as a whole one
                raise DeadlineExceeded(f"no complete answer within {self.total:g} s")
        return answer

    def _exceeded(self, request: requests.PreparedRequest) -> DeadlineExceeded:
        return DeadlineExceeded(f"no complete answer within {self.total:g} s", request=request)


def _as_requests(error: OSError | HTTPError) -> requests.RequestException:
    """urllib3's error as ``requests`` names it (``HTTPAdapter.send``'s mapping, in short)."""
    if isinstance(error, SSLError):
        return requests.exceptions.SSLError(error)
    if isinstance(error, ReadTimeoutError):
        return requests.ReadTimeout(error)
    if isinstance(error, ConnectTimeoutError) and not isinstance(error, NewConnectionError):
        return requests.ConnectTimeout(error)
    return requests.ConnectionError(error)


def session(adapter: HTTPAdapter, into: requests.Session | None = None) -> requests.Session:
    """``into`` (a new session unless given) with ``adapter`` for http and https.

    ``requests`` reads the environment again for every request (each variable, for proxies, a
    CA bundle, and ``~/.netrc`` on disk): about a third of a millisecond of CPU a call, a tenth
    of what a worker spends on a mail. Unless a proxy is set (whose ``NO_PROXY`` is matched
    against each URL), the session reads it once, here: ``REQUESTS_CA_BUNDLE`` (or
    ``CURL_CA_BUNDLE``) as its ``verify``, and no ``~/.netrc`` (every caller sends its own
    credentials)."""
    found = into if into is not None else requests.Session()
    for scheme in ("https://", "http://"):
        found.mount(scheme, adapter)
    if found.trust_env and not urllib.request.getproxies_environment():
        found.trust_env = False
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if found.verify is True and bundle:
            found.verify = bundle
    return found
