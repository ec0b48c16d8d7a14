"""``upload_form`` (any store), ``qiniu_uptoken`` and ``s3_upload_form``: the upload routes as
tasks, for services that call tasks directly.

``send_task("upload_form", kwargs={"store": "oss", "client": "billing", "bucket": "avatars",
...})`` returns what ``POST /v1/uploads/oss/token`` answers; ``client`` names the API client
whose buckets and prefix apply. A refusal raises the route's error: ``Forbidden``, or
``Unprocessable`` whose message names each argument at fault (``the keyword arguments are not
valid (expires_in): …``; an unknown ``store`` too).
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from pydantic import ValidationError

from notifier.errors import (
    FieldError,
    Forbidden,
    NotAllowed,
    Refused,
    ServiceUnavailable,
    Unavailable,
    Unprocessable,
)
from notifier.lanes import TaskNames
from notifier.runtime import runtime
from notifier.services.uploads import mint_upload
from notifier.settings import Environment

# What a caller's bad request raises: its answer, not the worker's fault. Celery logs these at
# INFO without a traceback (and Sentry leaves them out).
REFUSALS = (Forbidden, Unprocessable)


@shared_task(name=TaskNames.QINIU_UPTOKEN, ignore_result=False, throws=REFUSALS)
def qiniu_uptoken(*, client: str, **request: Any) -> dict[str, Any]:
    """Mint a token as ``POST /v1/uploads/qiniu/token`` does for ``client``."""
    return _mint("qiniu", client, request)


@shared_task(name=TaskNames.S3_UPLOAD_FORM, ignore_result=False, throws=REFUSALS)
def s3_upload_form(*, client: str, **request: Any) -> dict[str, Any]:
    """Make a form as ``POST /v1/uploads/s3/token`` does for ``client``."""
    return _mint("s3", client, request)


@shared_task(name=TaskNames.UPLOAD_FORM, ignore_result=False, throws=REFUSALS)
def upload_form(*, store: str, client: str, **request: Any) -> dict[str, Any]:
    """Mint what ``POST /v1/uploads/<store>/token`` does for ``client``."""
    return _mint(store, client, request)


def _mint(name: str, client: str, request: dict[str, Any]) -> dict[str, Any]:
    rt = runtime()
    store = rt.uploads.get(name)
    if store is None:
        known = ", ".join(sorted(rt.uploads))
        raise _unprocessable([FieldError(("store",), f"no upload store {name!r} (known: {known})")])
    caller = rt.client_named(client)
    if caller is None or "upload" not in caller.scopes:
        raise Forbidden(f"no client {client!r} with the upload scope")
    try:
        body = store.request.model_validate(request, strict=True)
        answer = mint_upload(
            body,
            client=caller,
            store=store,
            require_https=rt.settings.env is Environment.PRODUCTION,
        )
    except ValidationError as e:
        errors = [FieldError(tuple(err["loc"]), err["msg"]) for err in e.errors(include_url=False)]
        raise _unprocessable(errors) from None
    except Refused as e:
        # The route's fields are the body's; here they are keyword arguments.
        raise _unprocessable([FieldError(f.field, f.message) for f in e.faults]) from None
    except NotAllowed as e:
        raise Forbidden(e.detail) from None
    except Unavailable as e:
        raise ServiceUnavailable(e.detail) from None
    return answer.model_dump()


def _unprocessable(errors: list[FieldError]) -> Unprocessable:
    """The 422 of a task: its message names each keyword argument at fault, since a caller gets
    only the message (Celery's JSON results carry an exception's arguments, not ``errors``)."""
    fields = [".".join(map(str, err.loc)) for err in errors]
    why = "; ".join(f"{field}: {err.msg}" for field, err in zip(fields, errors, strict=True))
    names = ", ".join(dict.fromkeys(fields))
    return Unprocessable(f"the keyword arguments are not valid ({names}): {why}", errors=errors)
