"""The names the status scripts' library (``lua/lib/batch_counts.lua``) moves beside a record.

Every status change of a record keeps the open index of its shard and a batch row's batch counts
in the same step; the library that does it is included by both stores' scripts (the
notification store's move rows, the batch store's cancel moves whole batches), so the keys and
members it writes are named here, apart from both. A test holds the library to these names.
"""

from __future__ import annotations

from notifier.stores.slots import in_shard

# Each shard's schedule: ids (and the members below) scored by when they are due.
SCHEDULED = "scheduled"
# Each shard's notifications whose message should be on the queue (queued, retrying), scored
# by when they became so (sending ones too): what dispatch_due looks at to put back a message a failover lost
# (see notifier.tasks.schedule.requeue_lost).
OPEN = "open"
# Members of the schedule that are not notifications: a batch to fan out at its send_at, and
# a finished batch whose client is told so by callback (dispatch_due handles both).
FAN_OUT_MEMBER = "batch:"
DONE_MEMBER = "batch-done:"


def scheduled_key(identifier: str) -> str:
    """The schedule of the shard a notification or batch id is in."""
    return in_shard(identifier, SCHEDULED)


def open_key(notification_id: str) -> str:
    """The open index of the shard a notification is in."""
    return in_shard(notification_id, OPEN)


def member_id(member: str) -> str:
    """The notification or batch id a schedule member stands for."""
    for prefix in (FAN_OUT_MEMBER, DONE_MEMBER):
        if member.startswith(prefix):
            return member.removeprefix(prefix)
    return member
