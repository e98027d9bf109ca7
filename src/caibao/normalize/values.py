"""VALUE spans -> number, unit, scale, sign, basis and hedges (the conventions: the package docstring)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from caibao.io import bundled_yaml
from caibao.normalize._common import Basis, ParsedValue, _clause_after, _clause_before, _nfkc, _simp, _strip_thousands
from caibao.normalize.numerals import _CN_NUM_CHARS, _chinese_to_decimal, chinese_to_number

# =============================================================================
# Cue words (resources/value_cues.yaml: what each list is for, and why)
# =============================================================================


class ValueCues(BaseModel):
    """The value normaliser's vocabularies, validated on load: a wrong shape is an error at import."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    currency_suffixes: dict[str, tuple[str, Decimal]]
    currency_prefixes: dict[str, str]
    rate_suffixes: dict[str, tuple[str, Decimal]]
    measure_words: tuple[str, ...]
    time_words: tuple[str, ...]
    measured_time_words: tuple[str, ...]
    counted_group_nouns: tuple[str, ...]
    latin_scales: dict[str, Decimal]
    latin_scales_with_currency: dict[str, Decimal]
    leading_hedges: dict[str, bool]
    approx_before: tuple[str, ...]
    approx_before_en: tuple[str, ...]
    approx_after: tuple[str, ...]
    approx_after_not: tuple[str, ...]
    approx_after_en: tuple[str, ...]
    fillers_before: tuple[str, ...]
    count_cues: tuple[str, ...]
    money_cues: tuple[str, ...]
    sign_cues: dict[str, Literal[-1, 0, 1]]
    sign_cues_en: dict[str, Literal[-1, 0, 1]]
    decline_magnitude_cues: tuple[str, ...]
    guidance_cues: tuple[str, ...]
    guidance_not: tuple[str, ...]
    basis_patterns: tuple[tuple[str, Basis | None], ...]


def load_value_cues() -> ValueCues:
    return ValueCues.model_validate(bundled_yaml("value_cues.yaml"))


_CUES = load_value_cues()
_CURRENCY_SUFFIXES = _CUES.currency_suffixes
_CURRENCY_PREFIXES = _CUES.currency_prefixes
_RATE_SUFFIXES = _CUES.rate_suffixes
_MEASURE_WORDS = _CUES.measure_words
_TIME_WORDS = _CUES.time_words
# The counted noun right before a count (衰退公司共|292家): a group a decline names, not a decline.
_COUNTED_GROUP_RE = re.compile(r"(?:%s)[共有为達达计計]{0,2}$" % "|".join(map(re.escape, _CUES.counted_group_nouns)))
# 平均期限53.3个月, 平均机龄4.4年: a length with decimals is measured, never a date or a plan's duration
_MEASURED_TIME_RE = re.compile(r"\d+\.\d+\s*(%s)" % "|".join(map(re.escape, _CUES.measured_time_words)))
_LATIN_SCALES = _CUES.latin_scales
_LATIN_SCALES_WITH_CURRENCY = _CUES.latin_scales_with_currency
_LEADING_HEDGES = _CUES.leading_hedges
_HEDGES_LONGEST_FIRST = tuple(sorted(_LEADING_HEDGES, key=len, reverse=True))
# The approximate hedges count before a value too.
_APPROX_BEFORE = tuple(k for k, v in _LEADING_HEDGES.items() if v) + _CUES.approx_before
_APPROX_BEFORE_EN = _CUES.approx_before_en
_APPROX_AFTER = _CUES.approx_after
_APPROX_AFTER_NOT = _CUES.approx_after_not
_APPROX_AFTER_EN = _CUES.approx_after_en
# Each compiled once: "any word ends the text" / "any word starts it" as one alternation.
_APPROX_BEFORE_EN_RE = re.compile(r"\b(?:" + "|".join(map(re.escape, _APPROX_BEFORE_EN)) + r")$")
_APPROX_AFTER_EN_RE = re.compile(r"(?:" + "|".join(map(re.escape, _APPROX_AFTER_EN)) + r")\b")
_FILLERS_BEFORE = _CUES.fillers_before
_COUNT_CUES = _CUES.count_cues
_MONEY_CUES = _CUES.money_cues
_SIGN_CUES = _CUES.sign_cues
_SIGN_CUES_EN = _CUES.sign_cues_en
_BASIS_PATTERNS: list[tuple[re.Pattern, Basis | None]] = [(re.compile(p, re.I), b) for p, b in _CUES.basis_patterns]
# English bases usually follow the value ("grew 5% year over year").
_BASIS_AFTER_EN = [(p, b) for p, b in _BASIS_PATTERNS if p.pattern.startswith(("year", "quarter"))]
_GUIDANCE_CUES = _CUES.guidance_cues
_GUIDANCE_NOT_LOWER = tuple(w.lower() for w in _CUES.guidance_not)

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
        magnitude = cue in _CUES.decline_magnitude_cues or after.startswith("幅")
        if cue not in ("转亏", "轉虧") and not magnitude and _LEVEL_MARKER_RE.match(after):
            return 1  # 下降至 X: X is the new level (but 降幅为 X, 减少幅度为 X: X is the decline)
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
    r"^(?:19|20)\d{2}[-/.]\d{1,2}(?:[-/.]\d{1,2})?$|\d+\s*[年月日号號](?![元圆圓])|^[QH][1-4]$|^FY\d", re.I
)
_TICKER_AFTER_RE = re.compile(r"^\.(?:HK|SH|SZ|US|N|O|SS|BJ)\b", re.I)
_TICKER_BEFORE = ("代号为", "代號為", "代码", "代碼", "股份代号", "股份代號", "NASDAQ:", "NYSE:", "HKEX:")
_VAGUE_WORDS = ("数", "數", "几", "幾", "若干", "上百", "上千", "上万", "上萬", "好几", "成百", "成千", "半")
_LIST_IN_SPAN_RE = re.compile(r"[、及和与與/]|,(?!\d{3}(?!\d))|，")
_SCALE_SUFFIX_RE = re.compile(r"(?<=[\d.])(万亿|萬億|千亿|千億|百亿|百億|十亿|十億|亿|億|千万|千萬|百万|百萬|十万|十萬|万|萬|千|百)$")
_PLAIN_ARABIC_RE = re.compile(r"^\d+(?:\.\d+)?$")
TRILLION = Decimal(10) ** 12


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
    (亿元, 港仙) or measure word (家, 万人, 多人); a trailing time word is no value unless it follows
    decimals (平均期限53.3个月: the word is the unit)."""
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
    measured = _MEASURED_TIME_RE.fullmatch(s)
    if measured:
        return s[: measured.start(1)].rstrip(), measured.group(1), Decimal(1), False, False
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
    trillions = re.fullmatch(r"(.+?)兆(.*)", s)
    if trillions:  # Taiwan's 兆 is a trillion: 3兆1452亿元, 7.8兆元
        left, right = _chinese_to_decimal(trillions.group(1)), _chinese_to_decimal(trillions.group(2) or "0")
        if left is None or right is None:
            raise _Unparsed("not a number")
        return left * TRILLION + right, False, True
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


def strip_trailing_hedge(text: str) -> str:
    """``text`` without a hedge of ``leading_hedges`` at its end (港幣約|15.4億元: the word before the
    value is then 港幣)."""
    t = text.rstrip()
    hedge = next((key for key in _HEDGES_LONGEST_FIRST if t.endswith(key)), None)
    return t[: -len(hedge)].rstrip() if hedge else t


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


_LIST_TAIL_RE = re.compile(r"(?:\s*(?:、|，|,|/|和|及|与|與)\s*([+-]?\d[\d,.]*))+\s*([^\s\d、，,/；;。]{1,4})")


def _list_shared_unit(s: str, after: str) -> tuple[Decimal, str] | None:
    """A bare number in a list whose last member carries the unit (70.5、90.9和101亿元):
    the number read with that unit and scale."""
    m = _LIST_TAIL_RE.match(after)
    if not m:
        return None
    last, suffix = m.group(1), m.group(2)
    if suffix.startswith(_CUES.measured_time_words) and not _MEASURED_TIME_RE.fullmatch(last + suffix):
        return None  # a year after the list (…、3.86,2015年上半年), or a duration, is no unit of its members
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
    s = re.sub(r"^[负負](?=\d)", "-", s)  # 同比负6.8%: a minus written out
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
    if unit in _MEASURE_WORDS and _COUNTED_GROUP_RE.search(_simp(before)):
        sign_context = ""  # 衰退公司共292家: the count of a group, not a decline
    else:
        sign_context = before
    value, low, high, sign = _signed(value, low, high, sign_context, after)
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
    if _DATE_RE.search(s) and not _MEASURED_TIME_RE.fullmatch(s):
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
