"""PERIOD spans -> normalised periods (2023Q3, 2023H1, 2023FY, 2023-09-30 ...), relative ones resolved."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from caibao.io import bundled_yaml
from caibao.normalize._common import ParsedPeriod, _nfkc, _simp
from caibao.normalize.numerals import chinese_to_number

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


# What a whole-span anaphoric word resolves to (applied by _resolve_op).
AnaphoricOperation = Literal[
    "anchor", "anchor_end", "same_last_year", "quarter", "prev_quarter", "next_quarter", "reported_quarter",
    "quarter_end", "prev_quarter_end", "year", "year_end", "prev_year_end", "deictic_prev_year_end",
    "deictic_year0", "deictic_year-1", "deictic_year1",
]


class PeriodCues(BaseModel):
    """The period normaliser's vocabularies (resources/period_cues.yaml), validated on load."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    deictic_years: dict[str, int]
    anaphoric_years: dict[str, int]
    anaphoric_terms: dict[str, AnaphoricOperation]
    anaphoric_terms_en: dict[str, AnaphoricOperation]


def load_period_cues() -> PeriodCues:
    return PeriodCues.model_validate(bundled_yaml("period_cues.yaml"))


_PERIOD_CUES = load_period_cues()
# Year part of a Chinese period: deictic words count from the publication date, anaphoric
# ones (上年, 当年) from the anchor.
_DEICTIC_YEARS = _PERIOD_CUES.deictic_years
_ANAPHORIC_YEARS = _PERIOD_CUES.anaphoric_years
_YEAR_RE = re.compile(
    r"^(?:(?P<y4>(?:19|20)\d{2})(?:年度|年|财年)?|(?P<y2>\d{2})(?:年度|年|财年)|(?P<y2q>\d{2})(?=Q[1-4]|H[12])|"
    r"(?P<cn>[〇零一二三四五六七八九]{4})年|FY(?P<fy>(?:19|20)?\d{2})|(?P<word>"
    + "|".join(sorted(list(_DEICTIC_YEARS) + list(_ANAPHORIC_YEARS), key=len, reverse=True))
    + "))"
)

# Whole-span anaphoric words: word -> operation on the anchor (what each means: the YAML file).
_ANAPHORIC_TERMS = _PERIOD_CUES.anaphoric_terms
_ANAPHORIC_TERMS_EN = _PERIOD_CUES.anaphoric_terms_en


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
    m = re.fullmatch(r"(?:第)?([一二三四1-4])季(?:度)?(?:单季(?:度)?)?|Q([1-4])(?:单季(?:度)?)?|([1-4])Q|第?([一二三四1-4])财季", rest)
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
    m = re.fullmatch(r"[前首]([一二两三四1-4])(?:个)?季(?:度)?|Q1-Q([1-4])|Q1-([1-4])|[前首]([一二三四五六七八九十\d]{1,2})个?月|"
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
    # 6月底季度, 9月底止第三季 (HK: the quarter ending in June, September)
    m = re.fullmatch(r"([\d一二三四五六七八九十]{1,2})月(?:底|末)?止?(?:第[一二三四1-4])?(?:单)?季(?:度)?", rest)
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
    # 累計全年 (a Taiwan monthly's year so far, in a December report: the year); 增提後|12月 (a verb's 後
    # glued to the month it is followed by)
    t = re.sub(r"^累计(?=全年$|[上下]半年$|[前首][三3]季度?$|第?[一二三四1-4]季度?$)|^后(?=\d{1,2}月$)", "", t)
    # Taiwan monthly reports: 12月單月 (that month alone, against 累計 beside it) is the month.
    t = re.sub(r"(\d{1,2}月)单月$", r"\1", t)
    # 截至今年6月底止 (the 止 of 截至…止 without the length after it): the date.
    t = re.sub(r"(?<=[日底末])止$", "", t)
    # Brokers' 9M25 / 6M25 / 3M25: the first nine / six / three months of 2025.
    t = re.sub(r"^([369])M((?:19|20)?\d{2})$", lambda m: m.group(2) + {"9": "Q1-Q3", "6": "H1", "3": "Q1"}[m.group(1)], t)
    # Taiwan writes the year a deictic word means in brackets (去（2025）年, 今(2026)年): the year itself.
    t = re.sub(r"^(?:[去今明前][(（])?((?:19|20)\d{2})[)）]年", r"\1年", t)  # the span may start inside: 2025）年
    # Taiwan's official calendar (民國110年8月, 110年第3季): year 1 is 1912; a three-digit year only with its part.
    t = re.sub(r"^(?:民[国國])?(1[0-2]\d)年(?=\d{1,2}月|第|[上下]半年|[前首]|度$|$)",
               lambda m: f"{int(m.group(1)) + 1911}年" if m.group().startswith("民") or m.end() < len(t) else m.group(), t)
    # 24 Q1-Q3, 2025 H1: a year and its part written apart.
    t = re.sub(r"^((?:19|20)?\d{2})\s+(?=Q[1-4](?:-Q[1-4])?$|H[12]$)", r"\1", t)
    # Brokers' 1Q25末 / 1H25末: the year first, as 25Q1末 (1Q25 alone is read with the English forms).
    t = re.sub(r"^([1-4])([QH])(\d{2})(?=[末底]$)", r"\3\2\1", t)
    # Brokers' 1-3Q24 (the first three quarters of 2024) as 24Q1-Q3; 1-3Q alone as Q1-Q3.
    t = re.sub(r"^1\s*[-–~]\s*([2-4])Q(\d{2})?$", lambda m: f"{m.group(2) or ''}Q1-Q{m.group(1)}", t)
    # ... and 25Q1~3 (a tilde for the dash) as 25Q1-3.
    t = re.sub(r"^((?:\d{2}|\d{4})?Q1)\s*[~～]\s*([2-4])$", r"\1-\2", t)
    # Hong Kong fiscal years, named by the two calendar years they straddle (2024/2025財政年度, 2025/26財年):
    # the year they end in, as 2025财年.
    t = re.sub(r"财政年度$", "财年", t)
    t = re.sub(r"^((?:19|20)\d{2})/((?:19|20)?\d{2})(?=财年$)",
               lambda m: m.group(2) if len(m.group(2)) == 4 else m.group(1)[:2] + m.group(2), t)
    # Q3期末, 三季度期末: the end of that quarter (报告期末 is an anaphoric term of its own).
    t = re.sub(r"(Q[1-4]|季度?)期([末底])$", r"\1\2", t)
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
# (截至2020年3月31日的年度, 截至6月30日止第二季, 截至今年9月底止首三季: the same with 的, 季, 首三季)
_PERIOD_ENDED = re.compile(r"(.+?[日号底末])(?:止|的)(?:之)?(全年度|年度|财年|全年|六个月|6个月|九个月|9个月|三个月|3个月|"
                           r"[首前]三季度?|(?:第[一二三四1-4])?季度?)(?:中期)?(?:业绩|业绩期)?")
_INTERIM_ENDED = re.compile(r"(.+?[日底末])止?(?:之)?(?:六个月|6个月)?(中期)(?:业绩|业绩期)?")
_MONTHS_ENDED = {"全年度": 12, "年度": 12, "财年": 12, "全年": 12, "六个月": 6, "6个月": 6, "九个月": 9, "9个月": 9,
                 "三个月": 3, "3个月": 3, "中期": 6}


def _period_ended(mh: re.Match, doc, anchor, forward, ok, fail) -> ParsedPeriod:
    """截至<date>止<length>: the period of that length ending on that date."""
    inner = parse_period(mh.group(1), doc_date=doc, anchor=anchor, forward=forward)
    if not inner.ok or inner.kind != "date":
        return fail("period end not understood", inner.relative)
    e = _from_normalized(inner.normalized)
    assert e is not None
    span_kind = mh.group(2)
    months = 9 if span_kind[0] in "首前" else 3 if "季" in span_kind else _MONTHS_ENDED[span_kind]
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
