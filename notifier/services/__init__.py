"""What Notifier does, free of HTTP and of Celery: the API and the tasks call these."""
