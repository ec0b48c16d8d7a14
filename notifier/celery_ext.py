"""Celery joined to Flask the current way (Flask's ``examples/celery``)."""

from __future__ import annotations

import gc
from typing import Any

from celery import Celery, Task, signals
from flask import Flask
from kombu import Queue

from notifier import tracing
from notifier.lanes import LANES, ROUTES, QueueNames, TaskNames
from notifier.logs import request_id
from notifier.patches import celery_consumer
from notifier.patches.kombu_failover import FailoverConnection
from notifier.patches.kombu_redis import transport_for
from notifier.redisconn import kombu_url, parse
from notifier.settings import AMQP_SCHEMES, Settings
from notifier.watchdog import Watchdog

# Beat puts one of these on the queue each second; an old one is useless, so it expires.
DISPATCH_EVERY = 1.0
# A worker's publishing (a retry, a dispatch, a callback) waits about 20 s for the broker: long
# enough for a promotion, so an attempt is not lost for want of a broker for a moment.
PATIENT_PUBLISH = {"max_retries": 25, "interval_start": 0, "interval_step": 0.2, "interval_max": 1}


def time_limits(prefix: str, seconds: int) -> dict[str, int]:
    """A task's limits as Celery names them (``prefix`` ``task_`` for the app's): ``seconds``, its
    claim's lease, and the watchdog's four fifths of it, which ends the attempt before that."""
    return {f"{prefix}time_limit": seconds, f"{prefix}soft_time_limit": max(1, seconds * 4 // 5)}


def celery_config(settings: Settings, redis_url: str) -> dict[str, Any]:
    """Celery's settings, derived from ours."""
    visibility = {"visibility_timeout": settings.broker_visibility_timeout}
    # None: the broker's default type (classic queues on RabbitMQ; Redis has no types).
    quorum = {"x-queue-type": "quorum"} if settings.broker_queue_type == "quorum" else None
    # A redis+sentinel:// URL becomes kombu's and Celery's own form of it (sentinel://…;…).
    broker_url, broker_sentinels = kombu_url(parse(settings.broker_url or redis_url))
    result_url, result_sentinels = kombu_url(parse(redis_url))
    return {
        "broker_url": broker_url,
        "broker_transport": transport_for(broker_url),
        # Only tasks that return something (qiniu_uptoken) store results; the status of a
        # notification lives in our own record, and an ignored result costs the web nothing.
        "result_backend": result_url,
        "task_ignore_result": True,
        "result_expires": 3600,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # Lanes: a queue per kind of work; a worker without -Q serves them all, captchas first.
        "task_queues": [Queue(lane, routing_key=lane, queue_arguments=quorum) for lane in LANES],
        "task_default_queue": QueueNames.MAIL,
        "task_routes": {task: {"queue": lane} for task, lane in ROUTES.items()},
        # Sends wait on providers far away, so a worker keeps many in flight: threads, not
        # processes (see docs/production.md, "Sizing workers"). The threads pool has no time limits of its own;
        # the watchdog below and every socket's timeout cut off a send that hangs.
        "worker_pool": "threads",
        "worker_concurrency": settings.worker_concurrency,
        # Every thread may publish at once (a retry, a dispatch): a broker connection each,
        # rather than threads queueing for Celery's default ten.
        "broker_pool_limit": max(10, settings.worker_concurrency),
        # A message is acknowledged after its task ran, so a worker that dies loses nothing.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One reserved message per thread: a captcha queued behind a mail backlog is fetched at
        # the next free thread instead of waiting behind mails this worker already took.
        "worker_prefetch_multiplier": 1,
        # The threads pool cannot cancel a running task; it finishes (its sockets time out).
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        # The attempt's claim lasts this long; the watchdog ends the attempt before that.
        **time_limits("task_", settings.task_time_limit),
        # A code's attempt has its own, shorter limit: its claim runs out while the code is
        # still worth sending (Settings.captcha_time_limit).
        "task_annotations": {
            task: time_limits("", settings.captcha_time_limit)
            for task in (TaskNames.SEND_SMS_CAPTCHA, TaskNames.SEND_MAIL_CAPTCHA)
        },
        "broker_transport_options": {
            **visibility,
            **broker_sentinels,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
            # RabbitMQ (py-amqp): a read or write on a node that went silent gives up after a
            # heartbeat instead of never. Without it a worker's event loop waited for ever on
            # the confirm of its own heartbeat event, and took no message from any node again.
            **(
                {
                    "read_timeout": settings.broker_heartbeat,
                    "write_timeout": settings.broker_heartbeat,
                }
                if settings.broker_is_rabbitmq
                else {}
            ),
            # A dead worker's unacknowledged messages are looked for every few seconds, so they
            # come back soon after their visibility timeout rather than minutes later.
            "unacked_restore_interval": max(1, min(10, settings.broker_visibility_timeout // 10)),
            "unacked_restore_throttle": 1,
            # Each sweep holds a lock in Redis; a worker killed while holding it would stop every
            # sweep for kombu's default five minutes. Our claims make a doubled restore harmless.
            "unacked_mutex_expire": min(30, max(2, settings.broker_visibility_timeout // 5)),
            # RabbitMQ: each publish waits for the broker's ack (the message is on disk, or on a
            # quorum of nodes), so a 202 means the broker has it and a refusal is an error, not
            # a message dropped in silence.
            "confirm_publish": settings.broker_is_rabbitmq,
        },
        # Deploys: SIGTERM is Celery's warm shutdown: the sends in flight finish (each bounded by
        # the watchdog and its timeouts), and reserved and ETA messages go back to the broker.
        # (Celery's soft shutdown is for the prefork pool: the threads pool cannot cut a task.)
        # Reconnect to the broker forever: a long outage must not end the worker.
        "broker_connection_max_retries": None,
        "worker_consumer": f"{celery_consumer.__name__}:Consumer",
        "result_backend_transport_options": {**visibility, **result_sentinels},
        # A primary demoted by a failover answers READONLY: reconnect (to the promoted one)
        # instead of ending the worker (celery#7946).
        "broker_channel_error_retry": True,
        # RabbitMQ: a node that goes silent keeps its TCP connections open; a worker consuming
        # from it notices by the missed heartbeats (two of them), then moves to another node.
        **({"broker_heartbeat": settings.broker_heartbeat} if settings.broker_is_rabbitmq else {}),
        "broker_connection_timeout": 2,
        "broker_connection_retry_on_startup": True,
        # Publishing gives up within about a second: the caller gets a 503, not a hang.
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "beat_schedule": {
            "dispatch-due": {
                "task": TaskNames.DISPATCH_DUE,
                "schedule": DISPATCH_EVERY,
                "options": {"expires": 10 * DISPATCH_EVERY},
            },
        },
        # The schedule is fixed in code, so beat keeps it in memory: nothing on disk, which a
        # fresh container or a read-only file system could not give it anyway.
        "beat_scheduler": "celery.beat:Scheduler",
        **_quorum_lanes(settings),
    }


def _quorum_lanes(settings: Settings) -> dict[str, Any]:
    """What quorum lanes need besides their type (docs/production.md, "RabbitMQ as the broker")."""
    if settings.broker_queue_type != "quorum":
        return {}
    return {
        # With quorum lanes Celery parks a countdown (a retry) in RabbitMQ's delay queues (its
        # native delayed delivery), which forward it through the lanes' exchange only if that is
        # a topic exchange. Through a direct one the worker would hold the message until its
        # time, and with quorum queues its prefetch cannot grow to make up for it.
        "task_default_exchange_type": "topic",
        # A queue Celery declares by itself (a -Q that names no lane) is a quorum queue too.
        "task_create_missing_queue_type": "quorum",
    }


@signals.setup_logging.connect
def _keep_our_logging(**kwargs: Any) -> None:
    """Celery leaves logging alone when someone handles this signal: create_app set it up."""


@signals.before_task_publish.connect
def _pass_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """The request id goes along with every message published while handling a request."""
    current = request_id.get()
    if headers is not None and current and "request_id" not in headers:
        headers["request_id"] = current


@signals.worker_ready.connect
@signals.beat_init.connect
def _freeze_what_start_up_made(**kwargs: Any) -> None:
    """Leave what the start made (modules, the app: most of the heap, long-lived) out of every
    garbage collection from now on, as ``gc.freeze`` is for: each full collection walked all of
    it, and the last, as the process ends, took a worker or beat 0.2 s of CPU."""
    gc.freeze()


@signals.task_prerun.connect
def _take_request_id(task: Task | None = None, **kwargs: Any) -> None:  # type: ignore[type-arg]
    """A task logs under the request id of the request that queued it."""
    request_id.set(task.request.get("request_id") if task is not None else None)


@signals.task_postrun.connect
def _drop_request_id(**kwargs: Any) -> None:
    request_id.set(None)


def celery_init_app(app: Flask, config: dict[str, Any]) -> Celery:
    """Make the Celery app whose tasks run inside ``app``'s context."""

    watchdog = Watchdog()
    limit = float(config["task_soft_time_limit"])

    class FlaskTask(Task):  # type: ignore[type-arg]
        # For signal handlers, which run outside any task: they enter the app themselves.
        flask_app = app

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context(), watchdog.limit(self.soft_time_limit or limit):
                return self.run(*args, **kwargs)

    def close_providers(**kwargs: Any) -> None:
        # A worker that ends says QUIT to the SMTP server instead of dropping the line.
        app.extensions["notifier"].close()

    def become_worker(sender: Any = None, **kwargs: Any) -> None:
        # This process sends: a failover is waited out (Redis commands and publishing alike)
        # rather than failing an attempt half-way. The web keeps its fast 503s.
        app.extensions["notifier"].become_worker(getattr(sender, "concurrency", None))
        celery.conf.task_publish_retry_policy = PATIENT_PUBLISH
        # The threads pool runs tasks in this process: its traces start here (README "Traces").
        tracing.start(app, "worker")

    signals.worker_init.connect(become_worker, weak=False)
    signals.worker_shutdown.connect(close_providers, weak=False)
    signals.worker_process_shutdown.connect(close_providers, weak=False)
    celery: Celery = Celery(app.name, task_cls=FlaskTask)
    celery.config_from_object(config)
    if str(config.get("broker_url", "")).startswith(AMQP_SCHEMES):
        # New connections pass over a node that just failed (notifier.patches.kombu_failover).
        celery.amqp.Connection = FailoverConnection
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
