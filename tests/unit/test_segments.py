"""SMS parts, counted as Twilio counts them (the contract's examples first)."""

from __future__ import annotations

import pytest

from notifier.segments import GSM_BASIC, GSM_EXTENSION, Segments, count, parts


def test_160_gsm_characters_are_one_part_and_161_are_two() -> None:
    assert count("a" * 160) == Segments("GSM-7", 160, 1)
    assert count("a" * 161) == Segments("GSM-7", 161, 2)


def test_an_extension_character_takes_two_septets() -> None:
    assert count("€" * 80) == Segments("GSM-7", 160, 1)
    assert count("a" * 159 + "€") == Segments("GSM-7", 161, 2)
    for character in "€[]{}|^~\\\f":
        assert count(character).units == 2


def test_70_ucs2_units_with_one_non_gsm_character_are_one_part_and_71_are_two() -> None:
    assert count("☺" + "a" * 69) == Segments("UCS-2", 70, 1)
    assert count("☺" + "a" * 70) == Segments("UCS-2", 71, 2)


def test_an_emoji_outside_the_bmp_takes_two_utf16_units() -> None:
    assert count("😀" + "a" * 68) == Segments("UCS-2", 70, 1)
    assert count("😀" + "a" * 69) == Segments("UCS-2", 71, 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 306, 2),  # 153 + 153
        ("a" * 307, 3),
        ("a" * 1600, 11),  # Twilio's longest body
        ("中" * 134, 2),  # 67 + 67
        ("中" * 135, 3),
        ("您的包裹今天发货。", 1),
    ],
)
def test_parts_beyond_the_first_hold_153_septets_or_67_units(text: str, expected: int) -> None:
    assert parts(text) == expected


def test_a_character_is_never_split_across_two_parts() -> None:
    # The 153rd septet would be the escape of "€": the euro sign starts the second part.
    assert parts("a" * 152 + "€" + "a" * 152) == 3
    assert parts("a" * 151 + "€" + "a" * 153) == 2
    # The same for a surrogate pair at the 67th code unit.
    assert parts("中" * 66 + "😀" + "中" * 66) == 3
    assert parts("中" * 65 + "😀" + "中" * 67) == 2


def test_the_alphabets_are_gsm_03_38() -> None:
    assert len(GSM_BASIC) == 127  # 128 code points, less the escape
    assert len(GSM_EXTENSION) == 10
    # Characters readers take for GSM that are not: any of them makes the text UCS-2.
    for outsider in "`çÀ\u2019\u201c\t\u00a0":
        assert count("a" + outsider).encoding == "UCS-2"


def test_an_empty_text_is_one_part() -> None:
    assert count("") == Segments("GSM-7", 0, 1)
