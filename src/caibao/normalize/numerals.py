"""Chinese (and mixed) numerals: 一千二 = 1200, 三万五 = 35000, 1.5亿, 二〇二一."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from caibao.normalize._common import _nfkc, _strip_thousands

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
