"""The Celery app of the Procfile's ``worker`` and ``beat``: ``celery -A celery_app worker``."""

import gc

# No garbage collection while the package loads and the app is built: they make most of the
# heap and free little of it, and the collections their allocations set off walked it again
# and again, 0.06 to 0.15 s of the 1.1 s of CPU this import took. (The worker and beat freeze the
# heap once up: notifier/celery_ext.py.)
gc.disable()
try:
    from notifier import create_app

    flask_app = create_app(serve=False)  # no HTTP routes: the worker and beat serve none
finally:
    gc.enable()
celery = app = flask_app.extensions["celery"]
