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

from caibao.normalize._common import ParsedPeriod, ParsedValue
from caibao.normalize.numerals import chinese_to_number
from caibao.normalize.periods import parse_period, period_end
from caibao.normalize.values import (find_approx, find_basis, find_sign, is_guidance, is_money_metric, parse_value,
                                     strip_trailing_hedge)

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
    "strip_trailing_hedge",
]
