"""Notifier's benchmark: ingress, drain, end to end, captchas and upload tokens, beside the
tutorial recipe (naive_app.py) and the machine's limits, in one run on one machine.

    bench/run            # about six minutes; prints a table, writes bench/results/latest.json
    bench/run lanes      # only the lanes figures (issue #12)
    bench/run batch      # only the batch figures (issue #16)
    bench/run sentinel   # only the replication figures: the price of WAIT, a failover (issue #22)
    bench/run cores      # only the every-core figures (issue #22)

It starts its own Redis, an SMTP sink (sink.py) and each service the way its Procfile does;
the load comes from loadgen.py in a process of its own. It prints figures; it asserts nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, cast

import redis

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from config import Settings, usable_cores  # noqa: E402
from notifier.cli import procfile_processes  # noqa: E402
from notifier.embedded import free_port, redis_server_binary  # noqa: E402
from notifier.keys import new_key  # noqa: E402
from notifier.providers.base import OutgoingMail  # noqa: E402
from notifier.providers.mime import build_mime  # noqa: E402

DRAIN = 2000
REPEATS = 3
RELAY_MS = 20  # an SMTP relay this far away (each command)
TWILIO_MS = 200  # Twilio's answer time from most places
CAPTCHAS = 1000
BACKLOG = 3000
BATCH_ROWS = 10_000  # the largest batch, for the accept time
ACCEPTS = 5  # accepts measured, of that batch
LOGS = Path(tempfile.mkdtemp(prefix="notifier-bench-"))
MAIL = '{"to": ["u{u}@example.com"], "subject": "Bench {n}", "text": "Hello from the bench."}'
# Settings bench/run takes from its caller's environment: the deployment's size.
SIZING = (
    "NOTIFIER_WORKER_PROCESSES",
    "NOTIFIER_WORKER_CONCURRENCY",
    "NOTIFIER_MAIL_MAX_CONNECTIONS",
)
# One mail of the welcome template as a single send; a batch's rows carry the same (batch_body).
WELCOME = (
    '{"to": ["u{u}@example.com"], "template": "welcome", "reference": "r-{n}", "data": '
    '{"name": "Ada Lovelace", "product": "Acme Cloud", "login_url": "https://app.example.com/s/{n}"}}'
)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what} (logs in {LOGS})")
        time.sleep(0.05)
    return value


def has_written(proc: Proc, text: str) -> bool:
    """Whether ``proc`` has written ``text`` to its log."""
    return text in proc.log.read_text()


class Proc:
    """A child process group with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        self.log = LOGS / f"{name}.log"
        with open(self.log, "ab") as out:
            self.p = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def stop(self) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()


class Procs:
    """Processes started together and stopped together (the workers of a deployment)."""

    def __init__(self, procs: list[Proc]) -> None:
        self.procs = procs

    def stop(self) -> None:
        for proc in self.procs:
            os.killpg(proc.p.pid, signal.SIGTERM)
        for proc in self.procs:
            proc.stop()


def cpu_seconds(procs: list[Proc]) -> float:
    """User and system CPU seconds these processes (every thread of each) have used so far."""
    total = 0
    for proc in procs:
        fields = Path(f"/proc/{proc.p.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def http_up(url: str) -> bool:
    """True once anything answers HTTP at ``url`` (a 404 is an answer)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def load(mode: str, url: str, **options: Any) -> dict[str, Any]:
    argv = [sys.executable, str(BENCH / "loadgen.py"), mode, "--url", url]
    for name, value in options.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            argv += [f"--{name.replace('_', '-')}", str(v)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def size(env: dict[str, str]) -> tuple[int, int]:
    """Worker processes, and threads of each, in a deployment with the settings in ``env``."""
    threads = Settings.model_fields["worker_concurrency"].default
    return (
        int(env.get("NOTIFIER_WORKER_PROCESSES") or usable_cores()),
        int(env.get("NOTIFIER_WORKER_CONCURRENCY") or threads),
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def batch_body(rows: int) -> bytes:
    """A welcome batch of ``rows`` rows, each as WELCOME's mail: a 25-character address, the
    template's three fields and a reference."""
    run = uuid.uuid4().hex[:6]
    return json.dumps({"template": "welcome", "recipients": [
        {"to": f"u{n:05d}.{run}@example.com", "reference": f"r-{n}", "data": {
            "name": "Ada Lovelace", "product": "Acme Cloud",
            "login_url": f"https://app.example.com/s/{n}",
        }} for n in range(rows)
    ]}).encode()  # fmt: skip


class Bench:
    def __init__(self) -> None:
        self.redis_port, self.smtp_port = free_port(), free_port()
        self.redis_proc = Proc(
            "redis",
            [redis_server_binary(), "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(LOGS)],
            dict(os.environ),
        )  # fmt: skip
        self.state = redis.Redis(port=self.redis_port, db=0)
        self.sink_db = redis.Redis(port=self.redis_port, db=15)
        wait_until(lambda: self._ping(), 10, "redis")
        sink_db = f"redis://127.0.0.1:{self.redis_port}/15"
        self.sink = Proc(
            "sink", [sys.executable, str(BENCH / "sink.py"), str(self.smtp_port), sink_db],
            dict(os.environ),
        )  # fmt: skip
        # The same sink with a relay's latency, and Twilio as far away as it is from most places.
        self.far_smtp_port, self.twilio_port = free_port(), free_port()
        self.far_sink = Proc(
            "sink-far",
            [sys.executable, str(BENCH / "sink.py"), str(self.far_smtp_port), sink_db,
             str(RELAY_MS)],
            dict(os.environ),
        )  # fmt: skip
        self.twilio = Proc(
            "twilio",
            [sys.executable, str(BENCH / "twilio_sink.py"), str(self.twilio_port), sink_db,
             str(TWILIO_MS)],
            dict(os.environ),
        )  # fmt: skip
        # And a Twilio on loopback, answering at once: what the workers' own CPU allows.
        self.near_twilio_port = free_port()
        self.near_twilio = Proc(
            "twilio-near",
            [sys.executable, str(BENCH / "twilio_sink.py"), str(self.near_twilio_port), sink_db,
             "0"],
            dict(os.environ),
        )  # fmt: skip
        for proc, ready in [(self.sink, "sink ready"), (self.far_sink, "sink ready"),
                            (self.twilio, "twilio ready"), (self.near_twilio, "twilio ready")]:  # fmt: skip
            wait_until(partial(has_written, proc, ready), 10, proc.log.name)
        self.key, digest = new_key()
        self.headers = [f"Authorization: Bearer {self.key}", "Content-Type: application/json"]
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")},
            "NOTIFIER_ENV": "production",
            "NOTIFIER_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "NOTIFIER_API_KEYS": json.dumps([{
                "client": "bench", "key_sha256": digest, "scopes": ["mail", "sms", "upload"],
                "qiniu_buckets": ["bench"], "rate": "1000000/s",
            }]),
            "NOTIFIER_MAIL_SERVER": "127.0.0.1",
            "NOTIFIER_MAIL_PORT": str(self.smtp_port),
            "NOTIFIER_MAIL_DEFAULT_SENDER": "bench@example.com",
            "NOTIFIER_SMS_PROVIDERS": "twilio",
            "NOTIFIER_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "NOTIFIER_TWILIO_AUTH_TOKEN": "bench-token",
            "NOTIFIER_TWILIO_FROM": "+15005550006",
            "NOTIFIER_TWILIO_BASE_URL": f"http://127.0.0.1:{self.twilio_port}",
            "NOTIFIER_CAPTCHA_SECRET": hashlib.sha256(b"bench").hexdigest(),
            "NOTIFIER_CAPTCHA_RESEND_INTERVAL": "0",
            "NOTIFIER_CAPTCHA_DAILY_LIMIT": "1000000",
            "NOTIFIER_CAPTCHA_IP_HOURLY_LIMIT": "1000000",
            "NOTIFIER_BATCH_MAX_PENDING": "10000000",
            "NOTIFIER_QINIU_ACCESS_KEY": "bench-ak",
            "NOTIFIER_QINIU_SECRET_KEY": "bench-sk",
            "NOTIFIER_STATE_DIR": str(LOGS / "state"),
            "BENCH_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "BENCH_SMTP_PORT": str(self.smtp_port),
            "WEB_CONCURRENCY": "2",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            # The sizing settings of the caller, to compare sizes (unset: the defaults).
            **{k: v for k, v in os.environ.items() if k in SIZING},
        }  # fmt: skip
        self.results: dict[str, Any] = {}

    def _ping(self) -> bool:
        try:
            return bool(self.state.ping())
        except redis.RedisError:
            return False

    def reset(self) -> None:
        self.state.flushdb()
        self.sink_db.flushdb()

    # -- the pieces ---------------------------------------------------------------------

    def web(self, name: str, argv: list[str], cwd: Path = ROOT) -> tuple[Proc, str]:
        port = free_port()
        proc = Proc(name, [*argv, "--bind", f"127.0.0.1:{port}"], self.env, cwd)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_up(f"{base}/healthz"), 30, name)
        return proc, base

    def worker(
        self, name: str, app: str, cwd: Path = ROOT, env: dict[str, str] | None = None
    ) -> Proc:
        """Our worker as the Procfile starts it; the recipe's with concurrency 2 (its cores)."""
        sized = [] if app == "celery_app" else ["--concurrency", "2"]
        argv = [str(BIN / "celery"), "-A", app, "worker", *sized, "--loglevel", "INFO"]
        return Proc(name, argv, env or self.env, cwd)

    def workers(self, name: str, env: dict[str, str]) -> Procs:
        """The default deployment's workers: the Procfile's ``worker`` line as many times as
        ``notifier run`` starts it (NOTIFIER_WORKER_PROCESSES, else one per core), each its own
        node, started at once."""
        from honcho.environ import parse_procfile

        procfile = parse_procfile((ROOT / "Procfile").read_text()).processes
        commands = procfile_processes(procfile, size(env)[0])
        return Procs([
            Proc(f"{name}-{process}", ["/bin/sh", "-c", f"exec {command}"], env)
            for process, command in commands.items() if process.startswith("worker.")
        ])  # fmt: skip

    def call(self, url: str, body: bytes | None = None) -> tuple[dict[str, Any], float]:
        """POST ``body`` (GET without one) as the bench's client: the answer, and seconds from
        sending the request to reading the whole answer."""
        import urllib.request

        headers = dict(h.split(": ", 1) for h in self.headers)
        started = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=60) as r:
            answer: dict[str, Any] = json.loads(r.read())
        return answer, time.perf_counter() - started

    def ingress(self, base: str, body: str, auth: bool = True) -> dict[str, Any]:
        """The median of three 10-second runs after a warm-up (this machine is noisy)."""
        headers = self.headers if auth else self.headers[1:]
        load("closed", f"{base}/v1/mail", body=body, header=headers, conns=16, seconds=2)
        runs = []
        for _ in range(REPEATS):
            self.reset()
            runs.append(
                load("closed", f"{base}/v1/mail", body=body, header=headers, conns=16, seconds=10)
            )
        runs.sort(key=lambda r: r["rps"])
        return {**runs[len(runs) // 2], "runs_rps": [round(r["rps"]) for r in runs]}

    def queue(
        self, base: str, body: str, auth: bool = True, path: str = "/v1/mail", count: int = DRAIN
    ) -> None:
        headers = self.headers if auth else self.headers[1:]
        result = load("closed", f"{base}{path}", body=body, header=headers, conns=16,
                      seconds=120, count=count)  # fmt: skip
        assert result["requests"] == count and not result["errors"], result

    def drain(self, worker: Proc | Procs, mails: int = DRAIN) -> dict[str, Any]:
        """Mails a second from the first to the last arrival, SMTP connections opened, and the
        CPU time the workers, the sink and Redis spent a mail from the first arrival on."""
        workers = worker.procs if isinstance(worker, Procs) else [worker]
        counted = {
            "workers": workers,
            "sink": [self.sink, self.far_sink],
            "redis": [self.redis_proc],
        }
        wait_until(lambda: int(self.sink_db.get("bench:messages") or 0) >= 1, 600, "a first mail")
        before = {what: cpu_seconds(procs) for what, procs in counted.items()}
        wait_until(lambda: int(self.sink_db.get("bench:messages") or 0) >= mails, 600, "the drain")
        spent = {what: cpu_seconds(procs) - before[what] for what, procs in counted.items()}
        worker.stop()
        arrivals = [float(t) for t in self.sink_db.hvals("bench:arrivals")]
        took = max(arrivals) - min(arrivals)
        return {
            "mails": len(arrivals),
            "mails_per_s": (len(arrivals) - 1) / took,
            "smtp_connections": int(self.sink_db.get("bench:connections") or 0),
            "cpu_ms_per_mail": {what: 1000 * t / len(arrivals) for what, t in spent.items()},
        }

    # -- the runs -----------------------------------------------------------------------

    def notifier(self) -> None:
        mail = (
            '{"to": ["u{u}@example.com"], "subject": "Bench {n}", "text": "Hello from the bench."}'
        )
        web, base = self.web("notifier-web", [str(BIN / "gunicorn"), "notifier:create_app()"])
        try:
            r: dict[str, Any] = {"ingress": self.ingress(base, mail)}
            r["captcha_pairs"] = load(
                "closed", f"{base}/v1/sms/captcha", header=self.headers, conns=16, seconds=5,
                body='{"phone": "+86138{p}", "purpose": "bench"}',
                then_url=f"{base}/v1/sms/captcha/verify",
                then_body='{"phone": "+86138{p}", "purpose": "bench", "code": "000000"}',
            )  # fmt: skip
            r["upload_tokens"] = load(
                "closed", f"{base}/v1/uploads/qiniu/token", header=self.headers, conns=16,
                seconds=5, body='{"bucket": "bench", "key": "u/{n}.png", "fsize_limit": 1048576}',
            )  # fmt: skip
            self.reset()
            self.queue(base, mail)
            r["drain"] = self.drain(self.worker("notifier-worker", "celery_app"))
            self.reset()
            worker = self.worker("notifier-worker-e2e", "celery_app")
            wait_until(lambda: "ready." in worker.log.read_text(), 60, "the worker")
            sent = load(
                "open", f"{base}/v1/mail", body=mail, header=self.headers, rate=100, seconds=10
            )
            wait_until(lambda: self.sink_db.hlen("bench:arrivals") >= len(sent["sent"]), 120, "e2e")
            # redis-py types a reply as bytes or str alike; this client (no decode_responses)
            # answers bytes.
            answered = cast(dict[bytes, bytes], self.sink_db.hgetall("bench:arrivals"))
            arrivals = {k.decode(): float(v) for k, v in answered.items()}
            e2e = [arrivals[i] - at for i, at in sent["sent"].items()]
            r["end_to_end"] = {
                "requests": len(e2e), "errors": sent["errors"],
                "p50_ms": percentile(e2e, 0.5) * 1000, "p99_ms": percentile(e2e, 0.99) * 1000,
            }  # fmt: skip
            worker.stop()
            self.results["notifier"] = r
        finally:
            web.stop()

    def lanes(self) -> None:
        """Drain near and far, captchas through a far Twilio, a captcha behind a mail backlog."""
        mail = (
            '{"to": ["u{u}@example.com"], "subject": "Bench {n}", "text": "Hello from the bench."}'
        )
        far = {**self.env, "NOTIFIER_MAIL_PORT": str(self.far_smtp_port)}
        web, base = self.web("lanes-web", [str(BIN / "gunicorn"), "notifier:create_app()"])
        r: dict[str, Any] = {}
        try:
            for label, env in [("drain_loopback", self.env), (f"drain_{RELAY_MS}ms", far)]:
                self.reset()
                self.queue(base, mail)
                r[label] = self.drain(self.worker(f"lanes-{label}", "celery_app", env=env))
            r["captchas"] = self.texts(
                base, CAPTCHAS, lambda: self.worker("lanes-captchas", "celery_app", env=far)
            )
            r["captcha_behind_backlog"] = self.captcha_behind_backlog(base, mail, far)
        finally:
            web.stop()
        self.results["lanes"] = r

    def dkim(self) -> None:
        """The same drain, unsigned and DKIM-signed (a 2048-bit RSA key for example.com)."""
        mail = (
            '{"to": ["u{u}@example.com"], "subject": "Bench {n}", "text": "Hello from the bench."}'
        )
        key = LOGS / "dkim.pem"
        subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "2048"],
                       check=True, capture_output=True)  # fmt: skip
        keys = json.dumps({"example.com": {"selector": "bench", "private_key_file": str(key)}})
        signed = {**self.env, "NOTIFIER_DKIM_KEYS": keys}
        web, base = self.web("dkim-web", [str(BIN / "gunicorn"), "notifier:create_app()"])
        r: dict[str, Any] = {}
        try:
            for label, env in [("unsigned", self.env), ("signed", signed)]:
                self.reset()
                self.queue(base, mail)
                r[label] = self.drain(self.worker(f"dkim-{label}", "celery_app", env=env))
        finally:
            web.stop()
        self.results["dkim"] = r

    def texts(self, base: str, count: int, start: Callable[[], Proc | Procs]) -> dict[str, Any]:
        """``count`` captchas queued, then the workers ``start`` gives: texts a second at the
        Twilio server, from the first to the last, and the HTTP connections it took."""
        self.reset()
        captcha = '{"phone": "+86138{p}", "purpose": "bench"}'
        self.queue(base, captcha, path="/v1/sms/captcha", count=count)
        workers = start()
        wait_until(lambda: self.sink_db.hlen("bench:sms") >= count, 600, "the captchas")
        workers.stop()
        texts = [float(t) for t in self.sink_db.hvals("bench:sms")]
        return {
            "texts": len(texts),
            "per_s": (len(texts) - 1) / (max(texts) - min(texts)),
            "connections": int(self.sink_db.get("bench:sms_connections") or 0),
        }

    def cores(self) -> None:
        """The default deployment (the Procfile's worker once per core, as notifier run starts
        it): its drain beside one smtplib connection, near and far, and its captchas through a
        far Twilio beside a Twilio on loopback."""
        mail = (
            '{"to": ["u{u}@example.com"], "subject": "Bench {n}", "text": "Hello from the bench."}'
        )
        far = {**self.env, "NOTIFIER_MAIL_PORT": str(self.far_smtp_port)}
        near_twilio = {
            **self.env,
            "NOTIFIER_TWILIO_BASE_URL": f"http://127.0.0.1:{self.near_twilio_port}",
        }
        web, base = self.web("cores-web", [str(BIN / "gunicorn"), "notifier:create_app()"])
        processes, threads = size(self.env)
        r: dict[str, Any] = {"processes": processes, "threads": threads}
        try:
            self.reset()
            r["smtplib_one_connection"] = self.smtplib_drain()
            for label, env in [("drain_loopback", self.env), (f"drain_{RELAY_MS}ms", far)]:
                self.reset()
                self.queue(base, mail)
                r[label] = self.drain(self.workers(f"cores-{label}", env))
            for label, env in [("captchas_loopback", near_twilio), ("captchas_far", self.env)]:
                r[label] = self.texts(base, DRAIN, partial(self.workers, f"cores-{label}", env))
        finally:
            web.stop()
        self.results["cores"] = r

    def captcha_behind_backlog(self, base: str, mail: str, env: dict[str, str]) -> dict[str, Any]:
        """From POST /v1/sms/captcha to Twilio while a mail backlog drains through a far relay."""
        self.reset()
        self.queue(base, mail, count=BACKLOG)
        worker = self.worker("lanes-backlog", "celery_app", env=env)
        waits, behind = [], []
        try:
            wait_until(lambda: self.sink_db.hlen("bench:arrivals") >= 100, 120, "the drain")
            for n in range(5):
                phone = f"+8613900{n:06d}"
                body = json.dumps({"phone": phone, "purpose": "backlog"}).encode()
                posted = time.time()
                self.call(f"{base}/v1/sms/captcha", body)
                at = wait_until(partial(self.sink_db.hget, "bench:sms", phone), 120, "captcha")
                waits.append(float(at) - posted)
                behind.append(BACKLOG - self.sink_db.hlen("bench:arrivals"))
        finally:
            worker.stop()
        return {
            "p50_s": percentile(waits, 0.5),
            "max_s": max(waits),
            "mails_still_queued": min(behind),
            "waits_s": [round(w, 3) for w in waits],
        }

    def batch(self) -> None:
        """A 10,000-row batch's accept time; a batch's drain beside the same mails one by one,
        on loopback and through a far relay."""
        far = {**self.env, "NOTIFIER_MAIL_PORT": str(self.far_smtp_port)}
        web, base = self.web("batch-web", [str(BIN / "gunicorn"), "notifier:create_app()"])
        url = f"{base}/v1/mail/batch"
        r: dict[str, Any] = {}
        try:
            for _ in range(4):  # warm both web processes (templates, connections)
                self.call(url, batch_body(10))
            big = batch_body(BATCH_ROWS)
            r["accept"] = {"rows": BATCH_ROWS, "body_bytes": len(big)}
            r["accept"]["no_worker"] = self.accepts(url, big, fresh=True)
            # Each accept after the first competes with the fan-out and sends of those before.
            self.reset()
            worker = self.worker("batch-accept-worker", "celery_app")
            wait_until(partial(has_written, worker, "ready."), 60, "the worker")
            try:
                r["accept"]["worker_busy"] = self.accepts(url, big, fresh=False)
            finally:
                worker.stop()
            for relay, env in [("loopback", self.env), (f"{RELAY_MS}ms", far)]:
                self.reset()
                self.queue(base, WELCOME)
                r[f"single_{relay}"] = self.drain(
                    self.worker(f"batch-single-{relay}", "celery_app", env=env)
                )
                self.reset()
                accepted, _ = self.call(url, batch_body(DRAIN))
                r[f"batch_{relay}"] = self.drain(
                    self.worker(f"batch-drain-{relay}", "celery_app", env=env)
                )
                r[f"batch_{relay}"]["batch"] = self.call(f"{base}{accepted['links']['self']}")[0]
        finally:
            web.stop()
        self.results["batch"] = r

    def accepts(self, url: str, body: bytes, fresh: bool) -> dict[str, Any]:
        """Seconds to accept ``body``, ACCEPTS times (on an empty Redis each time if fresh)."""
        took = []
        for _ in range(ACCEPTS):
            if fresh:
                self.reset()
            took.append(self.call(url, body)[1])
        return {"p50_s": percentile(took, 0.5), "max_s": max(took), "runs_s": took}

    def naive(self) -> None:
        mail = (
            '{"to": ["u{u}@example.com"], "subject": "Bench {u}", "text": "Hello from the bench."}'
        )
        web, base = self.web(
            "naive-web", [str(BIN / "gunicorn"), "-w", "2", "naive_app:app"], BENCH
        )
        try:
            r = {"ingress": self.ingress(base, mail, auth=False)}
            self.reset()
            self.queue(base, mail, auth=False)
            r["drain"] = self.drain(self.worker("naive-worker", "naive_app.celery", BENCH))
            self.results["naive"] = r
        finally:
            web.stop()

    def limits(self) -> None:
        argv = [
            str(BIN / "gunicorn"),
            "-w",
            "2",
            "-k",
            "gthread",
            "--threads",
            "4",
            "limit_app:app",
        ]
        web, base = self.web("limit-web", argv, BENCH)
        try:
            r = {"ingress_lpush": self.ingress(base, '{"n": {n}}', auth=False)}
        finally:
            web.stop()
        self.reset()
        r["smtplib_one_connection"] = self.smtplib_drain()
        self.results["limits"] = r

    def smtplib_drain(self) -> dict[str, Any]:
        """The same mails over one plain smtplib connection to the loopback sink: the limit."""
        message = build_mime(OutgoingMail(
            notification_id="limit", sender="bench@example.com", to=("u@example.com",),
            subject="Bench", text="Hello from the bench.",
        ))  # fmt: skip
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10) as smtp:
            started = time.perf_counter()
            for _ in range(DRAIN):
                smtp.send_message(message)
            took = time.perf_counter() - started
        return {"mails": DRAIN, "mails_per_s": DRAIN / took}

    def sentinel(self) -> None:
        """The ingress with WAIT for one replica beside none, and a failover under load."""
        replica_port = free_port()
        replica = Proc(
            "replica",
            [redis_server_binary(), "--port", str(replica_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(LOGS),
             "--replicaof", "127.0.0.1", str(self.redis_port)],
            dict(os.environ),
        )  # fmt: skip
        r: dict[str, Any] = {}
        try:
            wait_until(lambda: self.state.info("replication")["connected_slaves"] == 1, 30, "sync")
            for replicas in (0, 1):
                self.env["NOTIFIER_REDIS_MIN_REPLICAS"] = str(replicas)
                web, base = self.web(f"web-replicas-{replicas}", [str(BIN / "gunicorn"),
                                                                   "notifier:create_app()"])  # fmt: skip
                try:
                    r[f"ingress_min_replicas_{replicas}"] = self.ingress(base, MAIL)
                finally:
                    web.stop()
        finally:
            self.env.pop("NOTIFIER_REDIS_MIN_REPLICAS", None)
            replica.stop()
        r["failover"] = self.failover()
        self.results["sentinel"] = r

    def failover(self, posters: int = 8, seconds: float = 12.0) -> dict[str, Any]:
        """A primary, two replicas and three sentinels; the primary SIGKILLed after a third of
        the run with ``posters`` clients posting mail: how long no 202 came, and what came."""
        from tests.support.sentinel import SentinelGroup

        group = SentinelGroup(replicas=2).start()
        env = {**self.env, "NOTIFIER_REDIS_URL": group.url()}
        saved, self.env = self.env, env
        answers: list[tuple[float, float, int]] = []
        try:
            web, base = self.web("web-sentinel", [str(BIN / "gunicorn"), "notifier:create_app()"])
            worker = self.worker("worker-sentinel", "celery_app", env=env)
            try:
                stop = time.monotonic() + seconds

                def post() -> None:
                    while time.monotonic() < stop:
                        started = time.monotonic()
                        try:
                            self.call(f"{base}/v1/mail", MAIL.replace("{u}", uuid.uuid4().hex)
                                      .replace("{n}", "0").encode())  # fmt: skip
                            status = 202
                        except Exception as e:  # urllib raises HTTPError for a 503
                            status = int(getattr(e, "code", 0))
                        answers.append((started, time.monotonic() - started, status))

                import threading

                threads = [threading.Thread(target=post) for _ in range(posters)]
                for thread in threads:
                    thread.start()
                time.sleep(seconds / 3)  # load before the kill: the run is a fixed length
                old, killed = group.kill_primary()
                promoted = group.wait_promoted(old)
                for thread in threads:
                    thread.join()
            finally:
                worker.stop()
                web.stop()
        finally:
            self.env = saved
            group.stop()
        after = [a for a in answers if a[0] > killed and a[2] == 202]
        return {
            "requests": len(answers),
            "statuses": {str(c): sum(1 for a in answers if a[2] == c) for c in {a[2] for a in answers}},
            "promoted_after_s": promoted - killed,
            "no_202_s": (after[0][0] - killed) if after else None,
            "max_answer_s": max(a[1] for a in answers),
        }  # fmt: skip

    def close(self) -> None:
        for proc in (self.sink, self.far_sink, self.twilio, self.near_twilio, self.redis_proc):
            proc.stop()


def table(results: dict[str, Any]) -> str:
    n, b, lim = results["notifier"], results["naive"], results["limits"]

    def ing(r: dict[str, Any]) -> str:
        errors = sum(r["errors"].values())
        spread = "/".join(str(x) for x in r["runs_rps"])
        return (
            f"{r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms"
            f"  errors {errors}  (runs {spread})"
        )

    rows = [
        ("ingress POST /v1/mail, 16 conns, median of 3 x 10 s", ""),
        ("  notifier", ing(n["ingress"])),
        ("  naive recipe", ing(b["ingress"])),
        ("  bare Flask + LPUSH (limit)", ing(lim["ingress_lpush"])),
        (f"drain {DRAIN} queued mails, 1 worker x 2", ""),
        ("  notifier", f"{n['drain']['mails_per_s']:8.0f} mails/s  SMTP connections {n['drain']['smtp_connections']}"),
        ("  naive recipe", f"{b['drain']['mails_per_s']:8.0f} mails/s  SMTP connections {b['drain']['smtp_connections']}"),
        ("  one smtplib connection (limit)", f"{lim['smtplib_one_connection']['mails_per_s']:8.0f} mails/s  SMTP connections 1"),
        ("end to end at 100 req/s, 10 s", f"p50 {n['end_to_end']['p50_ms']:6.1f} ms  p99 {n['end_to_end']['p99_ms']:6.1f} ms  ({n['end_to_end']['requests']} mails)"),
        ("captcha send + verify pairs", f"{n['captcha_pairs']['rps']:8.0f} pairs/s  p99 {n['captcha_pairs']['p99_ms']:6.1f} ms"),
        ("upload tokens", f"{n['upload_tokens']['rps']:8.0f} tokens/s  p99 {n['upload_tokens']['p99_ms']:6.1f} ms"),
    ]  # fmt: skip
    ratios = [
        ("ingress vs naive", n["ingress"]["rps"] / b["ingress"]["rps"]),
        ("drain vs naive", n["drain"]["mails_per_s"] / b["drain"]["mails_per_s"]),
        ("drain vs one smtplib connection", n["drain"]["mails_per_s"] / lim["smtplib_one_connection"]["mails_per_s"]),
    ]  # fmt: skip
    lines = [f"{label:42} {value}" for label, value in rows]
    lines += [f"{label:42} {value:8.2f}x" for label, value in ratios]
    return "\n".join(lines)


def beside(rows: list[tuple[str, str, str]], before: dict[str, Any]) -> str:
    """Rows of (label, figure now, key of the figure before in the baseline), as a table."""
    lines = [f"{'':58} {'now':44} before"]
    lines += [f"{label:58} {now:44} {before.get(key, '-')}" for label, now, key in rows]
    return "\n".join(lines)


def rate(drain: dict[str, Any]) -> str:
    return f"{drain['mails_per_s']:.0f} mails/s ({drain['smtp_connections']} SMTP conns)"


def lanes_table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The lanes figures beside those of the baseline run."""
    near, far = r["drain_loopback"], r[f"drain_{RELAY_MS}ms"]
    behind = r["captcha_behind_backlog"]
    rows = [
        ("drain, relay on loopback", rate(near), "drain_loopback"),
        (f"drain, relay {RELAY_MS} ms away", rate(far), "drain_far"),
        ("  far / loopback (target >= 0.70)", f"{far['mails_per_s'] / near['mails_per_s']:.2f}", "drain_ratio"),
        (f"captchas through a {TWILIO_MS} ms Twilio (target >= 50/s)", f"{r['captchas']['per_s']:.0f}/s ({r['captchas']['connections']} HTTP conns)", "captchas_per_s"),
        (f"captcha behind {BACKLOG} mails, relay {RELAY_MS} ms (target < 2 s)", f"p50 {behind['p50_s']:.2f} s  max {behind['max_s']:.2f} s  ({behind['mails_still_queued']} mails still queued)", "captcha_behind_backlog_s"),
    ]  # fmt: skip
    return beside(rows, before)


def batch_table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The batch figures beside those of the baseline run."""
    accept = r["accept"]

    def took(a: dict[str, Any]) -> str:
        return f"p50 {a['p50_s']:.2f} s  max {a['max_s']:.2f} s"

    rows = [
        (f"accept {accept['rows']} rows, {accept['body_bytes'] / 2**20:.1f} MiB, no worker (target p50 < 1 s)", took(accept["no_worker"]), "accept_s"),
        ("  with the worker fanning out and sending", took(accept["worker_busy"]), "accept_busy_s"),
    ]  # fmt: skip
    for relay, where in [
        ("loopback", "relay on loopback"),
        (f"{RELAY_MS}ms", f"relay {RELAY_MS} ms away"),
    ]:
        one, single = r[f"batch_{relay}"], r[f"single_{relay}"]
        rows += [
            (f"drain {DRAIN}, {where}: one batch", rate(one), f"batch_{relay}"),
            (f"  the same {DRAIN} mails posted one by one", rate(single), f"single_{relay}"),
            ("  batch / single (target >= 1.0)", f"{one['mails_per_s'] / single['mails_per_s']:.2f}", f"ratio_{relay}"),
        ]  # fmt: skip
    return beside(rows, before)


def sentinel_table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The replication figures beside those of the baseline run."""

    def ing(i: dict[str, Any]) -> str:
        return (
            f"{i['rps']:.0f} req/s  p99 {i['p99_ms']:.1f} ms  ({'/'.join(map(str, i['runs_rps']))})"
        )

    f = r["failover"]
    rows = [
        ("ingress POST /v1/mail, NOTIFIER_REDIS_MIN_REPLICAS=0", ing(r["ingress_min_replicas_0"]), "ingress_0"),
        ("  =1, WAIT for a local replica", ing(r["ingress_min_replicas_1"]), "ingress_1"),
        ("failover: kill to promotion", f"{f['promoted_after_s']:.1f} s", "promoted_s"),
        ("  kill to the first 202 again (target < promotion + 5 s)", f"{f['no_202_s']:.1f} s", "no_202_s"),
        ("  answers during the run, slowest", f"{f['statuses']}  max {f['max_answer_s'] * 1000:.0f} ms", "answers"),
    ]  # fmt: skip
    return beside(rows, before)


def cores_table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The every-core figures beside those of the baseline run."""
    limit = r["smtplib_one_connection"]["mails_per_s"]
    near, far = r["drain_loopback"], r[f"drain_{RELAY_MS}ms"]
    texts_near, texts_far = r["captchas_loopback"], r["captchas_far"]

    def texts(t: dict[str, Any]) -> str:
        return f"{t['per_s']:.0f}/s ({t['connections']} HTTP conns)"

    def cpu(d: dict[str, Any]) -> str:
        ms = d["cpu_ms_per_mail"]
        return f"{ms['workers']:.2f} ms workers, {ms['sink']:.2f} sink, {ms['redis']:.2f} redis"

    rows = [
        (f"one plain smtplib connection, {DRAIN} mails", f"{limit:.0f} mails/s", "smtplib"),
        ("drain, relay on loopback", rate(near), "drain_loopback"),
        ("  CPU a mail", cpu(near), "cpu_loopback"),
        ("  / one smtplib connection (target >= 0.70)", f"{near['mails_per_s'] / limit:.2f}", "drain_vs_smtplib"),
        (f"drain, relay {RELAY_MS} ms away", rate(far), "drain_far"),
        ("  far / loopback (target >= 0.85)", f"{far['mails_per_s'] / near['mails_per_s']:.2f}", "drain_ratio"),
        (f"{DRAIN} captchas, Twilio on loopback", texts(texts_near), "captchas_loopback"),
        (f"{DRAIN} captchas, Twilio {TWILIO_MS} ms away", texts(texts_far), "captchas_far"),
        ("  far / loopback (target >= 0.70)", f"{texts_far['per_s'] / texts_near['per_s']:.2f}", "captchas_ratio"),
    ]  # fmt: skip
    return beside(rows, before)


def dkim_table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The signing figures beside those of the baseline run."""

    def cpu(d: dict[str, Any]) -> str:
        return f"{d['cpu_ms_per_mail']['workers']:.2f} ms of the worker a mail"

    unsigned, signed = r["unsigned"], r["signed"]
    rows = [
        (f"drain {DRAIN} mails, relay on loopback, unsigned", rate(unsigned), "unsigned"),
        ("  CPU", cpu(unsigned), "cpu_unsigned"),
        ("  DKIM-signed, rsa-sha256 2048 bits", rate(signed), "signed"),
        ("  CPU", cpu(signed), "cpu_signed"),
        ("  signed / unsigned", f"{signed['mails_per_s'] / unsigned['mails_per_s']:.2f}", "ratio"),
    ]  # fmt: skip
    return beside(rows, before)


def main() -> None:
    only = sys.argv[1] if sys.argv[1:] else None  # one part only
    if only not in (None, "lanes", "batch", "cores", "sentinel", "dkim"):
        raise SystemExit("usage: bench/run [lanes|batch|cores|sentinel|dkim]")
    bench = Bench()
    try:
        if only is None:
            bench.notifier()
            bench.naive()
            bench.limits()
        if only in (None, "lanes"):
            bench.lanes()
        if only in (None, "batch"):
            bench.batch()
        if only in (None, "sentinel"):
            bench.sentinel()
        if only in (None, "cores"):
            bench.cores()
        if only in (None, "dkim"):
            bench.dkim()
    finally:
        bench.close()
    baseline = json.loads((BENCH / "baseline.json").read_text())
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **bench.results,
    }  # fmt: skip
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    if only is None:
        print(table(results))
    if only in (None, "lanes"):
        print(f"\nlanes (before: {baseline['at']}, {baseline['what']})")
        print(lanes_table(results["lanes"], baseline["lanes"]))
    if only in (None, "batch"):
        was = baseline.get("batch", {})
        print(f"\nbatches (before: {was.get('at', '-')}, {was.get('what', 'no run yet')})")
        print(batch_table(results["batch"], was))
    if only in (None, "sentinel"):
        was = baseline.get("sentinel", {})
        print(f"\nreplication (before: {was.get('at', '-')}, {was.get('what', 'no run yet')})")
        print(sentinel_table(results["sentinel"], was))
    if only in (None, "cores"):
        was = baseline.get("cores", {})
        r = results["cores"]
        print(f"\nevery core: {r['processes']} worker processes x {r['threads']} threads"
              f" (before: {was.get('at', '-')}, {was.get('what', 'no run yet')})")  # fmt: skip
        print(cores_table(r, was))
    if only in (None, "dkim"):
        was = baseline.get("dkim", {})
        print(f"\nDKIM (before: {was.get('at', '-')}, {was.get('what', 'no run yet')})")
        print(dkim_table(results["dkim"], was))
    print(f"\nfigures: {out / 'latest.json'}   logs: {LOGS}")


if __name__ == "__main__":
    main()
