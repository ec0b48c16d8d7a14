"""What the benchmark's scenarios share: the processes it starts (Redis, the SMTP and Twilio
sinks, the service as its Procfile runs it), the load, and the figures' tables."""

from __future__ import annotations

import hashlib
import json
import os
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
from typing import Any

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
STEADY = 0.1  # the share of a drain after which its workers' CPU a mail is counted
LOGS = Path(tempfile.mkdtemp(prefix="notifier-bench-"))
MAIL = '{"to": ["u{u}@example.com"], "subject": "Bench {n}", "text": "Hello from the bench."}'
CAPTCHA = '{"phone": "+86138{p}", "purpose": "bench"}'
# An SMS notification, the length of a parcel's notice (one GSM-7 segment).
SMS = '{"to": "+86138{p}", "text": "Acme: your parcel {n} ships today. Track it at acme.example/t/{n}"}'
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


def _cpu(stat: str) -> float:
    """User and system CPU seconds from a ``/proc`` stat file (a process's or a thread's)."""
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def cpu_seconds(procs: list[Proc]) -> float:
    """User and system CPU seconds these processes (every thread of each) have used so far."""
    return sum(_cpu(f"/proc/{proc.p.pid}/stat") for proc in procs)


def loop_cpu_seconds(procs: list[Proc]) -> float:
    """The CPU seconds of these processes' main threads: a Celery worker's event loop (its
    pool's threads run the tasks)."""
    return sum(_cpu(f"/proc/{proc.p.pid}/task/{proc.p.pid}/stat") for proc in procs)


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
    """The peers every scenario sends to, and the pieces a scenario is made of."""

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

    def _ping(self) -> bool:
        try:
            return bool(self.state.ping())
        except redis.RedisError:
            return False

    def reset(self) -> None:
        self.state.flushdb()
        self.sink_db.flushdb()

    # -- the pieces ---------------------------------------------------------------------

    def web(
        self, name: str, argv: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None
    ) -> tuple[Proc, str]:
        port = free_port()
        proc = Proc(name, [*argv, "--bind", f"127.0.0.1:{port}"], env or self.env, cwd)
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

    def ingress(
        self, base: str, body: str, auth: bool = True, path: str = "/v1/mail"
    ) -> dict[str, Any]:
        """The median of three 10-second runs after a warm-up (this machine is noisy)."""
        return self.ingresses(base, {path: body}, auth)[path]

    def ingresses(
        self, base: str, bodies: dict[str, str], auth: bool = True
    ) -> dict[str, dict[str, Any]]:
        """Each route's ingress (``bodies``: route -> body), as :meth:`ingress` measures one;
        their runs taken in turns, so that the machine's noise falls on each alike."""
        headers = self.headers if auth else self.headers[1:]
        for path, body in bodies.items():
            load("closed", f"{base}{path}", body=body, header=headers, conns=16, seconds=2)
        runs: dict[str, list[dict[str, Any]]] = {path: [] for path in bodies}
        for _ in range(REPEATS):
            for path, body in bodies.items():
                self.reset()
                runs[path].append(load(
                    "closed", f"{base}{path}", body=body, header=headers, conns=16, seconds=10
                ))  # fmt: skip
        found = {}
        for path, taken in runs.items():
            taken.sort(key=lambda r: r["rps"])
            found[path] = {**taken[len(taken) // 2], "runs_rps": [round(r["rps"]) for r in taken]}
        return found

    def queue(
        self, base: str, body: str, auth: bool = True, path: str = "/v1/mail", count: int = DRAIN
    ) -> None:
        headers = self.headers if auth else self.headers[1:]
        result = load("closed", f"{base}{path}", body=body, header=headers, conns=16,
                      seconds=120, count=count)  # fmt: skip
        assert result["requests"] == count and not result["errors"], result

    def drain(self, worker: Proc | Procs, mails: int = DRAIN) -> dict[str, Any]:
        """Mails a second from the first to the last arrival, SMTP connections opened, the CPU
        time the workers, the sink and Redis spent a mail from the first arrival on, and the
        workers' alone a mail once a tenth of the mails arrived (``worker_ms_a_mail``: CPU
        seconds over mails sent in that window, start-up left out), and of that the event
        loops' (``worker_loop_ms_a_mail``: the main threads; the rest is the tasks')."""
        workers = worker.procs if isinstance(worker, Procs) else [worker]
        counted = {
            "workers": workers,
            "sink": [self.sink, self.far_sink],
            "redis": [self.redis_proc],
        }
        wait_until(lambda: self.arrived() >= 1, 600, "a first mail")
        before = {what: cpu_seconds(procs) for what, procs in counted.items()}
        # Every worker is sending by then (each of a deployment's has logged a send): its
        # start-up is behind it.
        wait_until(lambda: self.arrived() >= mails * STEADY, 600, "a tenth of the drain")
        if isinstance(worker, Procs):
            wait_until(lambda: all(has_written(w, " sent by ") for w in workers), 600,
                       "every worker sending")  # fmt: skip
        steady = (self.arrived(), cpu_seconds(workers), loop_cpu_seconds(workers))
        wait_until(lambda: self.arrived() >= mails, 600, "the drain")
        spent = {what: cpu_seconds(procs) - before[what] for what, procs in counted.items()}
        sent = self.arrived() - steady[0]
        steady_ms = 1000 * (cpu_seconds(workers) - steady[1]) / sent
        loop_ms = 1000 * (loop_cpu_seconds(workers) - steady[2]) / sent
        worker.stop()
        arrivals = [float(t) for t in self.sink_db.hvals("bench:arrivals")]
        took = max(arrivals) - min(arrivals)
        return {
            "mails": len(arrivals),
            "mails_per_s": (len(arrivals) - 1) / took,
            "smtp_connections": int(self.sink_db.get("bench:connections") or 0),
            "cpu_ms_per_mail": {what: 1000 * t / len(arrivals) for what, t in spent.items()},
            "worker_ms_a_mail": steady_ms,
            "worker_loop_ms_a_mail": loop_ms,
        }

    def arrived(self) -> int:
        """Mails the sinks have taken since the last reset."""
        return int(self.sink_db.get("bench:messages") or 0)

    # -- the runs -----------------------------------------------------------------------

    def texts(
        self,
        base: str,
        count: int,
        start: Callable[[], Proc | Procs],
        path: str = "/v1/sms/captcha",
        body: str = CAPTCHA,
    ) -> dict[str, Any]:
        """``count`` captchas (or another ``body`` to another sending ``path``: SMS
        notifications) queued, then the workers ``start`` gives: texts a second at the Twilio
        server, from the first to the last, and the HTTP connections it took."""
        self.reset()
        self.queue(base, body, path=path, count=count)
        workers = start()
        wait_until(lambda: self.sink_db.hlen("bench:sms") >= count, 600, "the captchas")
        workers.stop()
        texts = [float(t) for t in self.sink_db.hvals("bench:sms")]
        return {
            "texts": len(texts),
            "per_s": (len(texts) - 1) / (max(texts) - min(texts)),
            "connections": int(self.sink_db.get("bench:sms_connections") or 0),
        }

    def captcha_behind(
        self,
        base: str,
        start: Callable[[], Proc | Procs],
        arrived: Callable[[], int],
        path: str = "/v1/mail",
        body: str = MAIL,
    ) -> dict[str, Any]:
        """From ``POST /v1/sms/captcha`` to Twilio's server, five captchas one after another,
        while a backlog drains: BACKLOG of ``body`` queued to ``path``, then the workers
        ``start`` gives; the captchas are posted once ``arrived`` (the backlog's messages at
        their peer) reaches 100. Their waits, and how much of the backlog was still to go."""
        self.reset()
        self.queue(base, body, path=path, count=BACKLOG)
        workers = start()
        waits, behind = [], []
        try:
            wait_until(lambda: arrived() >= 100, 120, "the backlog to drain")
            for n in range(5):
                phone = f"+8613900{n:06d}"
                captcha = json.dumps({"phone": phone, "purpose": "backlog"}).encode()
                posted = time.time()
                self.call(f"{base}/v1/sms/captcha", captcha)
                at = wait_until(partial(self.sink_db.hget, "bench:sms", phone), 120, "captcha")
                waits.append(float(at) - posted)
                behind.append(BACKLOG - arrived())
        finally:
            workers.stop()
        return {
            "p50_s": percentile(waits, 0.5),
            "max_s": max(waits),
            "still_queued": min(behind),
            "waits_s": [round(w, 3) for w in waits],
        }

    def accepts(self, url: str, body: bytes, fresh: bool) -> dict[str, Any]:
        """Seconds to accept ``body``, ACCEPTS times (on an empty Redis each time if fresh)."""
        took = []
        for _ in range(ACCEPTS):
            if fresh:
                self.reset()
            took.append(self.call(url, body)[1])
        return {"p50_s": percentile(took, 0.5), "max_s": max(took), "runs_s": took}

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

    def close(self) -> None:
        for proc in (self.sink, self.far_sink, self.twilio, self.near_twilio, self.redis_proc):
            proc.stop()


def beside(rows: list[tuple[str, str, str]], before: dict[str, Any]) -> str:
    """Rows of (label, figure now, key of the figure before in the baseline), as a table."""
    lines = [f"{'':58} {'now':44} before"]
    lines += [f"{label:58} {now:44} {before.get(key, '-')}" for label, now, key in rows]
    return "\n".join(lines)


def rate(drain: dict[str, Any]) -> str:
    return f"{drain['mails_per_s']:.0f} mails/s ({drain['smtp_connections']} SMTP conns)"
