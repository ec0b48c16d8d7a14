"""The Celery app of the Procfile's ``worker`` and ``beat``: ``celery -A celery_app worker``."""

from notifier import create_app

flask_app = create_app()
celery = app = flask_app.extensions["celery"]
