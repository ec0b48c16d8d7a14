"""The keys of the notification store, and the statuses a record goes through.

Keys (``<id>`` is the notification id, ``{s}`` the hash tag of its shard, one of 16: see
:mod:`notifier.stores.slots`):

* ``notifier:{s}:n:<id>``  hash, the status record the API shows;
* ``notifier:{s}:p:<id>``  JSON payload (recipients, rendered bodies), deleted once final;
* ``notifier:{s}:scheduled`` sorted set of the shard's scheduled ids, scored by due time;
* ``notifier:{s}:open`` sorted set of the shard's ids whose message should be on a queue or
  in a worker's hands (queued, retrying, sending), scored by when to look for it as lost;
* ``notifier:{s}:dispatched_at`` when the shard's schedule was last looked at (a dead beat
  shows as its age);
* ``notifier:{s}:metrics`` hash of counters: attempts and final statuses (live or test
  traffic), provider errors, callbacks, receipts, and the latency histograms (see
  :mod:`notifier.stores.latency`); /metrics adds up the shards';
* ``notifier:{s}:sends:<minute>`` hash of the sends a provider took in that minute (Unix time
  // 60), and of the final failures, by lane (``lane:<lane>:sent``, ``lane:<lane>:failed``) and
  by client and kind (``client:<client>:<kind>:sent``, ``…:failed``), kept an hour: the
  console's chart of sends a minute and its clients' figures;
* ``notifier:ref:<provider>:<ref>`` the notification a provider's message id belongs to;
* ``notifier:receipt:<provider>:<ref>`` a receipt that came before its send was recorded.
"""

from __future__ import annotations

from notifier.stores.slots import every_shard, in_shard

DISPATCHED_AT = "dispatched_at"
# Counters kept in Redis, so every worker on every machine adds to one total (see metrics.py):
# each shard's, moved in the same step as its records; /metrics adds them up.
METRICS = "metrics"
# "suppressed": not sent, the address being on the client's suppression list.
FINAL = ("sent", "failed", "cancelled", "suppressed")
# A provider's delivery receipt moves a sent notification on, once, to one of these.
RECEIPT_STATUSES = ("delivered", "undelivered")
# What a client's status callback is sent for.
CALLBACK_STATUSES = frozenset((*FINAL, *RECEIPT_STATUSES))
# Statuses a receipt can find a record in before its send is recorded.
OPEN_STATUSES = ("scheduled", "queued", "sending", "retrying")


def record_key(notification_id: str) -> str:
    return in_shard(notification_id, f"n:{notification_id}")


def payload_key(notification_id: str) -> str:
    return in_shard(notification_id, f"p:{notification_id}")


def metrics_key(identifier: str) -> str:
    """The counters of the shard ``identifier`` (a notification or batch id) is in."""
    return in_shard(identifier, METRICS)


def metrics_keys() -> list[str]:
    """Every shard's counters: /metrics adds them up."""
    return every_shard(METRICS)


def dispatched_at_keys() -> list[str]:
    """When each shard's schedule was last looked at."""
    return every_shard(DISPATCHED_AT)


SENDS = "sends"
MINUTE = 60
SENDS_KEPT = 3660  # an hour of minutes, and the minute under way (settle.lua's EXPIRE)


def sends_key(identifier: str, now: float) -> str:
    """The sends of the minute ``now`` falls in, in the shard of ``identifier``."""
    return in_shard(identifier, f"{SENDS}:{int(now // MINUTE)}")


def sends_keys(minute: int) -> list[str]:
    """Every shard's sends of ``minute`` (Unix time // 60)."""
    return every_shard(f"{SENDS}:{minute}")
