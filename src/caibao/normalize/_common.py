"""What the normalisers share: the result types and text helpers (full-width, script, clauses)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Literal

Status = Literal["ok", "unparsed"]
Basis = Literal["yoy", "qoq"]



# =============================================================================
# Result types
# =============================================================================


@dataclass(frozen=True)
class ParsedValue:
    """A VALUE span, normalised.

    ``number`` is in base units (2138亿元 -> 213800000000.0, 21% -> 21.0) with
    the sign applied; ``None`` for ranges (see ``low``/``high``) and for
    anything unparsed.
    """

    text: str
    number: float | None = None
    low: float | None = None
    high: float | None = None
    unit: str | None = None
    approx: bool = False
    sign: int = 1
    basis: Basis | None = None
    status: Status = "ok"
    reason: str | None = None

    @property
    def is_range(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class ParsedPeriod:
    """A PERIOD span, normalised (``2021FY``, ``2021Q4``, ``2022H1``,
    ``2022Q1-Q3``, ``2021-12-31``, ``2023-01``).

    ``relative`` is True when the span alone does not fix the period (no
    year, or a relative word) and had to be resolved from the anchor or the
    publication date -- also when that failed (then ``status`` is
    ``unparsed`` and ``normalized`` ``None``).
    """

    text: str
    normalized: str | None = None
    relative: bool = False
    kind: str | None = None  # "year", "quarter", "half", "ytd", "month", "date"
    status: Status = "ok"
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# =============================================================================
# Text helpers
# =============================================================================

# Traditional -> simplified for the handful of characters the cue tables and
# period grammar look at (the corpus has a Traditional-Chinese transcript).
# Numerals (億, 萬, 兩) are handled by the number parser itself.
_TRAD_TO_SIMP = str.maketrans(
    {
        "財": "财", "個": "个", "兩": "两", "於": "于", "來": "来", "後": "后",
        "單": "单", "當": "当", "報": "报", "幾": "几", "這": "这", "該": "该",
        "內": "内", "間": "间", "與": "与", "較": "较", "減": "减", "長": "长",
        "虧": "亏", "損": "损", "淨": "净", "環": "环", "漲": "涨",
        "縮": "缩", "擴": "扩", "億": "亿", "萬": "万", "點": "点", "計": "计",
        "預": "预", "標": "标", "導": "导", "週": "周", "歲": "岁", "號": "号",
        "類": "类", "級": "级", "屆": "届", "項": "项", "筆": "笔", "條": "条",
        "張": "张", "戶": "户", "隻": "只", "輛": "辆", "場": "场", "棟": "栋",
        "幣": "币", "圓": "圆", "塊": "块", "貨": "货", "遞": "递", "實": "实",
        "現": "现", "時": "时", "開": "开", "進": "进", "價": "价", "額": "额",
        "資": "资", "產": "产", "營": "营", "業": "业", "費": "费", "數": "数",
        "權": "权", "變": "变", "動": "动", "為": "为", "約": "约",
        "達": "达", "過": "过", "僅": "仅", "餘": "余", "關": "关", "門": "门",
        "調": "调", "負": "负", "債": "债", "隨": "随",
    }
)


def _nfkc(s: str) -> str:
    """Full-width digits, letters, ％, ＄, ￥, ～ and ideographic space to ASCII."""
    return unicodedata.normalize("NFKC", s)


def _simp(s: str) -> str:
    return _nfkc(s).translate(_TRAD_TO_SIMP)


_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def _strip_thousands(s: str) -> str:
    return _THOUSANDS_RE.sub("", s)


# A clause ends at these (the sign/basis/approx cues of a value live in its
# own clause).  An ASCII comma or period only ends a clause when it is not
# inside a number ("4,123.61").
_CLAUSE_BREAK_RE = re.compile(r"[，；;。！？!?：:\n]|,(?!\d{3})|\.(?!\d)")


def _clause_before(text: str) -> str:
    """The tail of ``text`` after its last clause break."""
    last = None
    for m in _CLAUSE_BREAK_RE.finditer(text):
        last = m
    return text[last.end():] if last else text


def _clause_after(text: str) -> str:
    m = _CLAUSE_BREAK_RE.search(text)
    return text[: m.start()] if m else text
