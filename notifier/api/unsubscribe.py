"""One-click unsubscribe (RFC 8058): ``POST /v1/unsubscribe/<token>`` takes the recipient off the
client's bulk mail at once (no page, no login: the mail client posts it); ``GET`` shows a page
with the one button, so a link scanner that follows every link unsubscribes no one."""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response

from notifier.api.openapi import operation
from notifier.runtime import runtime

bp = Blueprint("unsubscribe", __name__)
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 4em auto; color: #222;">
<h1 style="font-size: 1.4em;">{title}</h1>
{body}
</body></html>
"""


def _page(status: int, title: str, body: str) -> Response:
    html = PAGE.format(title=escape(title), body=body)
    response = Response(html, status=status, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token stays out of other sites' logs
    return response


def _unknown() -> Response:
    return _page(
        404, "Link not known", "<p>This unsubscribe link is not known, or has expired.</p>"
    )


@bp.post("/unsubscribe/<token>")
@operation((200, "text/html"), errors=(404, 503), pages=(404,))
def unsubscribe(token: str) -> Response:
    """One-click unsubscribe: the address stops getting the client's bulk mail."""
    rt = runtime()
    found = rt.unsubscribes.find(token)
    if found is None:
        return _unknown()
    client, address = found
    _, new = rt.suppressions.add(client, address, "unsubscribed")
    if new:
        rt.store.count(f"unsubscribes:{client}")
    return _page(
        200, "You are unsubscribed",
        f"<p>{escape(address)} gets no more of these mails.</p>",
    )  # fmt: skip


@bp.get("/unsubscribe/<token>")
@operation((200, "text/html"), errors=(404, 503), pages=(404,))
def confirm(token: str) -> Response:
    """The page of an unsubscribe link: one button, which posts the one-click unsubscribe."""
    found = runtime().unsubscribes.find(token)
    if found is None:
        return _unknown()
    return _page(
        200, "Unsubscribe",
        f"<p>Stop these mails to {escape(found[1])}?</p>"
        f'<form method="post" action="{escape(token)}"><button type="submit">Unsubscribe</button></form>',
    )  # fmt: skip
