"""Normalisation of VALUE and PERIOD spans (see ``ANNOTATION_GUIDE.md``).

Small pure functions, no model and no I/O.  Two entry points:

* :func:`parse_value` turns a VALUE span as annotated (``2138亿元``, ``21%``,
  ``60余家``, ``4550亿至4900亿元``, ``US$5.8 million``, ``三成`` ...) plus the
  sentence it sits in into a :class:`ParsedValue`: the number in base units,
  its unit (ISO currency, ``%``, ``pp``, ``bp``, ``x`` or a measure word), and
  the hedges, sign and comparison basis read from the words around it.
* :func:`parse_period` turns a PERIOD span (``2021年四季度``, ``全年``, ``Q4``,
  ``截至2021年12月31日``, ``2022财年`` ...) into a normalised period
  (``2021Q4``, ``2021FY``, ``2022H1``, ``2022Q1-Q3``, ``2021-12-31``,
  ``2023-01``), resolving relative periods against an anchor period and the
  publication date.

Guiding rule: whatever cannot be read with confidence comes back with
``status == "unparsed"`` and ``number``/``normalized`` ``None`` -- never a
wrong number.

Decisions (documented here because the fact builder relies on them):

* Ranges (``4550亿至4900亿元``, ``15%-20%``): ``number`` is ``None``; the bounds
  are in ``low``/``high`` (a midpoint would be a number nobody reported).
  The low end inherits a missing unit and scale from the high end
  (``4550至4900亿元`` = 4550亿..4900亿 CNY).  Single values leave ``low`` and
  ``high`` ``None``.
* ``倍`` / ``times`` / ``x`` -> unit ``"x"`` (a multiple: ``25倍`` -> 25.0).
* Counts keep their measure word as unit (``家``, ``人``, ``名``, ``笔`` ...; the
  traditional form is kept as written).  A bare number (``104万``, ``1.65亿``)
  gets unit ``"count"`` when the nearest metric word before it in its clause
  counts people or things (用户, 借款人, 数量 ...), else ``None`` (money with
  the currency omitted is common in headlines; the fact builder decides).
* Percentages are in percent (``21%`` -> 21.0, ``三成`` -> 30.0, ``三分之一`` ->
  33.33..., ``5‰`` -> 0.5); percentage points (个百分点, pct, ppt) -> ``pp``;
  basis points (基点, bp, bps) -> ``bp``; 美仙/港仙 are 0.01 USD/HKD, 角 0.1 CNY.
* ``sign`` is -1 for a leading minus or a decline cue (下降, 减少, 跌 ...) in
  the same clause before the value, and ``number`` is then negative.  A cue
  followed by 至/到 (下降至, 收窄至) introduces the new *level*: no sign.
  Loss metrics (净亏损8.3亿元) stay positive; 亏损 after a profit word
  (净利润亏损8.3亿元) makes the value negative.
* ``basis`` is the comparison cue nearest before the value in its clause
  (English cues may follow it: "grew 5% year over year").  It is set on
  levels too (而上年同期为46.128亿元 -> yoy: a base figure); the fact builder
  uses it for changes only.
* Bare 4-digit numbers 1900-2099 without unit or scale are unparsed (a year
  far more often than a count); so are numbers with a leading zero (codes),
  times of day, and anything whose suffix is not a known unit.
* Deictic periods (今年, 去年, 明年, 前年, this/last year) are resolved
  against the publication date only (an anchor period says nothing about
  "now"); anaphoric ones (全年, 单季, 本季度, 报告期, 同期, 上年, 年末,
  季度末, a quarter, half or month without a year ...) against the anchor
  first and the publication date second, where they mean the most recent
  such period that had ended by then (上季度 = the quarter before that one; but
  Hong Kong news's bare 上季 against a date is that quarter itself).
* Bare 同期 is the anchor itself ("the same period": 占同期总交易额的22.1%,
  同期亏损则为...): that is how the corpus uses it.  The year-before
  reading needs 去年/上年 (去年同期, 上年同期 -> anchor minus one year);
  2021年同期 -> the anchor's period in 2021.
"""

from __future__ import annotations

import calendar
import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

__all__ = [
    "ParsedValue",
    "ParsedPeriod",
    "parse_value",
    "parse_period",
    "chinese_to_number",
    "find_basis",
    "find_sign",
    "find_approx",
    "is_guidance",
    "period_end",
    "is_money_metric",
]

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


# =============================================================================
# Chinese (and mixed) numerals
# =============================================================================

_CN_DIGITS: dict[str, int] = {
    "零": 0, "〇": 0, "○": 0,
    "一": 1, "壹": 1, "幺": 1,
    "二": 2, "贰": 2, "貳": 2, "两": 2, "兩": 2,
    "三": 3, "叁": 3, "參": 3, "叄": 3,
    "四": 4, "肆": 4,
    "五": 5, "伍": 5,
    "六": 6, "陆": 6, "陸": 6,
    "七": 7, "柒": 7,
    "八": 8, "捌": 8,
    "九": 9, "玖": 9,
}
# Multipliers below 万 (financial forms 拾佰仟 included).
_CN_SMALL: dict[str, int] = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
# Section multipliers: 万 and 亿 (万亿 = 10^12 falls out of the algorithm).
_CN_BIG: dict[str, int] = {"万": 10**4, "萬": 10**4, "亿": 10**8, "億": 10**8}

_CN_NUM_CHARS = "".join(_CN_DIGITS) + "".join(_CN_SMALL) + "".join(_CN_BIG)
_CN_DECIMAL_RE = re.compile(
    "([%s\\d]+)[点點]([%s]+)" % ("".join(_CN_DIGITS) + "".join(_CN_SMALL), "".join(_CN_DIGITS))
)
_NUM_TOKEN_RE = re.compile(r"\d+(?:\.\d+)?|.", re.S)


def _cn_decimal(m: re.Match) -> str:
    whole = _parse_cn(m.group(1))
    if whole is None:
        return m.group(0)
    frac = "".join(str(_CN_DIGITS[c]) for c in m.group(2))
    return f"{whole}.{frac}"


def _cn_tokens(s: str) -> list[tuple[str, Decimal, bool]] | None:
    """``(kind, value, single digit)`` per token: num (1.5, 三), small (十百千), big (万亿); None when
    something else is in the way."""
    tokens: list[tuple[str, Decimal, bool]] = []
    for m in _NUM_TOKEN_RE.finditer(s):
        t = m.group(0)
        if t[0].isdigit():
            try:
                tokens.append(("num", Decimal(t), "." not in t and len(t) == 1))
            except InvalidOperation:
                return None
        elif t in _CN_DIGITS:
            tokens.append(("num", Decimal(_CN_DIGITS[t]), True))
        elif t in _CN_SMALL:
            tokens.append(("small", Decimal(_CN_SMALL[t]), False))
        elif t in _CN_BIG:
            tokens.append(("big", Decimal(_CN_BIG[t]), False))
        else:
            return None
    return tokens


def _parse_cn(s: str) -> Decimal | None:
    """Core of :func:`chinese_to_number` on a cleaned string; Decimal or None."""
    tokens = _cn_tokens(s)
    if not tokens:
        return None
    # A run of Chinese digits with a zero (二〇二一) is read digit by digit.
    if len(tokens) > 1 and all(k == "num" and one for k, _, one in tokens):
        if not any(c in "零〇○" for c in s):
            return None  # 三五 = "three or five", not 35
        return Decimal("".join(str(int(v)) for _, v, _ in tokens))

    total = Decimal(0)  # whole 亿 groups
    wan = Decimal(0)  # 万 part of the current 亿 group
    section = Decimal(0)  # below 万
    num: Decimal | None = None
    num_single = False
    prev: str | None = None
    prev_zero = False
    last_mult: Decimal | None = None  # multiplier of the unit just before `num`
    mult_before_num: Decimal | None = None
    seen_value = False
    for kind, v, single in tokens:
        if kind == "num":
            if prev == "num" and not prev_zero:
                return None
            prev_zero = v == 0 and single
            mult_before_num = None if prev == "num" else last_mult
            num, num_single = v, single
            seen_value = True
        elif kind == "small":
            if prev == "small":
                return None
            n = num if num is not None else Decimal(1)
            section += n * v
            num = None
            last_mult = v
            seen_value = True
            prev_zero = False
        else:  # big
            x = section + (num if num is not None else 0)
            bare = num is None and section == 0  # 万/亿 with no number before it
            if v == 10**4:
                if bare or wan != 0:
                    return None
                wan = x * v
            else:
                if bare and wan == 0 and total == 0:
                    return None
                total = (total + wan + x) * v
                wan = Decimal(0)
            section = Decimal(0)
            num = None
            last_mult = v
            prev_zero = False
        prev = kind
    if not seen_value:
        return None
    return total + wan + section + _last_number(num, num_single, mult_before_num)


def _last_number(num: Decimal | None, single: bool, mult_before: Decimal | None) -> Decimal:
    """The number that ends a Chinese numeral: 一千二 = 1200, 三万五 = 35000, 两亿五 = 2.5亿 (a lone
    digit right after a unit counts in the next lower unit)."""
    if num is None:
        return Decimal(0)
    if single and mult_before is not None and 0 < num < 10:
        return num * mult_before / 10
    return num


def chinese_to_number(s: str) -> float | None:
    """Read a Chinese, Arabic or mixed numeral: ``一千二百`` -> 1200.0,
    ``两亿`` -> 2e8, ``十二`` -> 12.0, ``4.5万`` -> 45000.0, ``1,234`` -> 1234.0,
    ``三点五`` -> 3.5, ``二〇二一`` -> 2021.0, ``千`` -> 1000.0.

    Returns None for anything else (``三五``, ``万``, text, empty).
    """
    d = _chinese_to_decimal(s)
    return float(d) if d is not None else None


def _chinese_to_decimal(s: str) -> Decimal | None:
    if not s:
        return None
    s = _strip_thousands(_nfkc(s).strip())
    neg = False
    if s and s[0] in "-负負":
        neg, s = True, s[1:]
    elif s[:1] == "+":
        s = s[1:]
    s = _CN_DECIMAL_RE.sub(_cn_decimal, s)
    if not s:
        return None
    v = _parse_cn(s)
    if v is None:
        return None
    return -v if neg else v


# =============================================================================
# Vocabularies for values
# =============================================================================

# Currency words after the number: word -> (ISO code, factor to one unit).
# 美仙/港仙 are cents (8美仙 = 0.08 USD); 角 is a tenth of a yuan.  分 is
# left out on purpose: "3分" is far more often a score than 3 fen.
_CURRENCY_SUFFIXES: dict[str, tuple[str, Decimal]] = {
    "美元": ("USD", Decimal(1)), "美金": ("USD", Decimal(1)),
    "美仙": ("USD", Decimal("0.01")), "美分": ("USD", Decimal("0.01")),
    "港元": ("HKD", Decimal(1)), "港币": ("HKD", Decimal(1)), "港幣": ("HKD", Decimal(1)),
    "港圆": ("HKD", Decimal(1)), "港圓": ("HKD", Decimal(1)), "港仙": ("HKD", Decimal("0.01")),
    # Hong Kong results quote per-share figures in 仙 (cents); mainland ones in 人民币分.
    "仙": ("HKD", Decimal("0.01")), "人民币分": ("CNY", Decimal("0.01")), "人民幣分": ("CNY", Decimal("0.01")),
    "欧元": ("EUR", Decimal(1)), "歐元": ("EUR", Decimal(1)),
    "日元": ("JPY", Decimal(1)), "日圆": ("JPY", Decimal(1)), "日圓": ("JPY", Decimal(1)),
    "英镑": ("GBP", Decimal(1)), "英鎊": ("GBP", Decimal(1)),
    "人民币": ("CNY", Decimal(1)), "人民幣": ("CNY", Decimal(1)),
    "元": ("CNY", Decimal(1)), "圆": ("CNY", Decimal(1)), "圓": ("CNY", Decimal(1)),
    "块": ("CNY", Decimal(1)), "塊": ("CNY", Decimal(1)), "角": ("CNY", Decimal("0.1")),
    "usd": ("USD", Decimal(1)), "hkd": ("HKD", Decimal(1)),
    "rmb": ("CNY", Decimal(1)), "cny": ("CNY", Decimal(1)), "yuan": ("CNY", Decimal(1)),
    "dollars": ("USD", Decimal(1)),
}
# Currency signs and codes before the number (US$ and HK$ before plain $).
_CURRENCY_PREFIXES: dict[str, str] = {
    "us$": "USD", "usd": "USD", "hk$": "HKD", "hkd": "HKD", "rmb": "CNY", "cny": "CNY",
    "¥": "CNY", "$": "USD", "人民币": "CNY", "人民幣": "CNY",
}
# Relative units: word -> (unit, factor).  ‰ is turned into percent.
_RATE_SUFFIXES: dict[str, tuple[str, Decimal]] = {
    "%": ("%", Decimal(1)), "‰": ("%", Decimal("0.1")),
    "percent": ("%", Decimal(1)), "percentage": ("%", Decimal(1)), "per cent": ("%", Decimal(1)),
    # percentage points: the Chinese word and the sell-side shorthands
    "个百分点": ("pp", Decimal(1)), "個百分點": ("pp", Decimal(1)),
    "百分点": ("pp", Decimal(1)), "百分點": ("pp", Decimal(1)),
    "percentagepoints": ("pp", Decimal(1)), "percentagepoint": ("pp", Decimal(1)),
    "pcts": ("pp", Decimal(1)), "pct": ("pp", Decimal(1)), "ppts": ("pp", Decimal(1)),
    "ppt": ("pp", Decimal(1)), "pp": ("pp", Decimal(1)), "个pct": ("pp", Decimal(1)),
    # basis points
    "个基点": ("bp", Decimal(1)), "個基點": ("bp", Decimal(1)),
    "基点": ("bp", Decimal(1)), "基點": ("bp", Decimal(1)),
    "basispoints": ("bp", Decimal(1)), "basispoint": ("bp", Decimal(1)),
    "bps": ("bp", Decimal(1)), "bp": ("bp", Decimal(1)),
    # multiples: "x" as unit (25倍 -> 25.0 x)
    "倍": ("x", Decimal(1)), "times": ("x", Decimal(1)), "x": ("x", Decimal(1)),
}
# Measure words of counts; the unit is the word as written.  Time words are
# deliberately absent (see _TIME_WORDS): 12个月 is a duration, not a count.
_MEASURE_WORDS: tuple[str, ...] = (
    "人次", "人", "名", "位", "户", "戶", "家", "笔", "筆", "件", "条", "條", "股",
    "个", "個", "项", "項", "款", "台", "只", "隻", "张", "張", "单", "單", "份",
    "支", "座", "间", "間", "所", "辆", "輛", "套", "次", "篇", "场", "場", "例",
    "枚", "部", "架", "艘", "栋", "棟", "頁", "页", "万人", "多人",
)
# Suffixes that make a number a date, duration, ordinal, cohort or category:
# never a VALUE (guide: "Not VALUEs: dates, ordinals, rankings, categories,
# cohorts, codes, plan durations").
_TIME_WORDS: tuple[str, ...] = (
    "个月", "個月", "年度", "财年", "財年", "季度", "小时", "小時", "分钟", "分鐘",
    "年", "月", "日", "天", "周", "週", "秒", "季", "岁", "歲", "后", "後", "号", "號",
    "期", "届", "屆", "代", "类", "類", "级", "級", "强", "強", "大", "线", "線",
    "days", "day", "months", "month", "years", "year", "weeks", "week", "hours",
)
# Scale words after an Arabic number that the Chinese-numeral reader does
# not know: English words and web shorthand (4w = 4万, 10k = 10千).
_LATIN_SCALES: dict[str, Decimal] = {
    "trillion": Decimal(10) ** 12, "tn": Decimal(10) ** 12,
    "billion": Decimal(10) ** 9, "bn": Decimal(10) ** 9, "bln": Decimal(10) ** 9,
    "million": Decimal(10) ** 6, "mn": Decimal(10) ** 6, "mln": Decimal(10) ** 6,
    "thousand": Decimal(10) ** 3, "k": Decimal(10) ** 3,
    "w": Decimal(10) ** 4,
}
# One-letter m/b only next to a currency (US$5.8m, $1.2b): alone they could
# be metres or anything else.
_LATIN_SCALES_WITH_CURRENCY: dict[str, Decimal] = {"m": Decimal(10) ** 6, "b": Decimal(10) ** 9}

# Hedges the guide keeps outside the span; tolerated inside (model output)
# and stripped.  The flag says whether they make the value approximate:
# 达/高达/仅 state an exact figure, the others a bound or a rounding.
_LEADING_HEDGES: dict[str, bool] = {
    "大约": True, "约合": True, "约为": True, "约": True, "約": True,
    "将近": True, "接近": True, "近": True,
    "超过": True, "超過": True, "超出": True, "超": True, "逾": True,
    "不到": True, "不足": True, "低于": True, "低於": True, "少于": True, "高于": True,
    "小于": True, "小於": True, "大于": True, "大於": True, "高於": True,
    "突破": True, "多于": True, "至少": True, "最少": True, "最多": True, "上看": True,
    "高达": False, "高達": False, "达到": False, "達到": False, "达": False, "達": False,
    "仅": False, "僅": False, "只有": False,
}
# Approximation cues right before a value (after dropping fillers such as
# 为/了/人民币).  Same words as above, plus English.
_APPROX_BEFORE: tuple[str, ...] = tuple(k for k, v in _LEADING_HEDGES.items() if v) + (
    "左右的", "大概", "差不多", "估计",
)
_APPROX_BEFORE_EN: tuple[str, ...] = (
    "approximately", "approx.", "approx", "about", "around", "nearly", "almost",
    "roughly", "over", "more than", "less than", "close to", "up to", "at least",
    "above", "below", "under", "exceeding",
)
# Approximation cues right after a value.
_APPROX_AFTER: tuple[str, ...] = (
    "左右", "上下", "以上", "以下", "以内", "以內", "有余", "有餘", "出头", "開外",
    "开外", "大关", "大關", "余", "餘", "多",
)
# ... but not these words that merely start with 多/余.
_APPROX_AFTER_NOT: tuple[str, ...] = ("多元", "多样", "多種", "多种", "多项", "多項", "多个", "多個", "多家", "余额", "餘額")
_APPROX_AFTER_EN: tuple[str, ...] = ("or so", "or more", "plus", "-plus")
# Each compiled once: "any word ends the text" / "any word starts it" as one alternation.
_APPROX_BEFORE_EN_RE = re.compile(r"\b(?:" + "|".join(map(re.escape, _APPROX_BEFORE_EN)) + r")$")
_APPROX_AFTER_EN_RE = re.compile(r"(?:" + "|".join(map(re.escape, _APPROX_AFTER_EN)) + r")\b")
# Words between a hedge and the value that do not break the link (约为, 超过了,
# 约人民币 ...).
_FILLERS_BEFORE: tuple[str, ...] = ("人民币", "人民幣", "为", "為", "了", "是", "在", "有", "rmb", "us$", "hk$", "$", "¥")

# Counted things: a bare number whose nearest metric word in the clause is
# one of these gets unit "count"; a money word nearer to it wins.
_COUNT_CUES: tuple[str, ...] = (
    "用户", "用戶", "客户", "客戶", "借款人", "人数", "人數", "数量", "數量", "户数",
    "家数", "员工", "員工", "消费者", "消費者", "投诉", "投訴", "专利", "專利", "粉丝",
    "会员", "會員", "合作伙伴", "合作夥伴", "机构", "機構", "商户", "商戶", "订单", "訂單",
    "笔数", "筆數", "次数", "下载", "下載", "门店", "門店", "股数", "股份",
    "DAU", "MAU", "月活", "日活",
    "users", "customers", "borrowers", "partners", "employees", "merchants", "institutions",
)
_MONEY_CUES: tuple[str, ...] = (
    "金额", "金額", "收入", "营收", "營收", "利润", "利潤", "净利", "淨利", "余额", "餘額",
    "规模", "規模", "借款额", "交易额", "交易額", "贷款", "貸款", "成本", "费用", "費用",
    "资产", "資產", "现金", "現金", "市值", "资金", "資金", "支出", "投入", "价", "價",
    "股息", "股利", "融资", "融資", "募资", "所得款项", "所得款項", "营业额", "營業額",
    "交易量", "撮合", "交易", "借款额", "借款額", "放款", "信贷", "信貸",
    "revenue", "income", "profit", "loans", "balance", "gmv", "cost", "expenses", "cash",
)

# =============================================================================
# Sign and basis cues
# =============================================================================

# Cue -> sign.  The cue nearest to the value (greatest end, then longest)
# decides; 0 means "neutral": the word looks like a cue but is not one (a
# loss metric named as such, impairments, liabilities).
_SIGN_CUES: dict[str, int] = {
    # decline
    "下降": -1, "下滑": -1, "下跌": -1, "跌": -1, "减少": -1, "減少": -1, "降低": -1,
    "降": -1, "回落": -1, "收窄": -1, "缩减": -1, "縮減": -1, "缩小": -1, "縮小": -1,
    "萎缩": -1, "萎縮": -1, "减": -1, "下调": -1, "下調": -1, "跌幅": -1, "降幅": -1,
    "减幅": -1, "减少了": -1, "负增长": -1, "負增長": -1, "下挫": -1, "下行": -1,
    "季减": -1, "年减": -1, "同比减": -1, "同减": -1, "同降": -1, "同跌": -1,
    # a loss reported under a profit metric (净利润亏损8.3亿元)
    "亏损": -1, "虧損": -1, "转亏": -1, "轉虧": -1, "亏": 0, "虧": 0,
    # increase: resets an earlier decline cue in the same window
    "增长": 1, "增長": 1, "成长": 1, "成長": 1, "增加": 1, "上升": 1, "上涨": 1, "上漲": 1,
    "涨": 1, "漲": 1, "提升": 1, "提高": 1, "增": 1, "升": 1, "扩大": 1, "擴大": 1,
    "攀升": 1, "回升": 1, "翻": 1, "扭亏": 1, "扭虧": 1, "扭亏为盈": 1, "盈利": 1,
    "同增": 1, "年增": 1, "季增": 1,
    # neutral: loss metrics named as such, and words that merely contain a cue
    "净亏损": 0, "淨虧損": 0, "净亏": 0, "淨虧": 0, "经营亏损": 0, "經營虧損": 0,
    "运营亏损": 0, "營運虧損": 0, "营业亏损": 0, "營業虧損": 0, "税前亏损": 0,
    "亏损额": 0, "虧損額": 0, "亏损总额": 0, "亏损率": 0, "盈亏": 0, "盈虧": 0,
    "减值": 0, "減值": 0, "减免": 0, "減免": 0, "负债": 0, "負債": 0, "增值": 0,
    "涨跌": 0, "漲跌": 0, "改善": 0, "持平": 0, "降费": 0, "降准": 0, "降準": 0,
}
_SIGN_CUES_EN: dict[str, int] = {
    "decreased": -1, "decrease": -1, "decreasing": -1, "declined": -1, "decline": -1,
    "down": -1, "fell": -1, "dropped": -1, "drop": -1, "lower": -1, "reduced": -1,
    "reduction": -1, "narrowed": -1, "shrank": -1, "contracted": -1,
    "increased": 1, "increase": 1, "up": 1, "grew": 1, "growth": 1, "rose": 1,
    "higher": 1, "expanded": 1, "growing": 1, "increasing": 1, "rising": 1, "raised": 1,
    "improved": 0, "net loss": 0, "loss": 0,
}
# Direction words right after a value ("a 57% increase", "收入57%的成长"):
# they beat any cue before it.
_SIGN_AFTER_RE: list[tuple[re.Pattern, int]] = [
    (re.compile(r"^\s*(?:increase|growth|rise|jump|gain)s?\b", re.I), 1),
    (re.compile(r"^\s*(?:decrease|decline|drop|fall|reduction)s?\b", re.I), -1),
    # Chinese only with 的 (57%的成长); 86.9%下降到63.8% starts a level.
    (re.compile(r"^的(?:增长|增幅|成长|提升|上升|涨幅)"), 1),
    (re.compile(r"^的(?:下降|降幅|下滑|跌幅|减少|减幅)"), -1),
]
# A decline cue directly followed by one of these introduces the new level
# (下降至40.24亿元), not the change.
_LEVEL_MARKER_RE = re.compile(r"^(?:至|到|为|為|to\b)")
# Separators of a list of values that share one cue (分别下降2.0%、2.2%及1.7%).
_LIST_SEPARATORS_RE = re.compile(
    r"^(?:[\s、,，及和与與或/]|\bor\b|\band\b)*(?:人民币|人民幣|rmb|us\$|hk\$)?(?:[\s、,，及和与與或/]|\bor\b|\band\b)*$", re.I
)

# Comparison bases.  Order does not matter: the match nearest to the value
# wins (greatest end, then longest).  None entries are explicit neutrals
# that shadow a shorter cue: 较上年末 compares balances with the last year-end
# (year-to-date, neither yoy nor qoq); 占同期 names a period, not a basis.
_BASIS_PATTERNS: list[tuple[re.Pattern, Basis | None]] = [
    (re.compile(p, re.I), b)
    for p, b in [
        (r"同比", "yoy"), (r"按年", "yoy"), (r"年增", "yoy"), (r"年减", "yoy"), (r"同增", "yoy"),
        (r"同减", "yoy"), (r"同降", "yoy"),
        (r"(?:较|比|相比|相较|对比|与|同)(?:于)?(?:上年|去年|上一年|前一年|上年度|上一年度)(?:同期)?", "yoy"),
        (r"(?:去年|上年|上一年|上年度)同期", "yoy"),
        (r"(?:19|20)\d{2}年(?:度)?同期", "yoy"),
        (r"(?:较|比|相比|相较|对比|与)(?:于)?(?:19|20)\d{2}年(?:度)?(?![末底初第一二三四1-4上下前Q季])", "yoy"),
        (r"(?:较|比)同期", "yoy"),
        (r"环比", "qoq"), (r"按季", "qoq"), (r"季增", "qoq"), (r"季减", "qoq"),
        (r"(?:较|比|相比|相较|对比|与|从|由)?(?:上一?个?季度?|前一季度?)", "qoq"),
        (r"(?:较|比|相比|相较|对比|与|从|由)(?:于)?(?:第?[一二三四1-4]季度?|Q[1-4])", "qoq"),
        # neutral shadows
        (r"(?:较|比|相比|相较|与)(?:于)?(?:上年|去年|上一年|19\d{2}年|20\d{2}年)(?:年)?(?:末|底|初)", None),
        (r"(?:较|比|相比|相较|与)(?:于)?年(?:初|末|底)", None),
        (r"(?:较|比|相比|相较|与)(?:于)?上(?:个)?月", None),
        (r"占同期", None),
        # compound annual growth rates are not year-on-year changes
        (r"复合年(?:均)?增长率|年复合增长率|年均复合增长率|\bCAGR\b", None),
        # English
        (r"year[\s-]*(?:over|on)[\s-]*year|\byoy\b|\by-o-y\b|from a year (?:ago|earlier)|"
         r"(?:same|corresponding) (?:period|quarter) (?:of |in )?(?:last|the previous|the prior) year|"
         r"(?:compared|relative) (?:to|with) (?:the )?(?:last|previous|prior) year", "yoy"),
        (r"quarter[\s-]*(?:over|on)[\s-]*quarter|\bqoq\b|\bq-o-q\b|sequential(?:ly)?|"
         r"(?:previous|prior|last|preceding) quarter|"
         r"(?:than|to|with|from|over) (?:the )?(?:first|second|third|fourth) quarter", "qoq"),
    ]
]
# English bases usually follow the value ("grew 5% year over year").
_BASIS_AFTER_EN = [(p, b) for p, b in _BASIS_PATTERNS if p.pattern.startswith(("year", "quarter"))]

# Guidance: forecasts, targets, outlooks.  The exceptions are comparisons
# with expectations (符合预期, 超预期, "as expected") that report actuals.
_GUIDANCE_CUES: tuple[str, ...] = (
    "预计", "預計", "预期", "預期", "目标", "目標", "指引", "展望", "预测", "預測",
    "有望", "预估", "預估", "guidance", "outlook", "expect", "forecast", "target",
    "anticipate", "projected",
)
_GUIDANCE_NOT: tuple[str, ...] = (
    "符合预期", "符合預期", "超预期", "超預期", "超出预期", "超出預期", "不及预期", "不及預期",
    "低于预期", "低於預期", "高于预期", "高於預期", "好于预期", "好於預期", "预期范围", "預期範圍",
    "预期之内", "預期之內", "市场预期", "市場預期", "我们的预期", "我們的預期", "前瞻性",
    "胜预期", "勝預期", "逊预期", "遜預期", "优于预期", "優於預期", "差于预期", "差於預期", "弱于预期", "弱於預期",
    "as expected", "than expected", "in line with expectations", "forward-looking", "projection",
    "projects", "targeted",
)

_GUIDANCE_NOT_LOWER = tuple(w.lower() for w in _GUIDANCE_NOT)


@functools.lru_cache(maxsize=4096)
def is_guidance(sentence: str) -> bool:
    """True if the sentence states a forecast, target or guidance (预计, 预期,
    目标, 指引, 展望, guidance, expect ...), not a comparison with
    expectations (符合预期, 超预期, as expected) or a safe-harbour phrase."""
    s = _nfkc(sentence).lower()
    for w in _GUIDANCE_NOT_LOWER:
        s = s.replace(w, " ")
    # analysts' estimate years: 2025E, 2024-2027E
    return any(c in s for c in _GUIDANCE_CUES) or bool(re.search(r"(?:19|20)\d{2}\s*e(?![a-z])", s))


def _last_cue(text: str, cues: dict[str, int], english: bool = False) -> tuple[int, int, str] | None:
    """(end, length, cue) of the cue nearest to the end of ``text`` (the longest, of those ending there)."""
    best: tuple[int, int, str] | None = None
    for m in _cues_re(tuple(cues), english).finditer(text):
        cue = m.group(1)
        key = (m.start() + len(cue), len(cue), cue)
        if best is None or key[:2] > best[:2]:
            best = key
    return best


@functools.lru_cache(maxsize=64)
def _cues_re(cues: tuple[str, ...], english: bool) -> re.Pattern:
    """Every position where a cue starts, with the longest cue starting there (a lookahead, so that
    overlapping cues are all seen): the latest-ending cue is always among these."""
    alternatives = "|".join(re.escape(c) for c in sorted(cues, key=len, reverse=True))
    return re.compile(rf"(?=\b({alternatives})\b)" if english else f"(?=({alternatives}))")


_VALUE_TOKEN_RE = re.compile(
    r"\d[\d,.]*\s*(?:%|‰|个?百分点|個?百分點|个?基点|個?基點|bps?|pct|倍|[万亿億萬千]|元|美元|港元|家|人|名|户|笔|個|个|"
    r"\s*(?:million|billion|mn|bn|percent))"
    r"|[一二两三四五六七八九十]+成(?!长|長|本|交|立|为|為|功)",
    re.I,
)


def _sign_window(context_before: str) -> tuple[str, str | None]:
    """The text between the previous value (or the clause start) and the
    value; also the clause before that previous value, if the window is only
    a list separator (the cue before the first of a list applies to all)."""
    clause = _clause_before(context_before)
    last = None
    for m in _VALUE_TOKEN_RE.finditer(clause):
        last = m
    if last is None:
        return clause, None
    window = clause[last.end():]
    if _LIST_SEPARATORS_RE.match(window):
        return window, clause[: last.start()]
    return window, None




# Words that name a profit; 亏损 right after one of them (净利润亏损8.3亿元,
# 净利润为亏损) is the sign of that profit.  Without one, 亏损 is itself the
# metric (亏损则为10.45亿元, 累计亏损达27.63亿元) and the value stays positive.
_PROFIT_WORDS_RE = re.compile(
    r"(?:利润|净利|盈利|收益|溢利|利润总额|ebit|ebitda|业绩)(?:为|了|录得|出现|实现|呈现|转为|则为)?$", re.I
)


def _sign_of_window(window: str) -> int | None:
    """Sign from the nearest cue in ``window``: -1, +1, or None (no cue)."""
    w = _simp(window)
    cn = _last_cue(w, _SIGN_CUES)
    en = _last_cue(w.lower(), _SIGN_CUES_EN, english=True)
    cands = [c for c in (cn, en) if c is not None]
    if not cands:
        return None
    end, length, cue = max(cands, key=lambda c: (c[0], c[1]))
    value = _SIGN_CUES.get(cue, _SIGN_CUES_EN.get(cue, 0))
    if value == 0:
        return 1
    if cue in ("亏损", "虧損"):
        return -1 if _PROFIT_WORDS_RE.search(w[: end - length]) else 1
    if value < 0:
        after = w[end:].strip().lower()
        after = re.sub(r"^了", "", after)
        if cue not in ("转亏", "轉虧") and _LEVEL_MARKER_RE.match(after):
            return 1  # 下降至 X: X is the new level
    return value


def find_sign(context_before: str) -> int:
    """Sign of a value from the words before it in its clause: -1 after a
    decline cue (下降, 减少, 下滑, 跌, 收窄, 亏损 ...), else +1.

    Only the text after the previous value in the clause counts (so
    ``下降30.4%至40.24亿元`` gives 40.24亿元 no sign), except that a value
    that follows another one with just a list separator (、, 及, 或) shares
    its cue.  A decline cue followed by 至/到/为 announces a level: +1.
    ``净亏损`` and the like are metrics, not cues.
    """
    window, list_head = _sign_window(context_before)
    s = _sign_of_window(window)
    if s is None and list_head is not None:
        return find_sign(list_head)
    return s if s is not None else 1


def find_basis(context_before: str) -> Basis | None:
    """Comparison basis from the clause before a value: ``yoy`` (同比, 按年,
    较上年, 较去年同期, 较2021年, year-over-year ...), ``qoq`` (环比, 按季,
    较上季度, sequentially ...) or None.  The cue nearest to the value wins;
    较上年末 / 较年初 (year-to-date) give None."""
    clause = _simp(_clause_before(context_before))
    best: tuple[int, int, Basis | None] | None = None
    for pat, b in _BASIS_PATTERNS:
        for m in pat.finditer(clause):
            key = (m.end(), m.end() - m.start(), b)
            if best is None or key[:2] > best[:2]:
                best = key
    return best[2] if best else None


def find_approx(context_before: str, context_after: str = "") -> bool:
    """True if a hedge stands right before (约, 近, 超过, 逾, 不到, 低于,
    approximately ...) or right after (左右, 以上, 余, 多, 上下 ...) a value.
    达/高达 are not hedges."""
    low = _nfkc(context_before).rstrip().lower()
    changed = True
    while changed:  # drop fillers between hedge and value (约为, 约人民币)
        changed = False
        for f in _FILLERS_BEFORE:
            if low.endswith(f) and len(low) > len(f):
                low = low[: -len(f)].rstrip()
                changed = True
    if low.endswith(_APPROX_BEFORE):
        return True
    if re.search(r"(?:year|quarter)[\s-]+over$", low):
        return False  # "year over year", not "over 5%"
    if _APPROX_BEFORE_EN_RE.search(low):
        return True
    after = _nfkc(context_after).lstrip()
    if after.startswith(_APPROX_AFTER) and not after.startswith(_APPROX_AFTER_NOT):
        return True
    low_after = after.lower()
    return bool(_APPROX_AFTER_EN_RE.match(low_after))


# =============================================================================
# parse_value
# =============================================================================


@dataclass
class _Single:
    """One number of a span, before sign and context."""

    core: Decimal  # the numeral read
    mult: Decimal  # latin scale x currency sub-unit factor x rate factor
    unit: str | None
    has_scale: bool  # 万/亿/million ... present
    scale: Decimal  # the scale alone (for range inheritance)
    factor: Decimal  # unit factor alone (美仙 = 0.01)
    approx: bool
    neg: bool


class _Unparsed(Exception):
    pass


_DATE_RE = re.compile(
    r"^\d{4}[-/.]\d{1,2}(?:[-/.]\d{1,2})?$|\d+\s*[年月日号號](?![元圆圓])|^[QH][1-4]$|^FY\d", re.I
)
_TICKER_AFTER_RE = re.compile(r"^\.(?:HK|SH|SZ|US|N|O|SS|BJ)\b", re.I)
_TICKER_BEFORE = ("代号为", "代號為", "代码", "代碼", "股份代号", "股份代號", "NASDAQ:", "NYSE:", "HKEX:")
_VAGUE_WORDS = ("数", "數", "几", "幾", "若干", "上百", "上千", "上万", "上萬", "好几", "成百", "成千", "半")
_LIST_IN_SPAN_RE = re.compile(r"[、及和与與/]|,(?!\d{3}(?!\d))|，")
_SCALE_SUFFIX_RE = re.compile(r"(?<=[\d.])(万亿|萬億|千亿|千億|百亿|百億|十亿|十億|亿|億|千万|千萬|百万|百萬|十万|十萬|万|萬|千|百)$")
_PLAIN_ARABIC_RE = re.compile(r"^\d+(?:\.\d+)?$")


def _strip_suffix(s: str, table) -> tuple[str, str | None]:
    low = s.lower()
    for key, key_low in _longest_first(tuple(table)):
        if low.endswith(key_low) and len(s) > len(key):
            return s[: -len(key)], key
    return s, None


@functools.lru_cache(maxsize=32)
def _longest_first(keys: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """A suffix table's keys, longest first, each with its lower case (computed once per table)."""
    return tuple((k, k.lower()) for k in sorted(keys, key=len, reverse=True))


def _parse_single(raw: str) -> _Single:
    """One number with its unit and scale: suffixes (rate, currency, measure word), a Latin scale
    (1.2bn), prefixes (sign, US$), then the number itself (Arabic, Chinese, 1000多亿)."""
    approx = raw.endswith("+")
    s, unit, factor, from_suffix, approx_suffix = _unit_suffix(raw[:-1] if approx else raw)
    approx = approx or approx_suffix
    if s.endswith(("多", "余", "餘")):
        approx, s = True, s[:-1]
    s, scale, has_scale = _latin_scale(s)
    if s.endswith(("多", "余", "餘", "+")):
        approx, s = True, s[:-1]
    s, neg, unit, scale, has_scale = _prefixes(s, unit, from_suffix, scale, has_scale)
    if not s:
        raise _Unparsed("no number")
    if any(w in s for w in _VAGUE_WORDS):
        raise _Unparsed("vague quantity")
    core, approx_inner, scaled = _core_number(s)
    approx, has_scale = approx or approx_inner, has_scale or scaled
    if unit is None and not has_scale and re.fullmatch(r"(?:19|20)\d{2}", s):
        raise _Unparsed("looks like a year")
    sm = _SCALE_SUFFIX_RE.search(s)
    own_scale = scale
    if sm and _PLAIN_ARABIC_RE.match(s[: sm.start()]):
        own_scale = scale * Decimal(str(chinese_to_number("1" + sm.group(1))))
    return _Single(
        core=core, mult=scale * factor, unit=unit, has_scale=has_scale, scale=own_scale,
        factor=factor, approx=approx, neg=neg,
    )


def _unit_suffix(s: str) -> tuple[str, str | None, Decimal, bool, bool]:
    """``(rest, unit, factor, unit is a currency word, approx)`` of a trailing rate (%), currency
    (亿元, 港仙) or measure word (家, 万人, 多人); a trailing time word is no value."""
    for tail in ("人民币", "人民幣"):  # a trailing 人民币 after another currency word (亿元人民币)
        if s.endswith(tail) and s[: -len(tail)].endswith(("元", "圆", "圓")):
            s = s[: -len(tail)]
    rest, key = _strip_suffix(s, _RATE_SUFFIXES)
    if key is not None:
        return rest, *_RATE_SUFFIXES[key], False, False
    rest, key = _strip_suffix(s, _CURRENCY_SUFFIXES)
    if key is not None:
        return rest, *_CURRENCY_SUFFIXES[key], True, False
    rest, key = _strip_suffix(s, {w: None for w in _MEASURE_WORDS})
    if key == "万人":
        return rest + "万", "人", Decimal(1), False, False
    if key == "多人":
        return rest, "人", Decimal(1), False, True
    if key is not None:
        return rest, key, Decimal(1), False, False
    _, tkey = _strip_suffix(s, {w: None for w in _TIME_WORDS})
    if tkey is not None:
        raise _Unparsed(f"date, duration or category ({tkey})")
    return s, None, Decimal(1), False, False


def _latin_scale(s: str) -> tuple[str, Decimal, bool]:
    """``(rest, scale, has_scale)`` of a trailing Latin scale word (1.2bn, 300 million)."""
    s_low = s.lower()
    for key in sorted(_LATIN_SCALES, key=len, reverse=True):
        if s_low.endswith(key) and len(s) > len(key) and (s[-len(key) - 1].isdigit() or s[-len(key) - 1] in "多余+ "):
            return s[: -len(key)], _LATIN_SCALES[key], True
    return s, Decimal(1), False


def _prefixes(s: str, unit: str | None, from_suffix: bool, scale: Decimal, has_scale: bool):
    """``(rest, negative, unit, scale, has_scale)`` after a leading sign and currency (-US$1.2m)."""
    neg = False
    if s and s[0] in "+-":
        neg, s = s[0] == "-", s[1:]
    prefix_currency = None
    low = s.lower()
    for key in sorted(_CURRENCY_PREFIXES, key=len, reverse=True):
        if low.startswith(key):
            prefix_currency, s = _CURRENCY_PREFIXES[key], s[len(key):]
            break
    if s and s[0] in "+-" and not neg:
        neg, s = s[0] == "-", s[1:]
    if prefix_currency:
        if unit is None:
            unit = prefix_currency
        elif not from_suffix or unit != prefix_currency:
            raise _Unparsed("conflicting units")
        if not has_scale:
            s_low = s.lower()
            for key, v in _LATIN_SCALES_WITH_CURRENCY.items():
                if s_low.endswith(key) and len(s) > 1 and s[-2].isdigit():
                    scale, has_scale, s = v, True, s[:-1]
                    break
    return s, neg, unit, scale, has_scale


def _core_number(s: str) -> tuple[Decimal, bool, bool]:
    """``(number, approx, has_scale)`` of the number left: Arabic or Chinese, with an inner 多/余
    (1000多亿, 十余万) making it approximate."""
    m = re.match(r"^(.+?)[多余餘](.*)$", s)
    if m:
        left, right = _chinese_to_decimal(m.group(1)), m.group(2)
        if left is None:
            raise _Unparsed("not a number")
        if not right:
            return left, True, False
        r = _chinese_to_decimal("1" + right)
        if r is None or not re.fullmatch(r"[十百千万萬亿億]+", right):
            raise _Unparsed("not a number")
        return left * r, True, True
    if not re.fullmatch(r"[\d.点點%s]+" % _CN_NUM_CHARS, s):
        raise _Unparsed("not a number")
    core = _chinese_to_decimal(s)
    if core is None:
        raise _Unparsed("not a number")
    return core, False, bool(re.search(r"[万萬亿億]", s) or _SCALE_SUFFIX_RE.search(s))


def _value_of(x: _Single) -> Decimal:
    v = x.core * x.mult
    return -v if x.neg else v


def _to_float(d: Decimal) -> float:
    return float(d)


_PROPORTION_CHENG_RE = re.compile(r"^([\d.一二两兩三四五六七八九十]+)成([一二三四五六七八九\d半])?$")
_PROPORTION_FRAC_RE = re.compile(r"^(.+?)分之(.+)$")
_RANGE_WORD_SEP_RE = re.compile(r"(?<=.)(?:至|到|~|〜|—|–|－)(?=.)")


def _split_range(s: str) -> tuple[str, str] | None:
    m = _RANGE_WORD_SEP_RE.search(s)
    if m:
        return s[: m.start()], s[m.end():]
    # a hyphen between two numbers (15%-20%, 10-20%), not a leading sign
    for i in range(1, len(s) - 1):
        if s[i] == "-" and s[i - 1] not in "+-" and (s[i + 1].isdigit() or s[i + 1] in "+-.$¥" or s[i + 1] in _CN_NUM_CHARS or s[i + 1:].lower().startswith(("us$", "hk$", "rmb"))):
            return s[:i], s[i + 1:]
    return None


def _unparsed(text: str, reason: str) -> ParsedValue:
    return ParsedValue(text=text, number=None, status="unparsed", reason=reason)


def _leading_hedge(s: str) -> tuple[str, bool | None]:
    for key in sorted(_LEADING_HEDGES, key=len, reverse=True):
        if s.startswith(key) and len(s) > len(key):
            return s[len(key):], _LEADING_HEDGES[key]
    return s, None


def _context_currency(before: str, after: str) -> str | None:
    """人民币/RMB/US$ left outside the span (guide: 人民币 is outside)."""
    b = _nfkc(before).rstrip().lower()
    for key in sorted(_CURRENCY_PREFIXES, key=len, reverse=True):
        if b.endswith(key):
            return _CURRENCY_PREFIXES[key]
    a = _nfkc(after).lstrip()
    if a.startswith(("人民币", "人民幣")):
        return "CNY"
    return None


def is_money_metric(metric: str) -> bool:
    """The metric measures money (营收, 亏损, 资产规模): a bare 11亿 of it is yuan."""
    m = _simp(metric).lower()
    return _first_cue(m, _MONEY_CUES + ("亏损", "盈利", "溢利", "收益", "保费", "净亏", "净赚")) is not None \
        and _first_cue(m, _COUNT_CUES) is None


_LIST_TAIL_RE = re.compile(r"(?:\s*(?:、|，|,|/|和|及|与|與)\s*[+-]?\d[\d,.]*)+\s*([^\s\d、，,/；;。]{1,4})")


def _list_shared_unit(s: str, after: str) -> tuple[Decimal, str] | None:
    """A bare number in a list whose last member carries the unit (70.5、90.9和101亿元):
    the number read with that unit and scale."""
    m = _LIST_TAIL_RE.match(after)
    if not m:
        return None
    suffix = m.group(1)
    for k in range(len(suffix), 0, -1):
        try:
            single = _parse_single(s + suffix[:k])
        except _Unparsed:
            continue
        if single.unit is not None:
            return _value_of(single), single.unit
    return None


def _count_unit(context_before: str, context_after: str = "") -> str | None:
    """``"count"`` for a bare number of people or things, else None.

    The noun right after the number decides first (4300万用户 -> count,
    1.13万亿撮合交易量 -> money); else the nearest metric word before it in
    the sentence (新增借款人数量...达到104万 -> count)."""
    after = _simp(context_after)
    m = re.search(r"[，,；;。！？!?\d]", after)
    head = after[: min(m.start() if m else len(after), 10)].lower()
    cnt = _first_cue(head, _COUNT_CUES)
    money = _first_cue(head, _MONEY_CUES)
    if cnt is not None or money is not None:
        if money is None or (cnt is not None and cnt < money):
            return "count"
        return None
    before = _simp(context_before).lower()
    cnt_b = _last_cue(before, {c.lower(): 1 for c in _COUNT_CUES})
    money_b = _last_cue(before, {c.lower(): 1 for c in _MONEY_CUES})
    if cnt_b and (money_b is None or cnt_b[:2] > money_b[:2]):
        return "count"
    return None


def _first_cue(text: str, cues) -> int | None:
    pos = [text.find(c.lower()) for c in cues if c.lower() in text]
    return min(pos) if pos else None


def parse_value(span: str, context: str = "", span_start: int | None = None) -> ParsedValue:
    """Normalise a VALUE span; see the module docstring for the conventions.

    ``context`` is the sentence containing the span and ``span_start`` its
    offset there (default: first occurrence).  Cues in the context set
    ``approx`` (约, 超过, 左右 ...), ``sign`` (下降, 亏损 ...) and ``basis``
    (同比, 环比 ...).
    """
    text = span
    before, after = _around(span, context, span_start)
    s = re.sub(r"\s+", "", _strip_thousands(_nfkc(span).strip()))
    if not s:
        return _unparsed(text, "empty")
    if not re.search(r"[\d%s]" % _CN_NUM_CHARS, s):
        return _unparsed(text, "no number")
    # per share (12美元/股): the currency is the unit, the share belongs to the metric
    s = re.sub(r"(?<=[元币幣仙分金])(?:/|每)股$", "", s)
    # leading hedges inside the span (the guide keeps them outside)
    s, hedge = _leading_hedge(s)
    refused = _not_a_value(s, before, after)
    if refused:
        return _unparsed(text, refused)
    try:
        value, unit, low, high, approx = _amount(s)
    except _Unparsed as e:
        return _unparsed(text, str(e))
    approx = approx or bool(hedge) or find_approx(before, after)
    # a bare $ on a Hong Kong quote (沽空 $1.04千萬 next to 01359.HK) is HK$
    if unit == "USD" and s.startswith("$") and re.search(r"\.HK|港股|港元|港幣|HK\$", _nfkc(context)):
        unit = "HKD"
    # context: a list's shared unit, currency left outside the span, count, sign, basis
    if unit is None and value is not None:
        value, unit = _list_shared_unit(s, _nfkc(after)) or (value, unit)
    if unit is None:
        unit = _context_currency(before, after) or _count_unit(before, after)
    value, low, high, sign = _signed(value, low, high, before, after)
    return ParsedValue(
        text=text, number=_float_or_none(value), low=_float_or_none(low), high=_float_or_none(high), unit=unit,
        approx=approx, sign=sign, basis=_basis(before, after), status="ok", reason=None,
    )


def _around(span: str, context: str, span_start: int | None) -> tuple[str, str]:
    """The context's text before and after the span (both empty when the span is not found there)."""
    if span_start is None:
        span_start = context.find(span) if span and context else -1
    if span_start is not None and span_start >= 0 and context[span_start: span_start + len(span)] == span:
        return context[:span_start], context[span_start + len(span):]
    return "", ""


def _not_a_value(s: str, before: str, after: str) -> str | None:
    """Why the span ``s`` (cleaned) is no value in its context (a date, a ticker, a duration ...); None if it is one."""
    if _DATE_RE.search(s):
        return "date or period"
    if s.startswith(("第", "前", "后", "後", "未来", "未來", "过去", "過去", "近", "No.", "#")):
        return "ordinal, ranking or duration"
    if _LIST_IN_SPAN_RE.search(s):
        return "list of values or cohort"
    if re.fullmatch(r"0\d+", s):
        return "code, ticker or section number"
    a_raw, b_raw = _nfkc(after), _nfkc(before)
    if re.match(r"[:：]\d", a_raw) or re.search(r"\d[:：]$", b_raw):
        return "time of day"
    if s[-1:].isascii() and s[-1:].isalpha() and a_raw[:1].isascii() and a_raw[:1].isalpha():
        return "span ends inside a word"
    if re.search(r"[个個]$", s) and a_raw.startswith(("月", "季度", "小时", "小時", "工作日", "交易日")):
        return "duration"
    if re.fullmatch(r"\d{3,6}", s):
        b = b_raw.rstrip()
        if _TICKER_AFTER_RE.match(a_raw) or b.endswith(_TICKER_BEFORE) or (
            b.endswith(("(", "（", "“", '"')) and a_raw[:1] != "" and a_raw[0] in ")）”\""
        ):
            return "code or ticker"
    if re.fullmatch(r"(?:19|20)\d{2}", s):
        return "looks like a year"
    if re.fullmatch(r"[\d.]+|[%s]+" % _CN_NUM_CHARS, s):
        a = _simp(after).lstrip()
        if a.startswith(tuple(w for w in _TIME_WORDS if not w.isascii())) or a.lower().startswith(("days", "months", "years", "weeks")):
            return "date, duration or category"
    return None


def _amount(s: str) -> tuple[Decimal | None, str | None, Decimal | None, Decimal | None, bool]:
    """``(value, unit, low, high, approx)`` of the span ``s``: a proportion (三成五, 三分之一, 一半), one
    number or a range; raises :class:`_Unparsed`."""
    if s in ("一半", "半数", "半數"):
        return Decimal(50), "%", None, None, False
    m = _PROPORTION_CHENG_RE.match(s)
    if m:  # 三成, 三成五
        tens = _chinese_to_decimal(m.group(1))
        ones = (Decimal(5) if m.group(2) == "半" else _chinese_to_decimal(m.group(2))) if m.group(2) else Decimal(0)
        if tens is None or ones is None:
            raise _Unparsed("not a number")
        return tens * 10 + ones, "%", None, None, False
    mf = _PROPORTION_FRAC_RE.match(s)
    if mf:  # 三分之一, 百分之二十
        den, num = _chinese_to_decimal(mf.group(1)), _chinese_to_decimal(mf.group(2))
        if den is None or num is None or den == 0:
            raise _Unparsed("not a number")
        return num / den * 100, "%", None, None, False
    parts = _split_range(s)
    if parts is None:
        single = _parse_single(s)
        return _value_of(single), single.unit, None, None, single.approx
    return _range(*(_parse_single(p) for p in parts))


def _range(left, right) -> tuple[None, str | None, Decimal, Decimal, bool]:
    """A range's ends, each taking the unit and scale the other states (1-2亿元)."""
    if left.unit is None and right.unit is not None:
        left.unit, left.factor = right.unit, right.factor
        left.mult = left.mult * right.factor
    if right.unit is None and left.unit is not None:
        right.unit, right.factor = left.unit, left.factor
        right.mult = right.mult * left.factor
    if not left.has_scale and right.has_scale:
        if right.scale == 1:
            raise _Unparsed("range with an unclear scale")
        left.mult = left.mult * right.scale
    if left.unit != right.unit:
        raise _Unparsed("range with different units")
    lo, hi = _value_of(left), _value_of(right)
    if lo > hi:
        raise _Unparsed("range low end above high end")
    return None, right.unit, lo, hi, left.approx or right.approx


def _signed(value, low, high, before: str, after: str):
    """``(value, low, high, sign)``: negative when the span or its context (下降, 亏损 ...) says so."""
    negative_in_span = (value is not None and value < 0) or (low is not None and high is not None and high < 0)
    after_sign = next((v for pat, v in _SIGN_AFTER_RE if pat.match(_simp(after))), None)
    context_sign = after_sign if after_sign is not None else find_sign(before)
    if negative_in_span or context_sign >= 0:
        return value, low, high, -1 if negative_in_span else 1
    if value is not None:
        value = -value
    if low is not None and high is not None:
        low, high = -high, -low
    return value, low, high, -1


def _basis(before: str, after: str) -> str | None:
    """同比 / 环比 ... before the value, else an English basis in its clause after it."""
    basis = find_basis(before)
    if basis is None:
        tail = _clause_after(_nfkc(after)).lower()
        basis = next((b for pat, b in _BASIS_AFTER_EN if b and pat.search(tail)), None)
    return basis


def _float_or_none(d: Decimal | None) -> float | None:
    return None if d is None else _to_float(d)


# =============================================================================
# parse_period
# =============================================================================


@dataclass(frozen=True)
class _P:
    """A resolved period: kind FY/Q/H/YTD (Q1-Qn)/M/D."""

    kind: str
    year: int
    n: int = 0  # quarter, half, last quarter of a YTD, month
    day: int = 0  # for D (with n = month)

    def norm(self) -> str:
        if self.kind == "FY":
            return f"{self.year}FY"
        if self.kind == "Q":
            return f"{self.year}Q{self.n}"
        if self.kind == "H":
            return f"{self.year}H{self.n}"
        if self.kind == "YTD":
            return f"{self.year}Q1-Q{self.n}"
        if self.kind == "M":
            return f"{self.year}-{self.n:02d}"
        return f"{self.year}-{self.n:02d}-{self.day:02d}"

    def end(self) -> date:
        y = self.year
        if self.kind == "FY":
            return date(y, 12, 31)
        if self.kind in ("Q", "YTD"):
            m = self.n * 3
        elif self.kind == "H":
            m = self.n * 6
        elif self.kind == "M":
            m = self.n
        else:
            return date(y, self.n, self.day)
        return date(y, m, calendar.monthrange(y, m)[1])

    def end_date(self) -> "_P":
        e = self.end()
        return _P("D", e.year, e.month, e.day)

    def with_year(self, year: int) -> "_P":
        day = self.day
        if self.kind == "D" and self.n == 2 and day == 29 and not calendar.isleap(year):
            day = 28
        return _P(self.kind, year, self.n, day)

    def quarter(self) -> int | None:
        if self.kind == "Q":
            return self.n
        if self.kind == "YTD":
            return self.n
        if self.kind in ("M", "D"):
            return (self.n - 1) // 3 + 1
        return None

    @property
    def kind_name(self) -> str:
        return {"FY": "year", "Q": "quarter", "H": "half", "YTD": "ytd", "M": "month", "D": "date"}[self.kind]



_NORMALIZED_RE = re.compile(
    r"^(?P<y>\d{4})(?:FY|(?:Q(?P<q>[1-4]))|(?:H(?P<h>[12]))|(?:Q1-Q(?P<ytd>[1-4]))|"
    r"-(?P<m>\d{2})(?:-(?P<d>\d{2}))?)$"
)

_CN_ORD = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_EN_ORD = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4}
_EN_MONTHS = {
    m.lower(): i for i, m in enumerate(calendar.month_name) if m
} | {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m} | {"sept": 9}


def _to_date(d: date | datetime | str | None) -> date | None:
    if d is None:
        return None
    if isinstance(d, datetime):
        return d.date()
    if isinstance(d, date):
        return d
    m = re.match(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})", str(d))
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _month_num(s: str) -> int | None:
    v = chinese_to_number(s)
    if v is None or v != int(v) or not 1 <= v <= 12:
        return None
    return int(v)


# Year part of a Chinese period.  Deictic words count from the publication
# date; anaphoric ones (上年, 当年) from the anchor.
_DEICTIC_YEARS: dict[str, int] = {
    "今年": 0, "本年度": 0, "本年": 0, "本财年": 0, "去年": -1, "去年度": -1, "前年": -2,
    "明年": 1, "来年": 1,
}
_ANAPHORIC_YEARS: dict[str, int] = {
    "上年度": -1, "上一年度": -1, "上一年": -1, "上年": -1, "前一年": -1, "当年": 0, "同年": 0,
    "次年": 1, "下一年": 1,
}
_YEAR_RE = re.compile(
    r"^(?:(?P<y4>(?:19|20)\d{2})(?:年度|年|财年)?|(?P<y2>\d{2})(?:年度|年|财年)|(?P<y2q>\d{2})(?=Q[1-4]|H[12])|"
    r"(?P<cn>[〇零一二三四五六七八九]{4})年|FY(?P<fy>(?:19|20)?\d{2})|(?P<word>"
    + "|".join(sorted(list(_DEICTIC_YEARS) + list(_ANAPHORIC_YEARS), key=len, reverse=True))
    + "))"
)

# Whole-span anaphoric words: word -> operation on the anchor.
_ANAPHORIC_TERMS: dict[str, str] = {
    "报告期": "anchor", "本报告期": "anchor", "报告期内": "anchor", "本期": "anchor",
    "期内": "anchor", "期內": "anchor", "本期内": "anchor", "当期": "anchor", "當期": "anchor",
    "对应期间": "anchor", "對應期間": "anchor", "季內": "quarter", "本季內": "quarter",
    "报告期末": "anchor_end", "本报告期末": "anchor_end", "期末": "anchor_end",
    "本季度": "quarter", "本季": "quarter", "当季": "quarter", "当季度": "quarter", "单季": "quarter",
    "单季度": "quarter", "该季度": "quarter", "这一季度": "quarter", "季内": "quarter", "季度内": "quarter",
    "上季度": "prev_quarter", "上一季度": "prev_quarter", "上个季度": "prev_quarter", "上季": "reported_quarter",
    "上一季": "prev_quarter", "前一季度": "prev_quarter", "上一个季度": "prev_quarter",
    "下季度": "next_quarter", "下一季度": "next_quarter", "下个季度": "next_quarter", "下一季": "next_quarter",
    "季度末": "quarter_end", "季末": "quarter_end", "本季度末": "quarter_end", "本季末": "quarter_end",
    "当季末": "quarter_end", "上季度末": "prev_quarter_end", "上季末": "prev_quarter_end",
    "全年": "year", "全年度": "year", "年度": "year", "整年": "year", "全财年": "year", "财年": "year",
    "年内": "year", "全年内": "year",
    "年末": "year_end", "年底": "year_end", "年终": "year_end", "年度末": "year_end",
    # Bare 同期 is "the same period" as the one just named (同期亏损则为...,
    # 占同期总交易额的22.1%, 同期90天+逾期率分别是...): the anchor itself.
    # The year-before reading needs 去年/上年 (去年同期, 上年同期).
    "同期": "anchor", "同期内": "anchor", "去年同期": "same_last_year", "上年同期": "same_last_year",
    "上一年同期": "same_last_year", "上年度同期": "same_last_year",
    "去年末": "deictic_prev_year_end", "去年底": "deictic_prev_year_end", "去年年末": "deictic_prev_year_end",
    "去年年底": "deictic_prev_year_end", "上年末": "prev_year_end", "上年底": "prev_year_end",
    "上年年末": "prev_year_end", "上年度末": "prev_year_end",
    # a balance sheet's opening column (本报告期初 | 7,950,218): the end of the year before
    "本报告期初": "prev_year_end", "报告期初": "prev_year_end", "期初": "prev_year_end",
}
_ANAPHORIC_TERMS_EN: dict[str, str] = {
    "the quarter": "quarter", "this quarter": "quarter", "the current quarter": "quarter",
    "current quarter": "quarter", "quarter": "quarter",
    "last quarter": "prev_quarter", "the last quarter": "prev_quarter", "previous quarter": "prev_quarter",
    "the previous quarter": "prev_quarter", "prior quarter": "prev_quarter", "the prior quarter": "prev_quarter",
    "next quarter": "next_quarter", "the next quarter": "next_quarter",
    "quarter end": "quarter_end", "the quarter end": "quarter_end", "end of the quarter": "quarter_end",
    "quarter-end": "quarter_end",
    "full year": "year", "the full year": "year", "the year": "year", "full-year": "year", "the whole year": "year",
    "throughout the year": "year", "all year": "year",
    "year end": "year_end", "year-end": "year_end", "the end of the year": "year_end", "end of the year": "year_end",
    "the same period last year": "same_last_year", "same period last year": "same_last_year",
    "the same quarter last year": "same_last_year", "same quarter last year": "same_last_year",
    "same period of last year": "same_last_year", "the same period of last year": "same_last_year",
    "same quarter of last year": "same_last_year", "the same quarter of last year": "same_last_year",
    "the reporting period": "anchor", "the period": "anchor",
    "this year": "deictic_year0", "last year": "deictic_year-1", "next year": "deictic_year1",
}


def _sub_period(rest: str) -> tuple[str, int, int] | None:
    """The part of a Chinese period after the year: (kind, n, day) with
    kind FY/Q/H/YTD/M/D, or None if not understood.  A trailing 末/底 is
    handled by the caller."""
    if rest in ("", "全年", "全年度", "年度", "财年", "全财年", "整年", "年报", "年度报告", "年全年", "全年内", "年内", "年",
                "报", "度报告"):  # 2022年报: the year regex took the 年
        return ("FY", 0, 0)
    if rest in ("首季", "首季度"):
        return ("Q", 1, 0)
    if rest == "年中":  # mid-year: the end of the first half
        return ("D", 6, 30)
    m = re.fullmatch(r"(?:第)?([一二三四1-4])季(?:度)?(?:单季(?:度)?)?|Q([1-4])|([1-4])Q|第?([一二三四1-4])财季", rest)
    if m:
        g = next(x for x in m.groups() if x)
        return ("Q", _CN_ORD[g], 0)
    m = re.fullmatch(r"(上|下|前|后)半(?:年|年度|财年)|H([12])|([12])H|(中期|半年度|半年|中报|半年报|中期报告)", rest)
    if m:
        if m.group(1):
            return ("H", 1 if m.group(1) in "上前" else 2, 0)
        if m.group(2) or m.group(3):
            return ("H", int(m.group(2) or m.group(3)), 0)
        return ("H", 1, 0)
    m = re.fullmatch(r"前([一二两三四1-4])(?:个)?季(?:度)?|Q1-Q([1-4])|Q1-([1-4])|前([一二三四五六七八九十\d]{1,2})个月|"
                     r"([1一])(?:-|至|到|~|—)([\d一二三四五六七八九十]{1,3})月(?:份)?", rest)
    if m:
        if m.group(1) or m.group(2) or m.group(3):
            n = _CN_ORD.get(m.group(1) or m.group(2) or m.group(3))
            if n is None:
                return None
            months = n * 3
        elif m.group(4):
            mm = _month_num(m.group(4))
            if mm is None:
                return None
            months = mm
        else:
            mm = _month_num(m.group(6))
            if mm is None:
                return None
            months = mm
        return {3: ("Q", 1, 0), 6: ("H", 1, 0), 9: ("YTD", 3, 0), 12: ("FY", 0, 0)}.get(months)
    # 6月底季度 (HK: the quarter ending in June)
    m = re.fullmatch(r"([\d一二三四五六七八九十]{1,2})月(?:底|末)?止?(?:单)?季(?:度)?", rest)
    if m:
        mm = _month_num(m.group(1))
        return ("Q", mm // 3, 0) if mm and mm % 3 == 0 else None
    m = re.fullmatch(r"([\d一二三四五六七八九十]{1,3})月(?:份)?(?:([\d一二三四五六七八九十]{1,3})[日号])?", rest)
    if m:
        mm = _month_num(m.group(1))
        if mm is None:
            return None
        if m.group(2):
            dd = chinese_to_number(m.group(2))
            if dd is None or dd != int(dd):
                return None
            return ("D", mm, int(dd))
        return ("M", mm, 0)
    return None


def _end_of(kind: str, n: int, day: int) -> tuple[str, int, int] | None:
    """The as-of date at the end of a sub-period (年末, 四季度末, 9月末)."""
    if kind == "FY":
        return ("D", 12, 31)
    if kind in ("Q", "YTD"):
        m = n * 3
    elif kind == "H":
        m = n * 6
    elif kind == "M":
        m = n
    else:
        return None
    return ("D", m, -1)  # day resolved once the year is known


def _make(kind: str, year: int, n: int, day: int) -> _P | None:
    try:
        if kind == "D":
            if day == -1:
                day = calendar.monthrange(year, n)[1]
            date(year, n, day)
        elif kind == "M" and not 1 <= n <= 12:
            return None
    except ValueError:
        return None
    return _P(kind, year, n, day)


def _most_recent(kind: str, n: int, day: int, doc: date) -> _P | None:
    """The most recent such period that had ended by ``doc`` (a date: on or
    before ``doc``)."""
    for y in (doc.year, doc.year - 1, doc.year - 2):
        p = _make(kind, y, n, day)
        if p is None:
            continue
        if (p.end() <= doc) if kind == "D" else (p.end() < doc):
            return p
    return None


def _upcoming(kind: str, n: int, day: int, doc: date) -> _P | None:
    """The earliest such period that had not ended by ``doc`` (a forecast's period)."""
    for y in (doc.year, doc.year + 1):
        p = _make(kind, y, n, day)
        if p is not None and p.end() >= doc:
            return p
    return None


def period_end(normalized: str | None) -> str | None:
    """The as-of date at the end of a normalised period: ``2024FY`` -> ``2024-12-31``,
    ``2024Q3`` -> ``2024-09-30``; a date stays itself; None when not normalised."""
    p = _from_normalized(normalized) if normalized else None
    return p.end_date().norm() if p is not None else None


def _en_period(t: str) -> tuple[str | None, int | None, tuple[str, int, int] | None, bool] | None:
    """English periods -> (year_word, year, sub, end).  ``year_word`` is
    'this'/'last'/'next' for deictic years."""
    t = t.lower().strip().replace("-", " ").replace("’", "'")
    t = re.sub(r"\s+", " ", t)
    t = re.sub(r"^(?:as of|as at|for|in|during|over|at|by)\s+", "", t)
    t = re.sub(r"^the\s+", "", t)
    whole = _en_whole_period(t)
    if whole is not None:
        return whole
    year: int | None = None
    year_word: str | None = None
    end = False
    m = re.search(r"(?:^|\s|')((?:19|20)\d{2})$|^((?:19|20)\d{2})\s", t)
    if m:  # strip a year at either end
        year = int(m.group(1) or m.group(2))
        t = (t[: m.start(1)] if m.group(1) else t[m.end(2):]).strip()
        t = re.sub(r"(?:\s+of|\s+in|,)$", "", t).strip()
        t = re.sub(r"^the\s+", "", t)
    else:
        m = re.search(r"\s*(?:of\s+)?(this|last|next) year$", t)
        if m and t[: m.start()].strip():
            year_word = m.group(1)
            t = re.sub(r"^the\s+", "", t[: m.start()].strip())
    if t.startswith("end of ") or t in ("end", "year end", "the end"):
        end, t = True, t[len("end of "):] if t.startswith("end of ") else ""
        t = re.sub(r"^the\s+", "", t)
    if t.endswith((" end", " ended")):
        end, t = True, t.rsplit(" ", 1)[0]
    sub = _en_sub_period(t)
    if sub is None:
        return None
    if year is None and year_word is None and sub == ("FY", 0, 0) and not end:
        return None  # "year", "full year": handled as anaphoric terms
    return (year_word, year, sub, end)


def _en_whole_period(t: str) -> tuple[None, int, tuple[str, int, int], bool] | None:
    """Forms that name their year themselves: March 31, 2023; 31 March 2023; 1Q25, Q1 2025; 1H23; FY23."""
    md = re.fullmatch(r"([a-z]+)\.? (\d{1,2}),? ((?:19|20)\d{2})", t)
    if md and md.group(1) in _EN_MONTHS:
        return (None, int(md.group(3)), ("D", _EN_MONTHS[md.group(1)], int(md.group(2))), False)
    md = re.fullmatch(r"(\d{1,2}) ([a-z]+),? ((?:19|20)\d{2})", t)
    if md and md.group(2) in _EN_MONTHS:
        return (None, int(md.group(3)), ("D", _EN_MONTHS[md.group(2)], int(md.group(1))), False)
    for kind, pattern in (("Q", r"([1-4])q ?'?(\d{2}|(?:19|20)\d{2})|q([1-4]) ?'?(\d{2}|(?:19|20)\d{2})"),
                          ("H", r"([12])h ?'?(\d{2}|(?:19|20)\d{2})|h([12]) ?'?(\d{2}|(?:19|20)\d{2})")):
        m4 = re.fullmatch(pattern, t)
        if m4:
            y = m4.group(2) or m4.group(4)
            return (None, int(y) if len(y) == 4 else 2000 + int(y), (kind, int(m4.group(1) or m4.group(3)), 0), False)
    m4 = re.fullmatch(r"fy ?'?(\d{2}|(?:19|20)\d{2})|fiscal (?:year )?((?:19|20)\d{2})", t)
    if m4:
        y = m4.group(1) or m4.group(2)
        return (None, int(y) if len(y) == 4 else 2000 + int(y), ("FY", 0, 0), False)
    return None


def _en_sub_period(t: str) -> tuple[str, int, int] | None:
    """The part of the year an English period names once its year is taken off: year, quarter,
    half, nine months, month, day."""
    if t in ("", "year", "full year", "fiscal year", "fiscal", "whole year", "calendar year", "fy", "all year"):
        return ("FY", 0, 0)
    mq = re.fullmatch(r"(first|second|third|fourth|1st|2nd|3rd|4th) (?:fiscal )?quarter|q([1-4])|([1-4])q", t)
    if mq:
        return ("Q", _EN_ORD[mq.group(1)] if mq.group(1) else int(mq.group(2) or mq.group(3)), 0)
    mh = re.fullmatch(r"(first|second|1st|2nd) half|h([12])|([12])h", t)
    if mh:
        return ("H", _EN_ORD[mh.group(1)] if mh.group(1) else int(mh.group(2) or mh.group(3)), 0)
    my = re.fullmatch(r"(?:first )?(nine|six|three) months|9m|6m|3m", t)
    if my:
        w = my.group(1) or {"9m": "nine", "6m": "six", "3m": "three"}[t]
        return {"nine": ("YTD", 3, 0), "six": ("H", 1, 0), "three": ("Q", 1, 0)}[w]
    if t in _EN_MONTHS:
        return ("M", _EN_MONTHS[t], 0)
    md = re.fullmatch(r"([a-z]+)\.? (\d{1,2})(?:st|nd|rd|th)?", t)
    if md and md.group(1) in _EN_MONTHS:
        return ("D", _EN_MONTHS[md.group(1)], int(md.group(2)))
    return None


def parse_period(
    span: str, doc_date: date | datetime | str | None = None, anchor: str | None = None,
    forward: bool = False,
) -> ParsedPeriod:
    """Normalise a PERIOD span.

    ``doc_date`` is the publication date; ``anchor`` the nearest explicit
    period in the text, as written (``2021年四季度``) or normalised
    (``2021Q4``).  See the module docstring for how relative periods are
    resolved.  ``forward``: the span is a forecast's period, so a period
    resolved from the publication date alone is the earliest such period
    that had not ended by then (预计第四季度 in November -> this year's Q4),
    not the most recent one that had.
    """
    doc = _to_date(doc_date)
    anchor_p = _anchor_period(anchor, doc)
    ok, fail = _period_results(span)
    raw = _nfkc(span).strip()
    if not raw:
        return fail("empty")
    p = _from_normalized(raw)  # already normalised
    if p is not None:
        return ok(p, False)
    t = _period_text(raw)
    if not t:
        return fail("empty")
    refused = _not_one_period(t)
    if refused:
        return fail(refused)
    ended = _PERIOD_ENDED.fullmatch(t) or _INTERIM_ENDED.fullmatch(t)
    if ended:
        return _period_ended(ended, doc, anchor, forward, ok, fail)
    explicit_same = re.fullmatch(r"((?:19|20)\d{2})年?(?:度)?同期", t)
    if explicit_same:
        if anchor_p is None:
            return fail("同期 without an anchor period", True)
        return ok(anchor_p.with_year(int(explicit_same.group(1))), True)
    op = _relative_term(t)
    if op is not None:
        return _resolve_op(op, anchor_p, doc, ok, fail, forward)
    if not re.search(r"[\u4e00-\u9fff]", t):
        en = _en_period(t)
        if en is not None:
            return _english_period(en, anchor_p, doc, ok, fail, forward)
    return _chinese_period(t, anchor_p, doc, ok, fail, forward)


def _anchor_period(anchor: str | None, doc: date | None) -> "_P | None":
    """The anchor period (as written or normalised), parsed; None when there is none or it is not one."""
    if not anchor:
        return None
    ap = parse_period(anchor, doc_date=doc)
    return _from_normalized(ap.normalized) if ap.ok and ap.normalized else None


def _period_results(text: str):
    """``(ok, fail)``: the two ways :func:`parse_period` answers for the span ``text``."""

    def ok(p: _P, relative: bool) -> ParsedPeriod:
        return ParsedPeriod(text=text, normalized=p.norm(), relative=relative, kind=p.kind_name)

    def fail(reason: str, relative: bool = False) -> ParsedPeriod:
        return ParsedPeriod(text=text, normalized=None, relative=relative, status="unparsed", reason=reason)

    return ok, fail


def _period_text(raw: str) -> str:
    """Simplified script, no spaces between CJK, no leading 截至/于 nor trailing 期间/内."""
    t = _simp(raw)
    t = re.sub(r"\s+", "", t) if re.search(r"[\u4e00-\u9fff]", t) else t
    t = re.sub(r"^(?:截至到|截止到|截至于|截至|截止|至|于|在)", "", t)
    # Brokers' 1Q25末 / 1H25末: the year first, as 25Q1末 (1Q25 alone is read with the English forms).
    t = re.sub(r"^([1-4])([QH])(\d{2})(?=[末底]$)", r"\3\2\1", t)
    if t not in _ANAPHORIC_TERMS and len(t) > 2:
        t = re.sub(r"(?:期间|里|时|内)$", "", t)  # 2022年期间, 过去一年里, 截至2025年6月30日止六個月內
    return t


def _not_one_period(t: str) -> str | None:
    """Why ``t`` names several periods, a duration or an open interval; None when it does not."""
    if re.search(r"[、和及&]|以来|以前|之前|之后|未来|过去|近\d|近[一二三四五六七八九十两]+", t):
        return "several periods, a duration or an open interval"
    if re.search(r"(?:19|20)\d{2}年?\s*(?:[-–~至到]|—+)\s*(?:19|20)\d{2}", t):
        return "several periods"
    return None


# HK-style: 截至2022年12月31日止年度 / 止六个月 / 止九个月 / 止三个月
# (截至2023年6月30日止6个月中期, 截至今年6月底止中期业绩: an interim period is six months)
_PERIOD_ENDED = re.compile(r"(.+?)止(?:之)?(年度|财年|全年|六个月|6个月|九个月|9个月|三个月|3个月|(?:第[一二三四1-4])?季度)"
                           r"(?:中期)?(?:业绩|业绩期)?")
_INTERIM_ENDED = re.compile(r"(.+?[日底末])止?(?:之)?(?:六个月|6个月)?(中期)(?:业绩|业绩期)?")
_MONTHS_ENDED = {"年度": 12, "财年": 12, "全年": 12, "六个月": 6, "6个月": 6, "九个月": 9, "9个月": 9,
                 "三个月": 3, "3个月": 3, "中期": 6}


def _period_ended(mh: re.Match, doc, anchor, forward, ok, fail) -> ParsedPeriod:
    """截至<date>止<length>: the period of that length ending on that date."""
    inner = parse_period(mh.group(1), doc_date=doc, anchor=anchor, forward=forward)
    if not inner.ok or inner.kind != "date":
        return fail("period end not understood", inner.relative)
    e = _from_normalized(inner.normalized)
    assert e is not None
    span_kind = mh.group(2)
    months = 3 if span_kind.endswith("季度") else _MONTHS_ENDED[span_kind]
    if e.day != calendar.monthrange(e.year, e.n)[1]:
        return fail("period end not at a month end", inner.relative)
    if months == 12:
        return ok(_P("FY", e.year), inner.relative)  # fiscal year named by its end year
    if months == 6 and e.n in (6, 12):
        return ok(_P("H", e.year, e.n // 6), inner.relative)
    if months == 9 and e.n == 9:
        return ok(_P("YTD", e.year, 3), inner.relative)
    if span_kind.startswith("第") and e.n != _CN_ORD[span_kind[1]] * 3:
        return fail("quarter does not end on that date", inner.relative)
    if months == 3 and e.n % 3 == 0:
        return ok(_P("Q", e.year, e.n // 3), inner.relative)
    return fail("period not aligned with quarters", inner.relative)


def _relative_term(t: str) -> str | None:
    """The operation of a whole-span relative term (去年同期, 报告期, last quarter), or None."""
    op = _ANAPHORIC_TERMS.get(t)
    if op is None and not re.search(r"[\u4e00-\u9fff]", t):
        en = re.sub(r"\s+", " ", t.lower().strip())
        en_variants = [en, en.replace("-", " ")]
        en_variants += [re.sub(r"^(?:as of|as at|at|in|during|for|over|by|since) ", "", v) for v in en_variants]
        op = next((_ANAPHORIC_TERMS_EN[v] for v in en_variants if v in _ANAPHORIC_TERMS_EN), None)
    return op


def _english_period(en, anchor_p, doc, ok, fail, forward) -> ParsedPeriod:
    year_word, year, sub, end = en
    if year is not None:
        y_spec: tuple[str, int] | None = ("abs", year)
    elif year_word is not None:
        y_spec = ("deictic", {"this": 0, "last": -1, "next": 1}[year_word])
    else:
        y_spec = None
    return _resolve(sub, end, y_spec, anchor_p, doc, ok, fail, forward)


def _chinese_period(t: str, anchor_p, doc, ok, fail, forward) -> ParsedPeriod:
    """[year][sub-period][末/底]."""
    m = _YEAR_RE.match(t)
    y_spec = None
    rest = t
    if m:
        rest = t[m.end():]
        y_spec = _year_spec(m)
        if y_spec is None:
            return fail("year not understood")
        # 2021年同期-like handled above; 去年同期 is in the table
        if rest in ("同期",):
            return _resolve_op("same_last_year", anchor_p, doc, ok, fail, forward)
        if rest in ("当年", "当年度") and y_spec[0] == "abs":
            rest = "全年"  # 2022年当年新增: that year
    end = False
    if rest.endswith(("末", "底")) and rest not in ("末", "底"):
        end, rest = True, rest[:-1]
    elif rest in ("末", "底", "年末", "年底"):
        end, rest = True, ""
    if y_spec is None and rest == "":
        return fail("not a period")
    sub = _sub_period(rest)
    if sub is None or (y_spec is None and sub[0] == "FY"):
        return fail("not a period")
    return _resolve(sub, end, y_spec, anchor_p, doc, ok, fail, forward)


def _year_spec(m: re.Match) -> tuple[str, int] | None:
    """The year a :data:`_YEAR_RE` match names: ("abs", 2023), ("deictic", -1), ("anaphoric", 0)."""
    if m.group("y4"):
        return ("abs", int(m.group("y4")))
    if m.group("y2") or m.group("y2q"):
        yy = int(m.group("y2") or m.group("y2q"))
        return ("abs", 2000 + yy if yy < 70 else 1900 + yy)
    if m.group("cn"):
        v = chinese_to_number(m.group("cn"))
        return None if v is None else ("abs", int(v))
    if m.group("fy"):
        fy = m.group("fy")
        return ("abs", int(fy) if len(fy) == 4 else 2000 + int(fy))
    w = m.group("word")
    return ("deictic", _DEICTIC_YEARS[w]) if w in _DEICTIC_YEARS else ("anaphoric", _ANAPHORIC_YEARS[w])


def _from_normalized(s: str) -> _P | None:
    m = _NORMALIZED_RE.match(s.strip())
    if not m:
        return None
    y = int(m.group("y"))
    if m.group("q"):
        return _P("Q", y, int(m.group("q")))
    if m.group("h"):
        return _P("H", y, int(m.group("h")))
    if m.group("ytd"):
        n = int(m.group("ytd"))
        return {1: _P("Q", y, 1), 2: _P("H", y, 1), 3: _P("YTD", y, 3), 4: _P("FY", y)}[n]
    if m.group("m"):
        mm = int(m.group("m"))
        if m.group("d"):
            return _make("D", y, mm, int(m.group("d")))
        return _make("M", y, mm, 0)
    return _P("FY", y)


def _resolve(sub, end, y_spec, anchor_p: _P | None, doc: date | None, ok, fail, forward: bool = False) -> ParsedPeriod:
    kind, n, day = sub
    if end:
        e = _end_of(kind, n, day)
        if e is None:
            return fail("end of a date")
        kind, n, day = e
    if y_spec is not None and y_spec[0] == "abs":
        p = _make(kind, y_spec[1], n, day)
        return ok(p, False) if p else fail("invalid date")
    if y_spec is not None and y_spec[0] == "deictic":
        if doc is None:
            return fail("relative year without a publication date", True)
        p = _make(kind, doc.year + y_spec[1], n, day)
        return ok(p, True) if p else fail("invalid date", True)
    if y_spec is not None and y_spec[0] == "anaphoric":
        if anchor_p is not None:
            base = anchor_p.year
        elif doc is not None:
            base = doc.year  # 上年 without an anchor: the year before publication
        else:
            return fail("relative year without anchor or publication date", True)
        p = _make(kind, base + y_spec[1], n, day)
        return ok(p, True) if p else fail("invalid date", True)
    # year missing: anchor year, else the most recent such period
    if anchor_p is not None:
        p = _make(kind, anchor_p.year, n, day)
        return ok(p, True) if p else fail("invalid date", True)
    if doc is not None:
        p = (_upcoming if forward else _most_recent)(kind, n, day, doc)
        return ok(p, True) if p else fail("invalid date", True)
    return fail("relative period without anchor or publication date", True)


def _resolve_op(op: str, anchor_p: _P | None, doc: date | None, ok, fail, forward: bool = False) -> ParsedPeriod:
    if op.startswith("deictic_year"):
        if doc is None:
            return fail("relative year without a publication date", True)
        return ok(_P("FY", doc.year + int(op[len("deictic_year"):])), True)
    if op == "deictic_prev_year_end":
        if doc is None:
            return fail("relative year without a publication date", True)
        return ok(_P("D", doc.year - 1, 12, 31), True)
    if op in ("anchor", "anchor_end", "same_last_year"):
        if anchor_p is None:
            return fail(f"{op} needs an anchor period", True)
        if op == "anchor":
            return ok(anchor_p, True)
        if op == "anchor_end":
            return ok(anchor_p.end_date(), True)
        return ok(anchor_p.with_year(anchor_p.year - 1), True)
    if op in ("year", "year_end", "prev_year_end"):
        if anchor_p is not None:
            y = anchor_p.year
        elif doc is not None:
            # the most recent ended year; a forecast's: the current one
            y = doc.year - 1 + forward if op != "prev_year_end" else doc.year
        else:
            return fail("relative period without anchor or publication date", True)
        if op == "year":
            return ok(_P("FY", y), True)
        if op == "year_end":
            return ok(_P("D", y, 12, 31), True)
        return ok(_P("D", y - 1, 12, 31), True)
    # quarter operations
    if anchor_p is not None:
        q = anchor_p.quarter()
        if q is None:
            return fail("anchor is not a quarter", True)
        cur = _P("Q", anchor_p.year, q)
    elif doc is not None:
        # the most recent quarter that had ended by publication; a forecast's: the current one
        if forward:
            cur = _P("Q", doc.year, (doc.month - 1) // 3 + 1)
        else:
            qs = [_most_recent("Q", k, 0, doc) for k in (1, 2, 3, 4)]
            cur = max((x for x in qs if x), key=lambda x: x.end())
    else:
        return fail("relative period without anchor or publication date", True)
    if op == "quarter":
        return ok(cur, True)
    if op in ("prev_quarter", "prev_quarter_end", "reported_quarter"):
        # Calls and mainland news speak from the quarter they report (上個季度, last quarter: the one
        # before it); Hong Kong news's 上季 is the quarter just reported (美團上季收入 in August: Q2).
        ahead = op == "reported_quarter" and anchor_p is None and not forward
        p = cur if ahead else _P("Q", cur.year, cur.n - 1) if cur.n > 1 else _P("Q", cur.year - 1, 4)
        return ok(p.end_date() if op == "prev_quarter_end" else p, True)
    if op == "next_quarter":
        return ok(_P("Q", cur.year, cur.n + 1) if cur.n < 4 else _P("Q", cur.year + 1, 1), True)
    if op == "quarter_end":
        return ok(cur.end_date(), True)
    return fail(f"unknown operation {op}", True)
