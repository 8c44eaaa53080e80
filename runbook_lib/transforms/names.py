"""Names: one field into first and last name (Western and Chinese rules), and back."""

from __future__ import annotations

import re
from typing import Any

from runbook_lib.transforms.registry import is_blank, register
from runbook_lib.transforms.text import strip

# The one definition of a CJK character (names are split by it; masking keeps one of them).
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
# Transliterated foreign and minority names (约翰·史密斯) keep the given name first.
_MIDDLE_DOT = re.compile(r"[·・‧•･]")
_COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 令狐 长孙 宇文 司徒 夏侯 轩辕 端木 独孤 南宫 "
    "西门 百里 闻人 澹台 公冶 宗政 濮阳 淳于 单于 太叔 申屠 仲孙 钟离 呼延 赫连 "
    # Traditional forms, for Hong Kong and Taiwan sources.
    "歐陽 司馬 諸葛 東方 尉遲 公孫 長孫 軒轅 獨孤 南宮 西門 聞人 濮陽 鍾離".split()
)


@register("split_name", outputs=("first_name", "last_name"), returns="text", can_fail=False)
def split_name(value: Any) -> tuple[str | None, str | None]:
    """Split a full name into (first_name, last_name); Chinese names are surname first.

    Western: the last token is the surname, everything before it the given names. Chinese:
    spaces are dropped, a compound surname (欧阳, 司马, ...) takes two characters, else one.
    """
    if is_blank(value):
        return (None, None)
    if not isinstance(value, str):
        value = str(value)
    if CJK.search(value):
        name = "".join(value.split())
        dots = _MIDDLE_DOT.findall(name)
        if dots:
            given, _, family = name.rpartition(dots[-1])
            return (given or None, family or None)
        size = 2 if name[:2] in _COMPOUND_SURNAMES else 1
        return (name[size:] or None, name[:size])
    given, _, family = " ".join(value.split()).rpartition(" ")
    return (given, family) if given else (family, None)


NAME_KINDS = (
    "chinese_single_surname",
    "chinese_compound_surname",
    "chinese_transliterated",
    "western_two_part",
    "western_three_plus_parts",
    "western_single_name",
    "western_extra_spaces",
)


def name_kind(value: str) -> str:
    """Which rule of :func:`split_name` a full name takes (the assessment counts them).

    Extra spaces (leading, trailing or doubled) are reported before the number of parts, since
    they are what a careless split gets wrong.
    """
    if CJK.search(value):
        name = "".join(value.split())
        if _MIDDLE_DOT.search(name):
            return "chinese_transliterated"
        compound = name[:2] in _COMPOUND_SURNAMES
        return "chinese_compound_surname" if compound else "chinese_single_surname"
    if value != value.strip() or "  " in value:
        return "western_extra_spaces"
    parts = len(value.split())
    if parts <= 1:
        return "western_single_name"
    return "western_two_part" if parts == 2 else "western_three_plus_parts"


@register("join_name", inputs=2, returns="text", can_fail=False)
def join_name(first: Any, last: Any) -> str | None:
    """Join first and last name ("first last"; Chinese names surname first, no space)."""
    first = strip(first) if isinstance(first, str) else first
    last = strip(last) if isinstance(last, str) else last
    if not first or not last:
        return first or last or None
    if CJK.search(first) or CJK.search(last):
        return f"{last}{first}"
    return f"{first} {last}"
