"""Celery tasks. Importing this package registers them under their stable names."""

from notifier.tasks import mail, schedule, sms, uploads

__all__ = ["mail", "schedule", "sms", "uploads"]
