"""Mask personal data in free text (log lines, provider error messages)."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_PHONE = re.compile(r"\+\d{7,15}\b")


def redact(text: str) -> str:
    """``ada@example.com`` → ``a***@example.com``; ``+8613800138000`` → ``+86*******00``."""
    text = _EMAIL.sub(r"\1***@\2", text)
    return _PHONE.sub(lambda m: m[0][:3] + "*" * (len(m[0]) - 5) + m[0][-2:], text)
