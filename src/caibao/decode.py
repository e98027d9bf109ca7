"""Span rules applied after the tagger, before relations are scored.

Each rule fixes a span shape the guide rules out and the tagger, seeing
names it never met, still produces (words in ``resources/decoding.yaml``):

* :func:`complete_suffixes`: an ORG stopping right before 消金/消费金融/银行 ...
  takes the suffix (兴业|消金 -> 兴业消金); a VALUE before 个百分点 takes it;
* :func:`merge_ranges`: a range tagged as two VALUEs (1.2%到1.3%) becomes one
  span, as the guide writes it (4550亿至4900亿元), unless it reads as a change
  and a result (下降5.2%至819.4亿元) or a from-to (从36亿元至41.4亿元);
* :func:`trim_leading_words`: a METRIC starting with a verb or hedge loses it
  (实现净利润 -> 净利润), and :func:`trim_trailing_words` one ending in the verb before its
  value (營業收入錄 -> 營業收入);
* :func:`complete_period_prefixes`: a PERIOD cut after its year word takes it (今|年前三季度);
* :func:`drop_short_spans`: a METRIC or PERIOD of one character is dropped;
* :func:`drop_non_org_names`: an ORG inside an outlet's name (中国证券|报), that is a line of
  business (农业保险) or one Chinese character outside a list of such (国|有控股) is dropped;
* :func:`split_joined_orgs`: names written one after the other (北京银行宁波银行) are one ORG each,
  and :func:`join_split_orgs` one name tagged in two pieces (江蘇|如|東農商行) is one ORG;
* :func:`split_period_lists`: 前三季度/Q3 is two PERIODs, and :func:`repair_period_ends` a PERIOD
  that reads as none ends where it does (2025年中|报, 24Q1-Q3|43家), one takes the end word left to
  the METRIC after it (上半年|末资管规模);
* :func:`split_coordinated_metrics`: 「A、B分别为X、Y」 tagged as one METRIC
  becomes two, and the values are shared out in order;
* :func:`tag_declared_names`: a short name an organisation declares for itself
  (和信贷公司(“和信贷”或“本公司”)) is an ORG wherever the tagger left it untagged;
* :func:`split_glued_orgs`: an organisation glued to the front of a METRIC
  (招联金融总资产, 微众银行实现净利润) becomes an ORG that owns the metric.

Spans are ``(start, end, label)`` character ranges, sorted and disjoint. Each rule can be
switched off in an experiment config (``decoding.rules``, :data:`RULES`), e.g. to measure it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from caibao.io import bundled_yaml
from caibao.normalize import parse_period, parse_value
from caibao.schema import Entity, Relation
from caibao.text import OPEN_BRACKET_AT_END

Span = tuple[int, int, str]
# Where a clause ends: a blocking word before one of these belongs to another clause.
CLAUSE_ENDS = "，,；;。！？!?：:\n"
# Broker shorthand ending in a quarter or half (24Q1-Q3, 1H25) with the digits of the next number glued on.
_SHORTHAND_THEN_DIGITS = re.compile(r"(.*[QqHh][1-4])\d+$")
# Any date will do to ask whether a span reads as a period at all (relative ones need one).
PERIOD_PROBE_DATE = "2025-01-01"
# The characters before the suffix of each name in an ORG of joined names (北京|银行宁波|银行).
ORG_RUN_NAME_CHARS = (2, 6)
# A change verb this close before a value (增长了约) is the verb of that value.
CHANGE_WORD_REACH = 6
# A METRIC cut shorter than this keeps its words (行业排名 is not cut to 排名's single character), and a
# METRIC or PERIOD tagged shorter than this is dropped.
SPAN_MIN_CHARS = 2


@dataclass(frozen=True)
class DecodingWords:
    org_name_suffixes: tuple[str, ...]
    value_unit_suffixes: tuple[str, ...]
    period_unit_suffixes: tuple[str, ...]
    period_numerals: str
    period_day_after_month: re.Pattern
    period_base_suffixes: tuple[str, ...]
    period_ended_after_date: re.Pattern
    period_part_after_year: re.Pattern
    period_year_prefixes: tuple[str, ...]
    metric_leading_words: tuple[str, ...]
    metric_trailing_words: tuple[str, ...]
    trailing_words_kept: tuple[str, ...]
    org_trailing_words: tuple[str, ...]
    org_leading_words: tuple[str, ...]
    outlet_names: tuple[str, ...]
    business_lines: tuple[str, ...]
    org_run_suffixes: tuple[str, ...]
    org_gap_words: str
    metric_industry_scope: tuple[str, ...]
    metric_industry_scope_inside: tuple[str, ...]
    metric_list_separators: tuple[str, ...]
    respectively_cues: tuple[str, ...]
    org_metric_joiners: tuple[str, ...]
    range_words: tuple[str, ...]
    range_dashes: tuple[str, ...]
    range_from_words: tuple[str, ...]
    range_change_words: tuple[str, ...]
    declared_name_openers: tuple[str, ...]
    declared_name_owner_suffixes: tuple[str, ...]
    declared_name_generic: tuple[str, ...]
    currency_words: tuple[str, ...]
    coded_name_leading_words: tuple[str, ...]
    region_names: tuple[str, ...]
    metric_period_prefixes: tuple[str, ...]
    metric_abbreviations: tuple[str, ...]
    class_nouns: tuple[str, ...]
    place_suffixes: tuple[str, ...]
    market_words: tuple[str, ...]
    org_business_line_suffixes: tuple[str, ...]
    org_bare_name_suffixes: tuple[str, ...]
    org_name_endings_kept: tuple[str, ...]

    @classmethod
    @functools.cache
    def load(cls) -> "DecodingWords":
        raw = bundled_yaml("decoding.yaml")
        longest_first = lambda words: tuple(sorted(words, key=len, reverse=True))  # noqa: E731
        return cls(longest_first(raw["org_name_suffixes"]), longest_first(raw["value_unit_suffixes"]),
                   longest_first(raw["period_unit_suffixes"]), raw["period_numerals"],
                   re.compile(raw["period_day_after_month"]), tuple(raw["period_base_suffixes"]),
                   re.compile(raw["period_ended_after_date"]), re.compile(raw["period_part_after_year"]),
                   tuple(raw["period_year_prefixes"]),
                   longest_first(raw["metric_leading_words"]), longest_first(raw["metric_trailing_words"]),
                   tuple(raw["trailing_words_kept"]), tuple(raw["org_trailing_words"]),
                   # an outlet's name glued before an ORG is cut like a leading word (中证智能财讯|东兴证券)
                   longest_first(raw["org_leading_words"] + raw["outlet_names"]), longest_first(raw["outlet_names"]),
                   tuple(raw["business_lines"]),
                   longest_first(raw["org_run_suffixes"]), raw["org_gap_words"],
                   longest_first(raw["metric_industry_scope"]),
                   longest_first(raw["metric_industry_scope_inside"]), longest_first(raw["metric_list_separators"]),
                   tuple(raw["respectively_cues"]), longest_first(raw["org_metric_joiners"]),
                   tuple(raw["range_words"]), tuple(raw["range_dashes"]), tuple(raw["range_from_words"]),
                   tuple(raw["range_change_words"]), longest_first(raw["declared_name_openers"]),
                   tuple(raw["declared_name_owner_suffixes"]), tuple(raw["declared_name_generic"]),
                   tuple(raw["currency_words"]), longest_first(raw["coded_name_leading_words"]),
                   tuple(raw["region_names"]), longest_first(raw["metric_period_prefixes"]),
                   tuple(raw["metric_abbreviations"]), tuple(raw["class_nouns"]),
                   tuple(raw["place_suffixes"]), tuple(raw["market_words"]),
                   longest_first(raw["org_business_line_suffixes"]), longest_first(raw["org_bare_name_suffixes"]),
                   tuple(raw["org_name_endings_kept"]))


def _suffix_at(text: str, pos: int, suffixes: tuple[str, ...]) -> str | None:
    return next((s for s in suffixes if text.startswith(s, pos)), None)


def _period_suffix_at(text: str, end: int, words: DecodingWords) -> str | None:
    """The unit a PERIOD was cut before (2021年三|季度), the day after its month (4月|25日), the
    同期 that makes it a comparison base (2024年|同期), or the length of the period a date ends
    (截至2010年12月31日|止三个月); 2024年|第三季度 is two periods."""
    if text[end - 1 : end] in words.period_numerals:
        unit = _suffix_at(text, end, words.period_unit_suffixes)
        return unit + _part_after_year(text, end + len(unit), words) if unit and unit.endswith("年") else unit
    if text[end - 1 : end] in "年度":
        return _suffix_at(text, end, words.period_base_suffixes) or _part_after_year(text, end, words) or None
    if text[end - 1 : end] in "日号號底末":
        ended = words.period_ended_after_date.match(text, end)
        if ended:
            return ended.group()
    day = words.period_day_after_month.match(text, end) if text[end - 1 : end] in "月" else None
    return day.group() if day else None


def _org_suffix_at(text: str, start: int, end: int, words: DecodingWords) -> str | None:
    """A name ending after an ORG (兴业|消金); a developer's or group's ending (保利|发展, 新世界|发展) only after
    a bare name, not after one that has its ending already (郑州银行|发展历程, 奇富科技|发展的新起点)."""
    suffix = _suffix_at(text, end, words.org_name_suffixes)
    if suffix is None and not text[start:end].endswith(words.org_name_suffixes + words.org_name_endings_kept):
        suffix = _suffix_at(text, end, words.org_bare_name_suffixes)
    return suffix


def _part_after_year(text: str, pos: int, words: DecodingWords) -> str:
    """The part of a year right after it (2025年|前九月: the gold writes a year and its part as one
    PERIOD), else ''."""
    part = words.period_part_after_year.match(text, pos)
    return part.group() if part else ""


def complete_suffixes(text: str, spans: list[Span], words: DecodingWords | None = None) -> list[Span]:
    """Extend ORG, VALUE and PERIOD spans over a name/unit suffix right after them.

    The suffix may lie outside any span or at the start of the next span, which
    then loses it (兴业|消金净利润 tagged ORG|METRIC -> 兴业消金|净利润); a next span
    made only of the suffix disappears.
    """
    words = words or DecodingWords.load()
    suffix_after = {"ORG": lambda start, end: _org_suffix_at(text, start, end, words),
                    "VALUE": lambda start, end: _suffix_at(text, end, words.value_unit_suffixes),
                    "PERIOD": lambda start, end: _period_suffix_at(text, end, words)}
    out: list[Span | None] = list(spans)
    for k in range(len(out)):
        if out[k] is None or out[k][2] not in suffix_after:
            continue
        s, e, label = out[k]
        suffix = suffix_after[label](s, e)
        if suffix is None:
            continue
        new_end = e + len(suffix)
        nxt = out[k + 1] if k + 1 < len(out) else None
        if nxt is not None and nxt[0] == e and nxt[2] == label == "PERIOD" and _part_after_year(text, e, words):
            continue  # 2024年|第三季度 tagged as two PERIODs stays two
        if nxt is not None and nxt[0] < new_end:
            if nxt[0] != e:
                continue  # the next span starts inside the suffix: leave both alone
            out[k + 1] = (new_end, nxt[1], nxt[2]) if nxt[1] > new_end else None
        out[k] = (s, new_end, label)
    return [x for x in out if x is not None]


def close_brackets(text: str, spans: list[Span]) -> list[Span]:
    """A METRIC cut inside its own bracket (服务费(扣除|增值税)) runs to the bracket's end, when that is
    near and no other span starts before it; the guide never ends a METRIC inside a bracket. One that
    starts inside its quotation (「|手機×AIoT」分部收入) takes the opening mark. An ORG cut inside a bracket
    (蔚来(NIO|)) ends before it: the name is what precedes its ticker or note, and no gold ORG ends unclosed."""
    out = list(spans)
    for k, (s, e, label) in enumerate(out):
        quote = _CLOSE_QUOTE_FIRST.match(text, s, e) if label == "METRIC" else None
        if quote and text[s - 1 : s] == _QUOTE_PAIRS[quote.group(1)] and (k == 0 or out[k - 1][1] < s):
            out[k] = s, e, label = (s - 1, e, label)
        m = OPEN_BRACKET_AT_END.search(text, s, e)
        if label == "ORG" and m is not None and m.start() - s >= SPAN_MIN_CHARS:
            out[k] = (s, m.start(), label)
        if label != "METRIC" or m is None:
            continue
        close = _CLOSE_BRACKET.match(text, e)
        nxt = out[k + 1][0] if k + 1 < len(out) else len(text)
        if close is not None and close.end() <= nxt:
            out[k] = (s, close.end(), label)
    return out


# A closing quotation mark with no opening one before it in the span (手機×AIoT」分部收入).
_QUOTE_PAIRS = {"」": "「", "』": "『", "”": "“", "》": "《"}
_CLOSE_QUOTE_FIRST = re.compile(r"[^「『“《」』”》]*([」』”》])")
# The rest of a bracket: a few characters, then its closing bracket.
_CLOSE_BRACKET = re.compile(r"[^（()）。，,；;\n]{0,12}[）)]")


def merge_ranges(text: str, spans: list[Span], words: DecodingWords | None = None) -> list[Span]:
    """Two VALUEs joined only by a range joiner (1.2%到1.3%) become one VALUE.

    Only when both read in the same unit (the first may leave it out: 4550亿至4900亿元),
    the clause before them is not a from-to (从36亿元至41.4亿元), and, after a change
    verb, the first writes its unit itself (增长10%至20% is a range; 减少195亿至557.5亿元
    is a change and its result, which the guide keeps as two VALUEs).
    """
    words = words or DecodingWords.load()
    out: list[Span] = []
    for span in spans:
        prev = out[-1] if out else None
        joiner = text[prev[1] : span[0]].strip() if prev else ""
        if prev and prev[2] == span[2] == "VALUE" and joiner in words.range_words + words.range_dashes \
                and _reads_as_range(text, prev, span, joiner in words.range_words, words):
            out[-1] = (prev[0], span[1], "VALUE")
        else:
            out.append(span)
    return out


def _reads_as_range(text: str, first: Span, second: Span, worded: bool, words: DecodingWords) -> bool:
    """``worded``: the two are joined by 至/到 (not a dash)."""
    unit_a = parse_value(text[first[0] : first[1]]).unit
    unit_b = parse_value(text[second[0] : second[1]]).unit
    clause_start = max(text.rfind(c, 0, first[0]) for c in CLAUSE_ENDS) + 1
    before = text[clause_start : first[0]]
    if unit_b is None or unit_a not in (None, unit_b) or any(w in before for w in words.range_from_words):
        return False
    after_change = any(w in before[-CHANGE_WORD_REACH:] for w in words.range_change_words)
    return unit_a == unit_b or not (worded and after_change)


# A declaration: the owner's name ends, perhaps a bracket of its own (股票代码:HX), then a bracket
# opening with 以下简称 or a quote: (以下简称“招联消金”), (“和信贷”或“本公司”).
DECLARED_NAME_MAX = 12
OWNER_BRACKET_MAX = 40


@functools.cache
def _declaration_re(words: "DecodingWords") -> re.Pattern:
    owners = "|".join(map(re.escape, sorted({*words.declared_name_owner_suffixes, *words.org_name_suffixes},
                                             key=len, reverse=True)))
    openers = "|".join(map(re.escape, words.declared_name_openers))
    return re.compile(rf"(?:{owners})\s*(?:[(（][^()（）]{{1,{OWNER_BRACKET_MAX}}}[)）]\s*)?[(（]\s*(?:{openers})?\s*[:：]?\s*"
                      rf"[“\"「『]([^”\"」』]{{2,{DECLARED_NAME_MAX}}})[”\"」』]")


def tag_declared_names(text: str, spans: list[Span], words: DecodingWords | None = None) -> list[Span]:
    """A short name an organisation declares for itself is an ORG wherever no span covers it yet."""
    words = words or DecodingWords.load()
    names = {m.group(1).strip() for m in _declaration_re(words).finditer(text)}
    return _tag_where_untagged(text, spans, {n for n in names if n and n not in words.declared_name_generic})


def _tag_where_untagged(text: str, spans: list[Span], names: set[str]) -> list[Span]:
    """``spans`` with every occurrence of each name (longest first) that no span covers yet as an ORG."""
    out = list(spans)
    for name in sorted(names, key=len, reverse=True):
        for m in re.finditer(re.escape(name), text):
            if not any(s < m.end() and m.start() < e for s, e, _ in out):
                out.append((m.start(), m.end(), "ORG"))
    return sorted(out)


def tag_coded_names(text: str, spans: list[Span], words: DecodingWords | None = None) -> list[Span]:
    """A name written with its stock code where a clause opens (長和(00001)發表…, 九龍倉置業（1997）公布,
    台積電（2330）) is an ORG wherever no span covers it yet: financial news introduces its subject so,
    and an unseen name is the tagger's most common miss. A METRIC over exactly such a name (長和 tagged
    as a metric) becomes the ORG."""
    words = words or DecodingWords.load()
    names = {_without_leading_word(m.group(1), words) for m in _CODED_NAME.finditer(text)}
    names = {n for n in names if len(n) >= SPAN_MIN_CHARS} - set(words.declared_name_generic)
    relabelled = [(s, e, "ORG" if label == "METRIC" and text[s:e] in names else label) for s, e, label in spans]
    return _tag_where_untagged(text, relabelled, names)


def _without_leading_word(name: str, words: DecodingWords) -> str:
    lead = next((w for w in words.coded_name_leading_words if name.startswith(w)), "")
    return name[len(lead):]


# A name (two to eight characters, nothing before it in its clause but perhaps a leading word) right
# before a bracketed stock code: Hong Kong's (00001, 0388.HK), Taiwan's (2330) or a mainland one
# (600519.SH); not a year (年报（2024）) unless a verb of announcing follows (九龍倉置業（1997）公布).
_CODED_NAME = re.compile(r"(?:^|(?<=[\s，,。；;：:！!？?、>＞》】」』”]))([\u4e00-\u9fffA-Za-z]{2,10})"
                         r"\s*[（(]\s*(?:(?:HK|SH|SZ|股票代[码碼号號]|股份代[号號])\s*[:：]?\s*)?"
                         r"(?!(?:19|20)\d\d\s*[)）](?!\s*(?:公布|公佈|宣布|宣佈|發表|发表|公告)))"
                         r"\d{4,6}(?:\s*[.-]\s*(?:HK|SH|SZ|TW))?\s*[)）]", re.M)


def drop_short_spans(spans: list[Span], label: str) -> list[Span]:
    """A METRIC or PERIOD of one character (持, 消, 信 cut from a longer word; 單 of 單計第三季, 前 of
    前三季度) names no quantity or time: the guide's METRICs and PERIODs are words (no gold PERIOD and
    a handful of gold METRICs are one character)."""
    return [(s, e, lab) for s, e, lab in spans if lab != label or e - s >= SPAN_MIN_CHARS]


def drop_currency_orgs(text: str, spans: list[Span], words: DecodingWords | None = None) -> list[Span]:
    """An ORG inside a currency's name (港|幣三十億元: 港 is Hong Kong's dollar, not an organisation)
    is no ORG."""
    words = words or DecodingWords.load()
    return [(s, e, label) for s, e, label in spans
            if label != "ORG" or not any(text.startswith(w, s) and e <= s + len(w) for w in words.currency_words)]


def trim_leading_words(text: str, spans: list[Span], words: DecodingWords | None = None) -> list[Span]:
    """METRICs lose a leading verb or hedge (实现净利润 -> 净利润) and the industry they are of, which
    is their owner, not a qualifier (行业信托资产规模 -> 信托资产规模, 金融租赁全行业的不良率 -> 不良率),
    and a period word they open with becomes a PERIOD (去年度新业务价值 -> 去年度 | 新业务价值);
    ORGs lose the verb of ownership or the outlet's byline glued before them (歸屬於|摯文集團,
    中证智能财讯|东兴证券)."""
    words = words or DecodingWords.load()
    out = []
    for s, e, label in spans:
        if label == "METRIC":
            lead = _suffix_at(text, s, words.metric_leading_words)
            if lead and s + len(lead) < e:
                s += len(lead)
            s = _after_industry_scope(text, s, e, words)
            period = _suffix_at(text, s, words.metric_period_prefixes)
            if period and e - s - len(period) >= SPAN_MIN_CHARS:  # 去年度|新业务价值: the period is a PERIOD
                out.append((s, s + len(period), "PERIOD"))
                s += len(period)
        elif label == "ORG":
            lead = _suffix_at(text, s, words.org_leading_words)
            if lead and e - s - len(lead) >= SPAN_MIN_CHARS:
                s += len(lead)
        out.append((s, e, label))
    return out


def drop_non_org_names(text: str, spans: list[Span], words: DecodingWords | None = None) -> list[Span]:
    """An ORG inside an outlet's name (据|中国证券|报: the newspaper is the source, no owner), that is
    a line of business (农业保险, 责任保险: an insurance line of an industry roundup), a country or
    region (an insurer's 泰国 market, 马来西 cut from 马来西亚, 成都|地区), a class of organisations (商業銀行總資產
    137.2萬億元 in a regulator's release), a metric's abbreviation (车险整体 COR 99.1%, 综合成本率(COR)) or a
    lone Chinese character is no ORG."""
    words = words or DecodingWords.load()
    outlets = [(m.start(), m.end()) for name in words.outlet_names for m in re.finditer(re.escape(name), text)]
    org_ends = {e for _, e, label in spans if label == "ORG"}
    one_character_orgs = {s for s, e, label in spans if label == "ORG" and e - s == 1}
    return [(s, e, label) for s, e, label in spans
            if label != "ORG" or not (_names_no_organisation(text[s:e], words) or text.startswith(words.place_suffixes, e)
                                      or any(a <= s and e <= b for a, b in outlets)
                                      or _bracketed_abbreviation(text, s, e, org_ends)
                                      or _lone_character(text, s, e, one_character_orgs))]


def _lone_character(text: str, start: int, end: int, one_character_orgs: set[int]) -> bool:
    """One Chinese character alone is no organisation's name (国|有控股企业, 陽 cut from 陽明, a stray 分),
    unless a list of one-character abbreviations holds it (工、农、中、建、交: gold has no other)."""
    if end - start != 1 or not re.fullmatch(r"[\u4e00-\u9fff]", text[start]):
        return False
    listed = (text[start - 1 : start] == "、" and start - 2 in one_character_orgs) \
        or (text[end : end + 1] == "、" and end + 1 in one_character_orgs)
    return not listed


def _names_no_organisation(name: str, words: DecodingWords) -> bool:
    """A line of business, a class of organisations, a country, region or its market (東歐市場), a
    metric's abbreviation, or a lone Latin letter (a table's stray O)."""
    market = next((w for w in words.market_words if name.endswith(w) and len(name) > len(w)), None)
    place = name[: -len(market)] if market else name
    region = next((r for r in words.region_names if name.startswith(r) and len(name) > len(r)), None)
    if region and name[len(region) :] in words.class_nouns:  # 香港保險業
        return True
    return name in words.business_lines or name in words.class_nouns or _is_region(place, words) \
        or name.upper() in words.metric_abbreviations or bool(re.fullmatch(r"[A-Za-z]", name)) \
        or any(name.endswith(w) and len(name) > len(w) for w in words.place_suffixes)  # 苏州城区 (stage 21)


def _bracketed_abbreviation(text: str, start: int, end: int, org_ends: set[int]) -> bool:
    """A Latin abbreviation alone in brackets after no organisation's name (综合成本率(COR), 净息差(NIM)):
    a metric's; after a name (平安壹账通银行(PAOB)) it is the organisation's own."""
    return bool(_ABBREVIATION.fullmatch(text[start:end])) and text[start - 1 : start] in "(（" \
        and text[end : end + 1] in ")）" and start - 1 not in org_ends


_ABBREVIATION = re.compile(r"[A-Z][A-Z0-9&]{1,7}")


def _is_region(name: str, words: DecodingWords) -> bool:
    return name in words.region_names or (len(name) >= 3 and any(r.startswith(name) for r in words.region_names))


def trim_trailing_words(text: str, spans: list[Span], words: DecodingWords | None = None) -> list[Span]:
    """A METRIC ending in the verb that introduces its value loses it (營業收入錄|4,791.05億元, 純利報,
    每股盈利料|為), and an ORG the first character of its verb (廣東明珠預|計): no gold METRIC or ORG ends
    in one, unless the verb is part of a word (投資回報, 業績記錄)."""
    words = words or DecodingWords.load()
    trailing = {"METRIC": words.metric_trailing_words, "ORG": words.org_trailing_words + words.org_business_line_suffixes}
    out = []
    for s, e, label in spans:
        tail = next((w for w in trailing.get(label, ()) if text.endswith(w, s, e)), None)
        kept = any(text.endswith(w, s, e) for w in words.trailing_words_kept)
        if tail and not kept and e - len(tail) - s >= SPAN_MIN_CHARS:
            e -= len(tail)
        out.append((s, e, label))
    return out


def split_joined_orgs(text: str, spans: list[Span], words: DecodingWords | None = None) -> list[Span]:
    """One ORG over a list of names written without separators (北京银行宁波银行上海银行南京银行, a
    roundup's table row) becomes one ORG per name: only when every name ends in the same
    ``org_run_suffixes`` word (no gold ORG reads so; 法国巴黎银行个人金融集团 stays whole)."""
    words = words or DecodingWords.load()
    out = []
    for s, e, label in spans:
        parts = _joined_names(text[s:e], words) if label == "ORG" else None
        if not parts:
            out.append((s, e, label))
            continue
        for part in parts:
            out.append((s, s + len(part), "ORG"))
            s += len(part)
    return out


def join_split_orgs(text: str, spans: list[Span], words: DecodingWords | None = None) -> list[Span]:
    """An unseen name tagged in two pieces around one untagged character (江蘇|如|東農商行) is one ORG
    when the second piece ends in a name suffix and the first does not; not across a word that
    relates two organisations (360数科在港交所, ST安信向金城银行: ``org_gap_words``)."""
    words = words or DecodingWords.load()
    out: list[Span] = []
    for s, e, label in spans:
        if out and label == "ORG" and out[-1][2] == "ORG" and s - out[-1][1] == 1 and _joins_name(text, out[-1], (s, e), words):
            out[-1] = (out[-1][0], e, "ORG")
            continue
        out.append((s, e, label))
    return out


def _joins_name(text: str, first: Span, second: tuple[int, int], words: DecodingWords) -> bool:
    gap = text[first[1]]
    return ("\u4e00" <= gap <= "\u9fff" and gap not in words.org_gap_words
            and not any(text.endswith(w, first[0], first[1]) for w in words.org_name_suffixes)
            and any(text.endswith(w, *second) for w in words.org_name_suffixes))


def repair_period_ends(text: str, spans: list[Span]) -> list[Span]:
    """A PERIOD that reads as no period because the tagger stopped one character short of a report's
    name (2025年中|报: 2025年中报) or ran into the number after it (24Q1-Q3|43家) ends where it reads as
    one: the following 报 is taken, the trailing digits are given back. A period's end word left to the
    METRIC after it (上半年|末资管规模) joins the PERIOD (上半年末: the balance's date), unless it opens
    the metric's own word (2021年|末期股息)."""
    starts = {a for a, _, _ in spans}
    metric_starts = {a for a, _, label in spans if label == "METRIC"}
    ends_taken = set()
    out = []
    for s, e, label in spans:
        if label == "PERIOD" and not _reads_as_period(text[s:e]):
            if text[e : e + 1] in "报報" and e not in starts and _reads_as_period(text[s : e + 1]):
                e += 1
            else:
                shorthand = _SHORTHAND_THEN_DIGITS.match(text, s, e)
                e = s + len(shorthand.group(1)) if shorthand and _reads_as_period(shorthand.group(1)) else e
        elif label == "PERIOD" and e in metric_starts and _takes_end_word(text, s, e):
            ends_taken.add(e)
            e += 1
        out.append((s, e, label))
    return [(s + 1, e, label) if label == "METRIC" and s in ends_taken else (s, e, label) for s, e, label in out]


def _takes_end_word(text: str, start: int, end: int) -> bool:
    return text[end : end + 1] in "末底" and text[end + 1 : end + 2] not in "期" \
        and parse_period(text[start : end + 1], PERIOD_PROBE_DATE).kind == "date"


def _reads_as_period(span: str) -> bool:
    return parse_period(span, PERIOD_PROBE_DATE).status == "ok"


def split_period_lists(text: str, spans: list[Span]) -> list[Span]:
    """A PERIOD over two periods joined by a slash (前三季度/Q3: the nine months and the quarter, each
    with its own figures) is two PERIODs; no gold PERIOD holds a slash."""
    out = []
    for s, e, label in spans:
        if label != "PERIOD" or "/" not in text[s:e]:
            out.append((s, e, label))
            continue
        for m in re.finditer(r"[^/\s]+", text[s:e]):
            out.append((s + m.start(), s + m.end(), "PERIOD"))
    return out


def _joined_names(name: str, words: DecodingWords) -> list[str] | None:
    for suffix in words.org_run_suffixes:
        if name.endswith(suffix):
            parts = re.findall(rf".{{{ORG_RUN_NAME_CHARS[0]},{ORG_RUN_NAME_CHARS[1]}}}?{re.escape(suffix)}", name)
            return parts if len(parts) > 1 and "".join(parts) == name else None
    return None


def complete_period_prefixes(text: str, spans: list[Span], words: DecodingWords | None = None) -> list[Span]:
    """A PERIOD starting at 年 takes the word before it that says which year (今|年前三季度 ->
    今年前三季度): no gold PERIOD starts at 年 after one, and without it the year is lost."""
    words = words or DecodingWords.load()
    out: list[Span] = []
    for s, e, label in spans:  # sorted and disjoint: the character before is free unless the last span ends there
        if label == "PERIOD" and text.startswith("年", s) and s > 0 and text[s - 1] in words.period_year_prefixes \
                and (not out or out[-1][1] < s):
            s -= 1
        out.append((s, e, label))
    return out


def _after_industry_scope(text: str, start: int, end: int, words: DecodingWords) -> int:
    """Where a METRIC starts once a leading 行业 or an inner 全行业的 is cut off (not 占行业比重)."""
    lead = _suffix_at(text, start, words.metric_industry_scope)
    cut = start + len(lead) if lead else start
    for word in words.metric_industry_scope_inside:
        found = text.find(word, cut, end)
        if found >= 0:
            cut = found + len(word)
    return cut if end - cut >= SPAN_MIN_CHARS else start


def split_coordinated_metrics(text: str, entities: list[Entity], relations: list[Relation],
                              sentence_end: dict[str, int], words: DecodingWords | None = None
                              ) -> tuple[list[Entity], list[Relation]]:
    """「A、B分别为X、Y」: one METRIC over A、B becomes A and B; X goes to A, Y to B.

    Only when a 'respectively' cue follows the METRIC in its sentence and each
    relation label links as many values as there are parts (else the METRIC
    stays whole: 贷款撮合、发放和服务费用 is one metric). ``sentence_end``: entity
    id -> the end of its sentence.
    """
    words = words or DecodingWords.load()
    by_id = {e.id: e for e in entities}
    new_entities, new_relations = [], list(relations)
    for ent in entities:
        end = sentence_end.get(ent.id, len(text))
        parts = _coordinated_parts(text, ent, end, words)
        values = {}
        for r in relations:
            if r.head == ent.id and r.label in ("metric_value", "metric_change"):
                values.setdefault(r.label, []).append(r.tail)
        if parts and values:
            values = _complete_from_runs(text, values, len(parts), _value_runs(text, ent, entities, end))
        if not parts or not values or any(len(v) != len(parts) for v in values.values()):
            new_entities.append(ent)
            continue
        ids = [f"{ent.id}.{k + 1}" for k in range(len(parts))]
        new_entities.extend(Entity(id=i, start=s, end=e, label="METRIC") for i, (s, e) in zip(ids, parts))
        shared = {t for tails in values.values() for t in tails}
        kept = [r for r in new_relations if ent.id not in (r.head, r.tail)
                and not (r.tail in shared and r.label in ("metric_value", "metric_change"))]
        for label, tails in values.items():
            for i, tail in zip(ids, sorted(tails, key=lambda t: by_id[t].start)):
                kept.append(Relation(head=i, tail=tail, label=label))
        for r in new_relations:
            if r.tail == ent.id and r.label == "org_metric":
                kept.extend(Relation(head=r.head, tail=i, label="org_metric") for i in ids)
        new_relations = kept
    return sorted(new_entities, key=lambda e: e.start), new_relations


# What joins the items of a list of values or of metric names (X、Y和Z; 总资产、净资产以及…).
_LIST_JOINER = re.compile(r"\s*(?:[、，,和及与與]|以及)\s*")


def share_metric_list(text: str, entities: list[Entity], relations: list[Relation],
                      sentence_end: dict[str, int], words: DecodingWords | None = None) -> list[Relation]:
    """「A、B、C分别达到X、Y和Z，较上年末分别增加U、V和W」 with A, B and C tagged apart: the k-th value of
    each run of as many values after the list goes to the k-th METRIC, with the label the relation
    head gave it (the head tends to hand a whole run to the first or the last name).

    Only when a 'respectively' cue follows the list in its sentence; a run none of whose values the
    head linked to the list stays as it is. Organisations linked to one name of the list own all.
    """
    words = words or DecodingWords.load()
    for names in _metric_lists(text, entities, sentence_end):
        end = sentence_end.get(names[-1].id, len(text))
        if not any(c in text[names[-1].end : end] for c in words.respectively_cues):
            continue
        relations = _share_runs(names, _value_runs(text, names[-1], entities, end), relations)
    return relations


def _metric_lists(text: str, entities: list[Entity], sentence_end: dict[str, int]) -> list[list[Entity]]:
    """Runs of two or more METRICs joined only by list words (平均注冊資本、總資產、凈資產)."""
    metrics = sorted((e for e in entities if e.label == "METRIC"), key=lambda e: e.start)
    runs: list[list[Entity]] = []
    for m in metrics:
        joined = runs and sentence_end.get(runs[-1][-1].id) == sentence_end.get(m.id) \
            and _LIST_JOINER.fullmatch(text[runs[-1][-1].end : m.start])
        if joined:
            runs[-1].append(m)
        else:
            runs.append([m])
    return [run for run in runs if len(run) > 1]


def _share_runs(names: list[Entity], runs: list[list[str]], relations: list[Relation]) -> list[Relation]:
    name_ids = [m.id for m in names]
    for run in (r for r in runs if len(r) == len(names)):
        labels = [r.label for r in relations if r.head in name_ids and r.tail in run
                  and r.label in ("metric_value", "metric_change")]
        if not labels:
            continue
        label = max(set(labels), key=labels.count)
        relations = [r for r in relations if not (r.tail in run and r.label in ("metric_value", "metric_change"))]
        relations += [Relation(head=m, tail=v, label=label) for m, v in zip(name_ids, run)]
    owners = {r.head for r in relations if r.label == "org_metric" and r.tail in name_ids}
    linked = {(r.head, r.tail) for r in relations if r.label == "org_metric"}
    return relations + [Relation(head=o, tail=m, label="org_metric") for o in sorted(owners) for m in name_ids
                        if (o, m) not in linked]


def _value_runs(text: str, ent: Entity, entities: list[Entity], sentence_end: int) -> list[list[str]]:
    """The VALUEs after a METRIC in its sentence, in runs joined by list words (X、Y和Z)."""
    after = sorted((e for e in entities if e.label == "VALUE" and ent.end <= e.start < sentence_end),
                   key=lambda e: e.start)
    runs: list[list[Entity]] = []
    for v in after:
        if runs and _LIST_JOINER.fullmatch(text[runs[-1][-1].end : v.start]):
            runs[-1].append(v)
        else:
            runs.append([v])
    return [[v.id for v in run] for run in runs]


def _complete_from_runs(text: str, values: dict[str, list[str]], n_parts: int,
                        runs: list[list[str]]) -> dict[str, list[str]]:
    """A label linking fewer values than the METRIC has parts takes the run of as many values that
    holds the linked ones (分別達到51.15億元、135.86億元和117.81億元, one of them linked elsewhere)."""
    out = {}
    for label, tails in values.items():
        if len(tails) != n_parts:
            tails = next((run for run in runs if len(run) == n_parts and set(tails) <= set(run)), tails)
        out[label] = list(tails)
    return out


def _coordinated_parts(text: str, ent: Entity, sentence_end: int, words: DecodingWords) -> list[tuple[int, int]]:
    if ent.label != "METRIC" or not any(c in text[ent.end : sentence_end] for c in words.respectively_cues):
        return []
    parts, start = [], ent.start
    separators = "|".join(map(re.escape, words.metric_list_separators))
    for m in [*re.finditer(separators, text[ent.start : ent.end]), None]:
        end = ent.start + m.start() if m else ent.end
        if end > start:
            parts.append((start, end))
        start = ent.start + m.end() if m else start
    return parts if len(parts) > 1 else []


def _glued_org(metric: str, org_names: list[str], words: DecodingWords) -> tuple[int, int] | None:
    """(org end, metric start) inside ``metric`` when an organisation is glued to its front."""
    for name in org_names:  # longest first: 招联消费金融 before 招联
        if metric.startswith(name) and len(metric) > len(name):
            rest = len(name) + len(_suffix_at(metric, len(name), words.org_metric_joiners) or "")
            rest += len(_suffix_at(metric, rest, words.metric_leading_words) or "")
            if len(metric) - rest >= 2:
                return len(name), rest
    for k in range(2, len(metric) - 2):
        suffix = next((x for x in words.org_name_suffixes if metric[:k].endswith(x) and k > len(x)), None)
        joiner = _suffix_at(metric, k, words.org_metric_joiners)
        if suffix and joiner and len(metric) - k - len(joiner) >= 2:
            return k, k + len(joiner)
    return None


def split_glued_orgs(text: str, entities: list[Entity], relations: list[Relation],
                     words: DecodingWords | None = None) -> tuple[list[Entity], list[Relation]]:
    """招联金融总资产 tagged as one METRIC: ORG 招联金融 -org_metric-> METRIC 总资产 (the METRIC keeps its id
    and relations)."""
    words = words or DecodingWords.load()
    org_names = sorted({text[e.start:e.end] for e in entities if e.label == "ORG" and e.end - e.start >= 2},
                       key=len, reverse=True)
    out_entities, out_relations = [], list(relations)
    for ent in entities:
        cut = _glued_org(text[ent.start:ent.end], org_names, words) if ent.label == "METRIC" else None
        if cut is None:
            out_entities.append(ent)
            continue
        org_id = f"{ent.id}.org"
        out_entities.append(Entity(id=org_id, start=ent.start, end=ent.start + cut[0], label="ORG"))
        out_entities.append(Entity(id=ent.id, start=ent.start + cut[1], end=ent.end, label="METRIC"))
        out_relations = [r for r in out_relations if not (r.tail == ent.id and r.label == "org_metric")]
        out_relations.append(Relation(head=org_id, tail=ent.id, label="org_metric"))
    return sorted(out_entities, key=lambda e: e.start), out_relations


# --- the rules by name, each switchable in an experiment config (``decoding.rules``) ----------------

# Span rules in the order they run, each (text, spans) -> spans.
SPAN_RULES: dict[str, Callable[[str, list[Span]], list[Span]]] = {
    "complete_suffixes": complete_suffixes,
    "complete_period_prefixes": complete_period_prefixes,
    "trim_leading_words": trim_leading_words,
    "trim_trailing_words": trim_trailing_words,
    "close_brackets": close_brackets,
    "merge_ranges": merge_ranges,
    "drop_currency_orgs": drop_currency_orgs,
    "drop_non_org_names": drop_non_org_names,
    "split_joined_orgs": split_joined_orgs,
    "join_split_orgs": join_split_orgs,
    "split_period_lists": split_period_lists,
    "repair_period_ends": repair_period_ends,
    "drop_short_metrics": lambda text, spans: drop_short_spans(spans, "METRIC"),
    "drop_short_periods": lambda text, spans: drop_short_spans(spans, "PERIOD"),
    "tag_declared_names": tag_declared_names,
    "tag_coded_names": tag_coded_names,
}
# Rules on entities and relations once the relations are scored, in the order they run:
# one_metric_per_value (caibao.model: a VALUE keeps its best METRIC), split_coordinated_metrics,
# share_metric_list, split_glued_orgs.
RELATION_RULES: tuple[str, ...] = ("one_metric_per_value", "split_coordinated_metrics", "share_metric_list",
                                   "split_glued_orgs")
RULES: tuple[str, ...] = (*SPAN_RULES, *RELATION_RULES)


def apply_span_rules(text: str, spans: list[Span], rules: Iterable[str] = RULES) -> list[Span]:
    """The span rules of ``rules`` (names; the others are skipped), in their fixed order."""
    wanted = set(rules)
    for name, rule in SPAN_RULES.items():
        if name in wanted:
            spans = rule(text, spans)
    return spans
