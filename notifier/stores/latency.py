"""Latency histograms kept in Redis, beside the counters, so every worker adds to one.

A histogram is fields of the shard's counters hash (``notifier:{s}:metrics``), written by the
Lua script that moves the record, in the same step: ``hist:<name>:<lane>:<kind>:<le>`` counts
the observations of one bucket alone (not the buckets below it: one HINCRBY an observation,
whatever the number of buckets) and ``hist:<name>:<lane>:<kind>:sum`` adds up the seconds.
/metrics adds up the shards' and makes the buckets cumulative, as Prometheus wants them; the
count is the sum of every bucket's.

* ``queue_wait``: from the message going on its lane (the record accepted, or a scheduled one
  dispatched when due) to a worker claiming it, for its first attempt (a retry waits out a
  backoff of its own choosing);
* ``delivery``: from the same moment to the provider taking the message, for an attempt that
  reached it and succeeded, retries and their backoffs included; a test key's simulated sends
  reach no provider and are left out.

Both are measured by the clocks of the machines that accept and claim (kept in sync by NTP).
"""

from __future__ import annotations

# Seconds (the scripts' copy is lua/lib/observe.lua: a test holds them equal); 2 is one, so "login codes slower than 2 s at p95" is read off a bucket exactly.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
PREFIX = "hist"
QUEUE_WAIT = "queue_wait"
DELIVERY = "delivery"
# The record's field of when its message went on its lane (Unix time). Beside it the claim
# writes ``lane``, the queue the message came on.
QUEUED_AT = "queued_at"
