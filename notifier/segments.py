"""How many parts (segments) an SMS text takes, counted as Twilio counts them.

A part is 140 octets. Text that is all GSM 03.38 (the GSM-7 alphabet) goes 7 bits a character:
160 characters in a message of one part; a longer one is sent in parts of 153, the other 7
septets holding the header that lets the handset join them. A character of the alphabet's
extension table (``€``, ``[``, ``{``, …) is an escape and a character: two septets. Any other
character makes the whole text UCS-2: 16 bits a UTF-16 code unit, 70 in one part and 67 a part
beyond; a character outside the Basic Multilingual Plane (most emoji) is two code units.

A character is never split across two parts (an escape and its character, or the two halves of
a surrogate pair): a part that would end in the middle of one ends before it, one unit short,
and the character opens the next part. (Twilio's calculator keeps a whole grapheme cluster, an
emoji sequence joined by ZWJ, in one part; Python has no grapheme segmenter, so this keeps code
points whole.) Sources: Twilio's glossary pages on the SMS character limit,
GSM-7 and UCS-2, and its message segment calculator (TwilioDevEd/message-segment-calculator);
GOV.UK Notify counts the same way (notifications-utils, ``SMSMessageTemplate.fragment_count``),
but for that split, and without the form feed among the extension. docs/sms.md says it for users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The GSM 03.38 default alphabet (one septet each) and its extension table (two: ESC and one).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

PART_BITS = 140 * 8
HEADER_BITS = 6 * 8  # the concatenation header of each part of a longer message
Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class Segments:
    """A text's encoding, its length in that encoding's units (septets or UTF-16 code units),
    and the parts it takes."""

    encoding: Encoding
    units: int
    parts: int


def characters(text: str) -> int:
    """A body's length as Twilio counts it against its 1,600 characters: a character outside
    the Basic Multilingual Plane (an emoji) counts two, as in UTF-16."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in the GSM alphabet or its extension, else UCS-2."""
    gsm = GSM_BASIC | GSM_EXTENSION
    return "GSM-7" if all(c in gsm for c in text) else "UCS-2"


def count(text: str) -> Segments:
    """The encoding, units and parts of ``text`` (an empty text is one part)."""
    encoding = encoding_of(text)
    if encoding == "GSM-7":
        unit_bits = 7
        sizes = [2 if c in GSM_EXTENSION else 1 for c in text]
    else:
        unit_bits = 16
        sizes = [2 if ord(c) > 0xFFFF else 1 for c in text]
    units = sum(sizes)
    if units * unit_bits <= PART_BITS:
        return Segments(encoding, units, 1)
    room = (PART_BITS - HEADER_BITS) // unit_bits  # 153 septets, or 67 code units
    parts, used = 1, 0
    for size in sizes:
        if used + size > room:
            parts, used = parts + 1, 0
        used += size
    return Segments(encoding, units, parts)


def parts(text: str) -> int:
    """How many parts ``text`` is sent in."""
    return count(text).parts
