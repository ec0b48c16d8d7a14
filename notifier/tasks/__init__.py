"""Celery tasks. Importing this package registers them under their stable names."""

from notifier.tasks import batches, callbacks, captcha, mail, schedule, sms, uploads

__all__ = ["batches", "callbacks", "captcha", "mail", "schedule", "sms", "uploads"]
