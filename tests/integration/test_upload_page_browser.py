"""The README's upload page and its plain form, as they are written there, in a real headless
Chromium: a file chosen in the page goes to a local S3 or a local Aliyun OSS that checks the form
(``tests/support/peers/s3.py``, ``oss.py``) or to a local Qiniu form upload that checks the
token, through a backend that asks the stack for them."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from jinja2 import Environment
from werkzeug.formparser import parse_form_data

from notifier.embedded import free_port
from tests.support.harness.clients import QINIU, auth, bucket
from tests.support.harness.stack import Stack
from tests.support.harness.wait import wait_for
from tests.support.peers.chromium import Page
from tests.support.peers.http_peer import PeerHandler
from tests.support.peers.qiniu import check_token
from tests.support.peers.s3 import FakeS3

pytestmark = [pytest.mark.integration, pytest.mark.browser]

README = Path(__file__).resolve().parents[2] / "README.md"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 512


def readme_html() -> list[str]:
    """The html blocks of the README's "An upload page" section, word for word: the page, then
    the plain form."""
    section = README.read_text().split("### An upload page", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"```html\n(.*?)```", section, re.S)
    assert len(found) == 2, "the README's upload page and its plain form"
    return found


def qiniu_key(policy: dict[str, Any], key: str | None, filename: str) -> str:
    """The key Qiniu's form upload stores a file under, once the token's scope allows it."""
    if key is None:  # named by saveKey, else by its hash
        key = policy.get("saveKey", "$(etag)").replace("$(fname)", filename)
    bucket, _, scoped = policy["scope"].partition(":")
    allowed = key.startswith(scoped) if policy.get("isPrefixalScope") else key == scoped
    assert (bucket, allowed) == ("avatars", True), (policy, key)
    return key


class Backend:
    """The page's origin: serves the page (and at /form the plain form, rendered with an
    answer), answers its POST /api/avatar-upload by asking the stack (as "your backend" does,
    with the key), and takes Qiniu form uploads."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.ask: tuple[str, dict[str, Any]] = ("s3", {})
        self.qiniu_uploads: dict[str, bytes] = {}
        self.port = free_port()
        backend = self

        class Handler(PeerHandler):
            def reply(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                page, form = readme_html()
                if self.path == "/form":  # rendered as "your backend" does, with a fresh answer
                    page = Environment(autoescape=True).from_string(form).render(t=backend.mint())
                self.reply(200, page.encode(), "text/html; charset=utf-8")

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                if self.path == "/api/avatar-upload":
                    self.rfile.read(length)
                    self.reply(200, json.dumps(backend.mint()).encode(), "application/json")
                    return
                environ = {
                    "wsgi.input": self.rfile, "CONTENT_LENGTH": str(length),
                    "CONTENT_TYPE": self.headers["Content-Type"], "REQUEST_METHOD": "POST",
                }  # fmt: skip
                _, form, files = parse_form_data(environ)
                token = form["token"]
                policy = check_token(
                    token,
                    access_key=QINIU["qiniu_access_key"],
                    secret_key=QINIU["qiniu_secret_key"],
                )
                key = qiniu_key(policy, form.get("key"), files["file"].filename or "")
                backend.qiniu_uploads[key] = files["file"].read()
                files["file"].close()
                self.reply(200, json.dumps({"key": key}).encode(), "application/json")

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mint(self) -> dict[str, Any]:
        store, body = self.ask
        answer = requests.post(
            f"{self.stack.base}/v1/uploads/{store}/token", json=body, headers=auth(), timeout=10
        )
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        if store == "qiniu":
            found["upload_url"] = f"{self.url}/qiniu-upload"  # Qiniu's form upload, here
        return found

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backend(stack: Stack) -> Iterator[Backend]:
    running = Backend(stack)
    yield running
    running.stop()


def choose_a_picture(
    page: Page, backend: Backend, folder: Path, path: str = "/", field: str = "#avatar"
) -> None:
    """Open the README's page (or its form) and choose a PNG file named face.png, as a user
    would."""
    picture = folder / "face.png"
    picture.write_bytes(PNG)
    page.goto(backend.url + path)
    page.wait_for(f"document.querySelector('{field}')")
    page.choose_file(field, picture)


# The stores that answer a form, each with its local server (a fixture of that name).
FORM_STORES = ["s3", "oss", "cos"]


@pytest.mark.parametrize("store", FORM_STORES)
def test_the_readme_page_uploads_with_the_form(
    stack: Stack,
    backend: Backend,
    page: Page,
    tmp_path: Path,
    store: str,
    request: pytest.FixtureRequest,
) -> None:
    server: FakeS3 = request.getfixturevalue(store)
    prefix = f"u/{uuid.uuid4().hex}/"
    backend.ask = (
        store,
        {"bucket": bucket(store), "key_prefix": prefix, "content_type": "image/*"},
    )
    choose_a_picture(page, backend, tmp_path)
    found = wait_for(
        lambda: server.objects.get((bucket(store), f"{prefix}face.png")), what="upload"
    )
    # The page gave the file's own type, within the form's image/*.
    assert (found.body, found.content_type) == (PNG, "image/png")


@pytest.mark.parametrize("store", FORM_STORES)
def test_the_readme_form_uploads_without_script(
    stack: Stack,
    backend: Backend,
    page: Page,
    tmp_path: Path,
    store: str,
    request: pytest.FixtureRequest,
) -> None:
    server: FakeS3 = request.getfixturevalue(store)
    prefix = f"u/{uuid.uuid4().hex}/"
    backend.ask = (
        store,
        {"bucket": bucket(store), "key_prefix": prefix, "content_type": "image/png"},
    )
    choose_a_picture(page, backend, tmp_path, "/form", "input[type=file]")
    page.evaluate("document.querySelector('form button').click()")
    found = wait_for(
        lambda: server.objects.get((bucket(store), f"{prefix}face.png")), what="upload"
    )
    assert (found.body, found.content_type) == (PNG, "image/png")


@pytest.mark.parametrize("scope", ["key", "key_prefix"])
def test_the_readme_page_uploads_to_qiniu_with_the_token(
    stack: Stack, backend: Backend, page: Page, tmp_path: Path, scope: str
) -> None:
    asked = f"u/{uuid.uuid4().hex}" + (".png" if scope == "key" else "/")
    backend.ask = ("qiniu", {"bucket": "avatars", scope: asked, "mime_limit": "image/*"})
    choose_a_picture(page, backend, tmp_path)
    # A prefix token's form has no key: Qiniu names the file by the prefix and its name.
    key = asked if scope == "key" else f"{asked}face.png"
    assert wait_for(lambda: backend.qiniu_uploads.get(key), what="the upload") == PNG
