"""Mailbox identity: the one mailbox an address reaches, as the limits count it.

Only for counting (the captcha allowances, the resend interval, the daily limit and ceiling of
an address): the mail still goes to the address as given, and a code is still kept for the
address as given. Counted apart, each spelling of one mailbox would have an allowance of its
own, and one inbox could be flooded with codes.

What makes two addresses one mailbox here is only what the provider itself documents:

* every domain: case is ignored, and a ``+tag`` is dropped (subaddressing, RFC 5233, which
  Gmail, Outlook.com, iCloud Mail and Fastmail deliver to the mailbox without the tag);
* Gmail: dots in the local part are ignored ("Dots don't matter in Gmail addresses",
  https://support.google.com/mail/answer/7436150; for ``@gmail.com`` only, not for a Google
  Workspace domain, where dots count), and ``googlemail.com``, the name Google gave Gmail in
  Germany and the UK, is the same mailbox at ``gmail.com``;
* Fastmail: subdomain addressing delivers ``anything@name.fastmail.com`` to
  ``name@fastmail.com`` (https://www.fastmail.help/hc/en-us/articles/360060591053), for its two
  own domains ``fastmail.com`` and ``fastmail.fm``.

Not merged, since no provider says they are one mailbox: dots at Outlook.com, Yahoo or iCloud
(``a.b@outlook.com`` and ``ab@outlook.com`` are two accounts), ``outlook.com`` with
``hotmail.com`` or ``live.com``, ``icloud.com`` with ``me.com`` or ``mac.com`` (which of them an
account has depends on when it was made), a Yahoo ``base-keyword`` disposable address (its base
is not the account's name), and another domain's subdomains.
"""

from __future__ import annotations

GMAIL = frozenset({"gmail.com", "googlemail.com"})
FASTMAIL = frozenset({"fastmail.com", "fastmail.fm"})


def mailbox(address: str) -> str:
    """The mailbox ``address`` reaches, as the limits count it (see the module's rules)."""
    local, _, domain = address.lower().rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in GMAIL:
        return f"{local.replace('.', '') or local}@gmail.com"
    name, _, parent = domain.partition(".")
    if parent in FASTMAIL and name:
        return f"{name}@{parent}"
    return f"{local}@{domain}"
