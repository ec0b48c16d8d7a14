"""Everything Notifier keeps in Redis, one module a family of keys (as Notify's ``app/dao/``).

Each module owns its keys (all under ``notifier:``), writes their schema in its docstring, and
moves them with Lua scripts or transactions, so two processes never half-update a key:

* :mod:`~notifier.stores.notifications`: status records, payloads, the schedule, counters;
* :mod:`~notifier.stores.captchas`: captcha code digests and send limits;
* :mod:`~notifier.stores.idempotency`: ``Idempotency-Key`` slots and their answers;
* :mod:`~notifier.stores.rate_limits`: the per-client token buckets.
"""
