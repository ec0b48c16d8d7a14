"""Read by gunicorn from the working directory: the settings live in the package."""

from notifier.gunicorn_conf import *  # noqa: F403
