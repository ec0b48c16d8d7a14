"""The baseline: Flask + Celery + Flask-Mail the way the tutorials write it.

``make_celery`` with a ContextTask, a result backend, ``mail.send`` (a new SMTP connection for
every mail) inside the task, ``delay()`` in the view, no validation, no status. Run as
``gunicorn -w 2 naive_app:app`` and ``celery -A naive_app.celery worker -c 2`` from bench/.
"""

import os

from celery import Celery
from flask import Flask, jsonify, request
from flask_mail import Mail, Message

app = Flask(__name__)
app.config.update(
    MAIL_SERVER="127.0.0.1",
    MAIL_PORT=int(os.environ["BENCH_SMTP_PORT"]),
    MAIL_DEFAULT_SENDER="naive@example.com",
    CELERY_BROKER_URL=os.environ["BENCH_REDIS_URL"],
    CELERY_RESULT_BACKEND=os.environ["BENCH_REDIS_URL"],
)
mail = Mail(app)


def make_celery(app):
    celery = Celery(
        app.import_name,
        backend=app.config["CELERY_RESULT_BACKEND"],
        broker=app.config["CELERY_BROKER_URL"],
    )
    celery.conf.update(app.config)

    class ContextTask(celery.Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery.Task = ContextTask
    return celery


celery = make_celery(app)


@celery.task
def send_async_email(email_data):
    msg = Message(email_data["subject"], recipients=email_data["to"], body=email_data["body"])
    mail.send(msg)


@app.route("/v1/mail", methods=["POST"])
def send_mail():
    data = request.get_json()
    send_async_email.delay({"subject": data["subject"], "to": data["to"], "body": data["text"]})
    return jsonify({"status": "queued"}), 202
