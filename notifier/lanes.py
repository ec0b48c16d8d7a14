"""Task names and the lanes (Celery queues) they run in.

Each kind of work has a queue of its own, so a login code never waits behind a mail backlog
and an operator can run a worker for chosen lanes (``celery -A celery_app worker -Q captcha``).
A worker started without ``-Q`` serves every lane, in :data:`LANES` order, captchas first.
"""

from __future__ import annotations


class TaskNames:
    """The registered names of the tasks: other services may call them by these."""

    SEND_MAIL = "send_mail"
    SEND_SMS = "send_sms"
    SEND_SMS_CAPTCHA = "send_sms_captcha"
    SEND_MAIL_CAPTCHA = "send_mail_captcha"
    QINIU_UPTOKEN = "qiniu_uptoken"
    S3_UPLOAD_FORM = "s3_upload_form"
    UPLOAD_FORM = "upload_form"
    DISPATCH_DUE = "dispatch_due"
    SEND_CALLBACK = "send_callback"
    FAN_OUT_BATCH = "fan_out_batch"


class QueueNames:
    """The lanes."""

    CAPTCHA = "captcha"  # login codes: someone is waiting for each one
    SMS = "sms"  # SMS notifications (send_sms): behind login codes, ahead of any batch
    UPLOADS = "uploads"  # upload tokens minted by task: a caller waits for the result
    MAIL = "mail"
    CALLBACKS = "callbacks"  # status callbacks to callers' services
    BATCH = "batch"  # fanning a batch out into its mails
    BULK = "bulk"  # a batch's mails and SMS: behind no single mail or SMS, no login code
    SCHEDULED = "scheduled"  # beat's dispatch of scheduled mail, housekeeping
    # Where another service's Celery puts a task it sends with its defaults
    # (``send_task("qiniu_uptoken", ...)`` without a queue): served too, so such callers work.
    DEFAULT = "celery"


LANES = (
    QueueNames.CAPTCHA,
    QueueNames.SMS,
    QueueNames.UPLOADS,
    QueueNames.MAIL,
    QueueNames.CALLBACKS,
    QueueNames.BATCH,
    QueueNames.BULK,
    QueueNames.SCHEDULED,
    QueueNames.DEFAULT,
)

ROUTES = {
    TaskNames.SEND_SMS_CAPTCHA: QueueNames.CAPTCHA,
    TaskNames.SEND_MAIL_CAPTCHA: QueueNames.CAPTCHA,
    TaskNames.QINIU_UPTOKEN: QueueNames.UPLOADS,
    TaskNames.S3_UPLOAD_FORM: QueueNames.UPLOADS,
    TaskNames.UPLOAD_FORM: QueueNames.UPLOADS,
    TaskNames.SEND_MAIL: QueueNames.MAIL,
    TaskNames.SEND_SMS: QueueNames.SMS,
    TaskNames.DISPATCH_DUE: QueueNames.SCHEDULED,
    TaskNames.SEND_CALLBACK: QueueNames.CALLBACKS,
    TaskNames.FAN_OUT_BATCH: QueueNames.BATCH,
}
