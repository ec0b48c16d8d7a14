"""Celery tasks. Importing this package registers them under their stable names."""

from notifier.tasks import callbacks, mail, schedule, sms, uploads

__all__ = ["callbacks", "mail", "schedule", "sms", "uploads"]
