"""Google Cloud Storage upload forms, minted through the one path every store takes
(``services/uploads.py``) with a service account key made here: the form's RSA-SHA256 signature
verifies with the account's public key (as Cloud Storage verifies ``GOOG4-RSA-SHA256``: over
the base64 policy, hex in ``x-goog-signature``), its conditions hold what was asked, a changed
byte does not verify, and the URL is https."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from notifier.errors import Unavailable
from notifier.providers.gcs import GcsSettings, GcsUploads
from notifier.schemas import GcsUploadRequest
from notifier.services.uploads import mint_upload
from notifier.settings import ApiClient
from notifier.timestamps import rfc3339
from tests.support.peers import gcs

BUCKET = "avatars"
WEB = ApiClient(
    client="web", key_sha256="0" * 64, scopes=frozenset({"upload"}),
    buckets={"gcs": frozenset({BUCKET})},
)  # fmt: skip
TENANT = WEB.model_copy(update={"client": "tenant", "key_prefixes": {"gcs": "tenant-7/"}})


@pytest.fixture(scope="module")
def key() -> RSAPrivateKey:
    """The service account's private key."""
    return gcs.account_key()


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The service account's JSON key file, as the Cloud console downloads one."""
    return gcs.key_file(tmp_path_factory.mktemp("gcs"))


def mint(key_file: Path, client: ApiClient = WEB, **body: Any) -> dict[str, Any]:
    store = GcsUploads(GcsSettings(credentials_file=str(key_file)))
    request = GcsUploadRequest.model_validate({"bucket": BUCKET, **body})
    answer: dict[str, Any] = mint_upload(
        request, client=client, store=store, require_https=True
    ).model_dump()
    return answer


def verifies(key: RSAPrivateKey, fields: dict[str, str]) -> bool:
    return gcs.verifies(fields, key)


def policy_of(form: dict[str, Any]) -> dict[str, Any]:
    return gcs.policy_of(form["fields"])


def test_the_form_is_signed_by_the_account_and_holds_what_was_asked(
    key: RSAPrivateKey, key_file: Path
) -> None:
    before = time.time()
    form = mint(key_file, key="u/1.png", content_type="image/png", max_size=1000, expires_in=600)
    assert form["url"] == f"https://storage.googleapis.com/{BUCKET}/"
    fields = form["fields"]
    assert verifies(key, fields)
    assert fields["x-goog-algorithm"] == "GOOG4-RSA-SHA256"
    assert fields["x-goog-credential"].startswith(f"{gcs.EMAIL}/")
    assert fields["x-goog-credential"].endswith("/auto/storage/goog4_request")
    assert (fields["key"], fields["Content-Type"], form["key"]) == (
        "u/1.png",
        "image/png",
        "u/1.png",
    )
    policy = policy_of(form)
    conditions = policy["conditions"]
    for rule in (
        {"bucket": BUCKET},
        {"key": "u/1.png"},
        ["content-length-range", 1, 1000],
        {"Content-Type": "image/png"},
        {"x-goog-date": fields["x-goog-date"]},
        {"x-goog-credential": fields["x-goog-credential"]},
        {"x-goog-algorithm": "GOOG4-RSA-SHA256"},
    ):
        assert rule in conditions, rule
    # Each form field but the signature and the policy is one the policy names, as it holds it.
    exact = {name: value for c in conditions if isinstance(c, dict) for name, value in c.items()}
    signed = {n: v for n, v in fields.items() if n not in ("policy", "x-goog-signature")}
    assert {n: exact.get(n) for n in signed} == signed
    # expires_at is the policy's expiration, expires_in from now.
    assert form["expires_at"] == rfc3339(_seconds(policy["expiration"]))
    assert before + 599 <= _seconds(form["expires_at"]) <= time.time() + 601


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize(
    ("field", "change"),
    [
        # One byte of the base64 policy, then of the signature.
        ("policy", lambda v: ("A" if v[10] != "A" else "B").join((v[:10], v[11:]))),
        ("x-goog-signature", lambda v: ("0" if v[0] != "0" else "1") + v[1:]),
    ],
)
def test_a_changed_byte_does_not_verify(
    key: RSAPrivateKey, key_file: Path, field: str, change: Any
) -> None:
    fields = mint(key_file, key="u/1.png")["fields"]
    assert verifies(key, fields)
    assert not verifies(key, {**fields, field: change(fields[field])})


def test_another_accounts_key_does_not_verify(key_file: Path) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not verifies(other, mint(key_file, key="u/1.png")["fields"])


def test_a_prefix_form_names_the_prefix_and_a_whole_type(
    key: RSAPrivateKey, key_file: Path
) -> None:
    form = mint(key_file, TENANT, content_type="image/*", max_size=1000)
    assert (form["key"], form["fields"]["key"]) == (None, "tenant-7/${filename}")
    assert verifies(key, form["fields"])
    conditions = policy_of(form)["conditions"]
    # Cloud Storage puts the file's name in before it checks: an exact {"key": ...} with
    # ${filename} in it (what the library signs) refused every upload (nodejs-storage#2083).
    assert ["starts-with", "$key", "tenant-7/"] in conditions
    assert not [c for c in conditions if isinstance(c, dict) and "key" in c]
    assert ["starts-with", "$Content-Type", "image/"] in conditions
    assert "Content-Type" not in form["fields"]  # the page sets the file's own type
    fields = {**form["fields"], "Content-Type": "image/png"}
    assert gcs.holds(fields, BUCKET, 1000, filename="photo.png")
    assert not gcs.holds({**fields, "key": "tenant-8/${filename}"}, BUCKET, 1000)


def test_a_prefix_form_is_the_librarys_form_but_for_its_key_condition(key_file: Path) -> None:
    # Signed here (the library cannot leave out its exact key condition): held to the form
    # google-cloud-storage makes for a key, field by field and condition by condition.
    by_library = mint(key_file, key="tenant-7/x.png", max_size=1000, expires_in=600)
    ours = mint(key_file, TENANT, max_size=1000, expires_in=600)
    assert ours["url"] == by_library["url"]
    assert list(ours["fields"]) == list(by_library["fields"])
    assert [ours["fields"][n] for n in ("x-goog-algorithm", "x-goog-credential")] == [
        by_library["fields"][n] for n in ("x-goog-algorithm", "x-goog-credential")
    ]
    theirs, mine = policy_of(by_library), policy_of(ours)
    assert list(mine) == list(theirs) == ["conditions", "expiration"]
    swapped = [
        ["starts-with", "$key", "tenant-7/"] if c == {"key": "tenant-7/x.png"} else c
        for c in theirs["conditions"]
    ]
    date = {"x-goog-date": by_library["fields"]["x-goog-date"]}
    assert [date if "x-goog-date" in c else c for c in mine["conditions"]] == swapped
    assert abs(_seconds(mine["expiration"]) - _seconds(theirs["expiration"])) < 2
    assert base64.b64decode(ours["fields"]["policy"]).decode() == json.dumps(
        mine, separators=(",", ":")
    )


@pytest.mark.parametrize("endpoint", ["https://gcs.example.test", "https://gcs.example.test/"])
def test_the_endpoint_setting_is_where_forms_go(key_file: Path, endpoint: str) -> None:
    # With a trailing slash too, as OSS's and COS's endpoints take one (it stopped start-up).
    store = GcsUploads(GcsSettings(credentials_file=str(key_file), endpoint=endpoint))
    request = GcsUploadRequest.model_validate({"bucket": BUCKET, "key": "u/1.png"})
    form = mint_upload(request, client=WEB, store=store, require_https=True)
    assert form.model_dump()["url"] == f"https://gcs.example.test/{BUCKET}/"


def test_without_a_key_file_the_store_is_unavailable() -> None:
    store = GcsUploads(GcsSettings())
    request = GcsUploadRequest.model_validate({"bucket": BUCKET, "key": "u/1.png"})
    with pytest.raises(Unavailable, match="NOTIFIER_GCS_CREDENTIALS_FILE"):
        mint_upload(request, client=WEB, store=store, require_https=True)


def test_a_key_file_written_again_with_another_key_signs_with_the_new_one(
    key: RSAPrivateKey, tmp_path: Path
) -> None:
    """A process reads a key file's credentials once for its content: the same path holding
    another account's key is read again, not answered from what the first content gave."""
    path = gcs.key_file(tmp_path)
    assert verifies(key, mint(path, key="u/1.png")["fields"])
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    gcs.key_file(tmp_path, other)
    fields = mint(path, key="u/1.png")["fields"]
    assert verifies(other, fields) and not verifies(key, fields)
