"""The objects one process shares: settings, the Redis client, the stores, the providers."""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import phonenumbers
import redis
from celery import Celery
from flask import current_app
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from notifier.lanes import LANES, QueueNames, TaskNames
from notifier.metrics import GuardCollector, StateCollector, amqp_depths
from notifier.providers.base import MailProvider, SmsProvider, UploadStore
from notifier.providers.registry import UPLOAD_STORES, MailFactory, SmsFactory
from notifier.providers.sendgrid import SendGridSettings
from notifier.providers.ses import SesSettings
from notifier.queueing import TaskQueue
from notifier.redisconn import Replication, client, eviction_policy, parse
from notifier.sendgrid_webhook import EventWebhookVerifier, load_public_key
from notifier.services.batches import RowMails
from notifier.services.bounces import Bounces
from notifier.services.callbacks import TIMEOUT as CALLBACK_TIMEOUT
from notifier.services.callbacks import CallbackGate, CallbackSender
from notifier.services.captcha import MAIL as MAIL_CAPTCHA
from notifier.services.captcha import SMS, CaptchaPolicy, check_templates
from notifier.services.delivery import Delivery
from notifier.services.mail_events import EventSink
from notifier.services.sms import KIND as SMS_KIND
from notifier.services.sms import RowTexts
from notifier.services.sms import check_templates as check_named_sms
from notifier.settings import ApiClient, ConfigError, Environment, Settings
from notifier.sns import SnsVerifier
from notifier.stores.batches import BatchStore
from notifier.stores.captchas import CaptchaStore
from notifier.stores.guard import BounceGuard, Thresholds
from notifier.stores.idempotency import IdempotencyKeys
from notifier.stores.layout import ensure as ensure_layout
from notifier.stores.notifications import NotificationStore
from notifier.stores.notifications.log import log_secret
from notifier.stores.rate_limits import RateLimiter
from notifier.stores.receivers import Receivers
from notifier.stores.suppressions import SuppressionList, UnsubscribeLinks
from notifier.templating import MailTemplates, NamedSms, SmsTemplates, folders

T = TypeVar("T")
log = logging.getLogger(__name__)


def redis_client(url: str, timeout: float = 1.5) -> redis.Redis:
    """A Redis client that gives up in seconds, so the web answers 503 instead of hanging."""
    # Once, on a new connection, for one that broke (Redis restarted, or the primary moved).
    # Never after a timeout: a Redis that hangs would make every request wait twice.
    return client(
        parse(url), timeout=timeout, retry=Retry(NoBackoff(), 1, (redis.ConnectionError,))
    )


def patient_retry() -> Retry:
    """A worker's: a command that meets a dead connection is made again for about 15 s, long
    enough for the sentinels to promote a replica or for a restarted Redis to come back.
    (Every write a worker makes is safe to repeat: claims and outcomes carry their claim.)"""
    return Retry(
        ExponentialBackoff(cap=1.0, base=0.05), 20, (redis.ConnectionError, redis.TimeoutError)
    )


def check_persistence(client: redis.Redis, setting: str) -> None:
    """A production Redis that keeps nothing on disk (no AOF, no RDB snapshot rule) loses every
    notification it holds when it restarts: a warning (a managed Redis or replicas may keep
    them otherwise, so not a refusal). Said only when Redis tells both."""
    try:
        aof = client.info("persistence").get("aof_enabled")
        saves = client.config_get("save").get("save")
    except redis.RedisError:
        return  # CONFIG renamed or refused (managed Redis), or not answering yet: nothing known
    if str(aof) == "0" and saves == "":
        log.warning(
            "%s: Redis keeps nothing on disk (appendonly no, no save rule): a restart loses every"
            " notification it holds; set appendonly yes (docs/production.md)", setting,
        )  # fmt: skip


def check_eviction(client: redis.Redis, setting: str, env: Environment) -> None:
    """A Redis that evicts keys when full loses accepted notifications without a word: its
    ``maxmemory-policy`` must be ``noeviction`` (then a full Redis refuses new work, 503). Not
    so stops a production start-up (a ConfigError naming ``setting``); elsewhere, and when Redis
    does not say or does not answer yet, it is a warning."""
    try:
        policy = eviction_policy(client)
    except redis.RedisError as e:
        log.warning("%s: could not check maxmemory-policy, Redis did not answer: %s", setting, e)
        return
    if policy is None:
        log.warning(
            "%s: Redis shows its maxmemory-policy neither by CONFIG GET nor by INFO: make sure "
            "it is noeviction, or a full Redis drops accepted notifications", setting,
        )  # fmt: skip
        return
    if policy == "noeviction":
        return
    problem = (
        f"{setting}: Redis's maxmemory-policy is {policy}; it must be noeviction, or a full "
        "Redis drops accepted notifications without a word"
    )
    if env is Environment.PRODUCTION:
        raise ConfigError(problem)
    log.warning("%s", problem)


def guard_thresholds(s: Settings) -> Thresholds:
    """The bounce-rate guard's thresholds, as the settings give them."""
    return Thresholds(
        min_volume=s.bounce_guard_min_volume,
        warn={"bounce": s.bounce_rate_warn, "complaint": s.complaint_rate_warn},
        pause={"bounce": s.bounce_rate_pause, "complaint": s.complaint_rate_pause},
    )


class PerProcess(Generic[T]):
    """Made on first use in each process, so a forked worker never shares a parent's sockets;
    made once, however many of its threads ask first at the same time (a worker's 64 threads
    each made their own providers, their own connections and boto3 clients, as a drain began)."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._made: tuple[int, T] | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        made = self._made
        if made is not None and made[0] == os.getpid():
            return made[1]
        with self._lock:
            if self._made is None or self._made[0] != os.getpid():
                self._made = (os.getpid(), self._make())
            return self._made[1]

    def made_here(self) -> T | None:
        """The object if this process made it, else None."""
        return self._made[1] if self._made and self._made[0] == os.getpid() else None


@dataclass
class Runtime:
    """Built once by ``create_app``; found with :func:`runtime`."""

    settings: Settings
    redis_url: str
    clients: dict[str, ApiClient]  # by the SHA-256 of their key
    mail_factories: dict[str, MailFactory]  # the mail providers, by name, in failover order
    sms_factories: dict[str, SmsFactory]  # every provider any route names, by name
    captcha_secret: bytes
    celery: Celery

    def __post_init__(self) -> None:
        s = self.settings
        # The built-in templates, each replaced by the operator's of its name, if any.
        self.templates = MailTemplates(folders("mail", s.templates_dir))
        self.sms_templates = SmsTemplates(folders("sms", s.templates_dir))
        self.named_sms = NamedSms(folders("sms", s.templates_dir))
        self.mail_captcha_templates = MailTemplates(folders("mail_captcha", s.templates_dir))
        self.redis = redis_client(self.redis_url)
        check_eviction(self.redis, "NOTIFIER_REDIS_URL", s.env)
        if s.env is Environment.PRODUCTION:
            check_persistence(self.redis, "NOTIFIER_REDIS_URL")
        if s.broker_url and not s.broker_is_rabbitmq and s.broker_url != self.redis_url:
            check_eviction(redis_client(s.broker_url), "NOTIFIER_BROKER_URL", s.env)
        # Keys the message log's hashes of recipients and references, and the pseudonyms of
        # recipients in key names.
        self.log_secret = log_secret(self.captcha_secret)
        # The keys an earlier release wrote are moved before this process serves or takes a task
        # (notifier.stores.layout); if Redis could not be asked, dispatch_due tries again.
        self.layout_current = ensure_layout(self.redis, self.log_secret)
        self.captchas = CaptchaStore(self.redis, self.captcha_secret, self.log_secret)
        self.suppressions = SuppressionList(self.redis)
        self.unsubscribes = UnsubscribeLinks(self.redis, self.captcha_secret)
        # Bounces come back to an envelope sender of each mail's own (off without a domain).
        self.bounces = (
            Bounces(s.bounce_domain, hmac.new(self.captcha_secret, b"bounces", "sha256").digest())
            if s.bounce_domain
            else None
        )
        self.idempotency = IdempotencyKeys(self.redis)
        # Its own client, with a short timeout: a slow Redis must not make every request slow.
        self._limiter_redis = redis_client(self.redis_url, timeout=s.rate_limit_timeout)
        self.limiter = RateLimiter(self._limiter_redis)
        self.captcha_policy = CaptchaPolicy(
            length=s.captcha_length,
            ttl=s.captcha_ttl,
            resend_interval=s.captcha_resend_interval,
            max_attempts=s.captcha_max_attempts,
            daily_limit=s.captcha_daily_limit,
            phone_daily_ceiling=s.captcha_phone_daily_ceiling,
            address_daily_ceiling=s.captcha_address_daily_ceiling,
            ip_hourly_limit=s.captcha_ip_hourly_limit,
            ip_hourly_ceiling=s.captcha_ip_hourly_ceiling,
            product=s.product_name,
            allowed_countries=s.sms_allowed_countries,
            blocked_prefixes=s.sms_blocked_prefixes,
        )
        # A template that cannot render a code is found now, not at a user's login.
        check_templates(self.captcha_policy, self.sms_templates, self.mail_captcha_templates)
        # The stores a browser can upload to, by the name in their route.
        self.uploads: dict[str, UploadStore] = {n: store(s) for n, store in UPLOAD_STORES.items()}
        # The usual set-up: the broker is the state Redis (messages go in its transactions).
        self.broker_is_state = s.broker_url is None or s.broker_url == self.redis_url
        self.metrics = (
            StateCollector(self.redis, LANES)
            if self.broker_is_state
            else StateCollector(self.redis, (), amqp_depths(self.celery, LANES))
        )
        # Status callbacks are queued by the store, in the same step as the status they tell.
        self.callback_queue = TaskQueue(
            self.celery, TaskNames.SEND_CALLBACK, direct_ok=self.broker_is_state
        )
        self.replication = Replication(s.min_replicas, s.redis_replica_timeout_ms)
        self.store = NotificationStore(
            self.redis,
            ttl=s.status_ttl,
            callbacks=self.callback_queue,
            callback_clients=frozenset(
                c.client for c in self.clients.values() if c.callback_url is not None
            ),
            replication=self.replication,
            patience=min(30.0, s.task_time_limit / 3),
            retry_cap=s.retry_cap,
            # Mail events that came before their send: applied when the send is recorded.
            kept_events=lambda provider, ref, lines, to: self.mail_events.apply_kept(
                provider, ref, lines, to
            ),
            log_secret=self.log_secret,
        )
        self.guard = BounceGuard(self.redis, guard_thresholds(s))
        # Each live client's guard in /metrics (a test key's mail reaches no provider).
        live = sorted({c.client for c in self.clients.values() if c.mode != "test"})
        self.guard_metrics = GuardCollector(self.guard, live)
        self.mail_events = EventSink(
            self.store,
            self.suppressions,
            self.guard,
            hmac.new(self.captcha_secret, b"recipients", "sha256").digest(),
        )
        # The receipt routes' proofs: SNS's certificates are fetched and kept by each process.
        ses = s.vendor(SesSettings)
        self._sns = (
            PerProcess(lambda: SnsVerifier(topic_arns=ses.topic_arns, cert_hosts=s.sns_cert_hosts))
            if ses.topic_arns
            else None
        )
        sendgrid_key = s.vendor(SendGridSettings).webhook_public_key
        self.sendgrid_events = (
            EventWebhookVerifier(load_public_key(sendgrid_key)) if sendgrid_key else None
        )
        self.mail_queue = TaskQueue(
            self.celery, TaskNames.SEND_MAIL, direct_ok=self.broker_is_state
        )
        self.captcha_queue = TaskQueue(
            self.celery, TaskNames.SEND_SMS_CAPTCHA, direct_ok=self.broker_is_state
        )
        self.mail_captcha_queue = TaskQueue(
            self.celery, TaskNames.SEND_MAIL_CAPTCHA, direct_ok=self.broker_is_state
        )
        self.batches = BatchStore(self.redis, ttl=s.status_ttl, log_secret=self.log_secret)
        self.fan_out_queue = TaskQueue(
            self.celery, TaskNames.FAN_OUT_BATCH, direct_ok=self.broker_is_state
        )
        # A batch's mails go on a lane of their own, so a single mail never waits behind one.
        self.row_queue = TaskQueue(
            self.celery, TaskNames.SEND_MAIL, direct_ok=self.broker_is_state, lane=QueueNames.BULK
        )
        self.row_mails = RowMails(self.batches, self.templates)
        # SMS notifications: a lane of their own, behind codes; a batch's, the bulk lane.
        self.sms_queue = TaskQueue(self.celery, TaskNames.SEND_SMS, direct_ok=self.broker_is_state)
        self.sms_row_queue = TaskQueue(
            self.celery, TaskNames.SEND_SMS, direct_ok=self.broker_is_state, lane=QueueNames.BULK
        )
        self.row_texts = RowTexts(self.batches, self.named_sms)
        self._mails = PerProcess(lambda: [make(s) for make in self.mail_factories.values()])
        self._callback_sender = PerProcess(
            lambda: CallbackSender(
                production=s.env is Environment.PRODUCTION,
                max_connections=s.worker_concurrency,
            )
        )
        # The threads of this worker's pool, as Celery started it (``-c`` or the setting).
        self.worker_threads = s.worker_concurrency
        self._callback_gate = PerProcess(self._make_callback_gate)
        self._sms = PerProcess(lambda: {n: make(s) for n, make in self.sms_factories.items()})
        # A named SMS that gives a provider a template it cannot send is found now.
        check_named_sms(self.named_sms, list(self._sms.get().values()))
        self.delivery = Delivery(
            store=self.store,
            max_attempts=s.retry_max,
            lease=s.task_time_limit,
            code_lease=s.captcha_time_limit,
            mails=self._mails.get,
            sms=self.sms_providers_for,
            captchas=self.captchas,
            captcha_policy=self.captcha_policy,
            sms_templates=self.sms_templates,
            mail_captcha_templates=self.mail_captcha_templates,
            sender=self.mail_sender,
            suppressions=self.suppressions,
            expand=self.row_mails.expand,
            expand_sms=self.row_texts.expand,
            unsubscribe=self.unsubscribe_url,
            bounces=self.bounces,
        )

    @property
    def sns(self) -> SnsVerifier | None:
        """This process's verifier of SNS messages; None without NOTIFIER_SES_TOPIC_ARNS."""
        return None if self._sns is None else self._sns.get()

    @property
    def callback_sender(self) -> CallbackSender:
        """This process's sender of status callbacks."""
        return self._callback_sender.get()

    @property
    def callback_gate(self) -> CallbackGate:
        """This process's gate of status callbacks: its share of the threads, per receiver."""
        return self._callback_gate.get()

    def _make_callback_gate(self) -> CallbackGate:
        s = self.settings
        total = min(self.worker_threads, s.callback_concurrency or self.worker_threads // 4)
        receivers = Receivers(
            self.redis, base=s.retry_base, cap=s.retry_cap, probe_lease=CALLBACK_TIMEOUT + 1
        )
        return CallbackGate(
            receivers,
            total=max(1, total),
            per_receiver=s.callback_receiver_concurrency,
            cap=s.retry_cap,
        )

    def client_named(self, name: str) -> ApiClient | None:
        """The API client called ``name``."""
        return next((c for c in self.clients.values() if c.client == name), None)

    @property
    def mail_providers(self) -> list[MailProvider]:
        """This process's mail providers, in failover order."""
        return self._mails.get()

    def queue_of(self, kind: str, *, batch: bool = False) -> TaskQueue:
        """Where the task of a notification of ``kind`` goes (a batch's row: the bulk lane)."""
        if kind == SMS.kind:
            return self.captcha_queue
        if kind == MAIL_CAPTCHA.kind:
            return self.mail_captcha_queue
        if kind == SMS_KIND:
            return self.sms_row_queue if batch else self.sms_queue
        return self.row_queue if batch else self.mail_queue

    def row_queue_of(self, kind: str) -> TaskQueue:
        """Where the task of a batch's row of ``kind`` goes."""
        return self.queue_of(kind, batch=True)

    @property
    def unsubscribe_url(self) -> Callable[[str, str], str] | None:
        """A recipient's one-click unsubscribe URL, under NOTIFIER_PUBLIC_URL (None without)."""
        base = self.settings.public_url
        if base is None:
            return None
        return lambda client, address: (
            f"{base.rstrip('/')}/v1/unsubscribe/{self.unsubscribes.token(client, address)}"
        )

    @property
    def mail_sender(self) -> str:
        """The From of mail that does not say (every mail but a request's own)."""
        return self.settings.mail_default_sender or "notifier@localhost"

    def sms_providers_for(self, phone: str) -> list[SmsProvider]:
        """This process's SMS providers for an E.164 number, in failover order: its country's
        (``NOTIFIER_SMS_COUNTRY_PROVIDERS``), else ``NOTIFIER_SMS_PROVIDERS``."""
        built = self._sms.get()
        country = str(phonenumbers.parse(phone).country_code)
        names = self.settings.sms_country_providers.get(country) or self.settings.sms_providers
        return [built[name] for name in names or ()]

    def redis_clients(self) -> tuple[redis.Redis, ...]:
        """The Redis clients of this runtime (the tracing instruments them)."""
        return (self.redis, self._limiter_redis)

    def become_worker(self, threads: int | None = None) -> None:
        """This process runs tasks on ``threads`` threads: its Redis commands wait out a
        failover instead of failing."""
        self.redis.set_retry(patient_retry())
        if threads:
            self.worker_threads = threads

    def close(self) -> None:
        """Release the providers' connections (a worker process is shutting down)."""
        for mail in self._mails.made_here() or ():
            mail.close()
        for provider in (self._sms.made_here() or {}).values():
            provider.close()
        sender = self._callback_sender.made_here()
        if sender is not None:
            sender.close()
        verifier = self._sns.made_here() if self._sns is not None else None
        if verifier is not None:
            verifier.close()


def runtime() -> Runtime:
    """The current Flask app's runtime."""
    found: Runtime = current_app.extensions["notifier"]
    return found
