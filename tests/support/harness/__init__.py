"""What starts and drives Notifier in the tests, and the helpers tests share: the Procfile's
processes and the running stack (built on :mod:`tests.support.peers`), the API clients and their
keys, requests and batches as tests post them, the mails, DSNs and DKIM keys they use, the Redis
Cluster slot watch, and waiting for a condition.
"""
