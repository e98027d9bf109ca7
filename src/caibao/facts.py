"""The fact builder: annotated (gold or predicted) documents -> metric facts.

One fact per (METRIC -> VALUE) relation, as the guide says. Organisation
and period come from the sentence's relations when there are any; else
they are resolved at document level and flagged ``inferred``:

* organisation: a list of organisations, 分别 and as many values of one
  metric share the values out in order (A和B总市值分别达到X和Y); a metric whose
  clause names many organisations together (43家上市券商合计, 行业) is an
  industry figure with no owner; else the nearest earlier mention, in the same
  paragraph (or bullet), of an organisation that owns facts elsewhere in the document
  (roundups name each company once and go on with 其/该公司); else the
  document's main organisation: the one named most, owning most facts,
  with a bonus for the title. Regulators, exchanges and data providers
  (央行, 港交所, 天眼查) are sources, never inferred owners. Mentions are grouped into organisations by alias statements
  (X（以下简称“Y”）) and legal-form/short-form rules (招联消费金融有限公司 =
  招联消金), cue words in ``resources/resolution.yaml``;
* period: relative periods (全年, 第三季度, 报告期, 去年同期 ...) are resolved
  against an explicit period earlier in the same sentence, else the
  publication date (or a timestamp printed at the top), else the report the
  article is about (the latest explicit period of a reported value; a report
  named with its year, 2022年半年报; in a dated article without any, a report
  or period word named without a year, 三季报, 前三季度); a forecast's relative
  period is resolved forward; a list of periods (2017年度、2018年度和2019年度，分别)
  or a span from one year to another (从A增至B) shares its values out in order;
  a value with no period takes the main period of the nearest earlier
  sentence that has one (an event's day, 截至11月2日, is not carried), else the
  report's period;
* balances (总资产, 余额, 不良率 ...) are as-of figures: a year, half or
  quarter linked to them becomes its end date (2024FY -> 2024-12-31).

Without a publication date the report period stands in for it: deictic
periods (今年, 去年) are read as if the article came out the day after that
period ended.

Both the gold side and the model side of the span-based fact score go
through this same code; ``caibao evaluate --facts`` scores the normalised
fields against hand-checked facts instead.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections import Counter
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from caibao.io import bundled_yaml
from caibao.normalize import is_guidance, is_money_metric, parse_period, parse_value, period_end, strip_trailing_hedge
from caibao.schema import Document, Entity, Fact, MetricRef, OrgRef, PeriodRef, Relation, ValueRef, sentence_bounds
from caibao.text import OPEN_BRACKET_AT_END, simplified

# A name this long or longer that opens exactly one longer name of the article is a short form of it.
MIN_SHORT_FORM = 2
# Title mentions count this many times more when choosing the main organisation.
TITLE_WEIGHT = 4
# Characters before a value searched for a growth rate over many years (近三年复合增长率为).
MANY_YEARS_REACH = 12
# An article whose title names no organisation is about one only when that one's weight is at least
# this many times the next one's (else it is a roundup of several).
MAIN_ORG_LEAD = 2
# An article is about the one company it says disclosed its report within this many characters of its
# start (事件:10/30,兴业证券披露三季度报…), unless its title names others.
REPORTER_REACH = 120
# Characters after a year searched for a listing or founding word (1996年 上市).
FOUNDING_REACH = 6
# Each fact an organisation owns through an org_metric relation counts this many mentions.
OWNED_FACT_WEIGHT = 2
# A page title (meta.title) longer than this is the page's text, not a title.
MAX_TITLE_CHARS = 80
# A "sentence" longer than this (text without punctuation) is read, and quoted in the fact, only
# this many characters either side of the value: its cues are near it, and the work stays linear.
MAX_SENTENCE_CHARS = 2_000
SENTENCE_WINDOW = 300


@dataclass(frozen=True)
class ResolutionCues:
    balance_metric_cues: tuple[str, ...]
    flow_metric_cues: tuple[str, ...]
    balance_metric_names: tuple[str, ...]
    backward_period_words: tuple[str, ...]
    reporting_body_cues: tuple[str, ...]
    paragraph_break: re.Pattern
    report_names: dict
    org_suffixes_dropped: tuple[str, ...]
    org_short_forms: dict
    alias_bridge: re.Pattern
    alias_words: tuple[str, ...]
    untagged_period_words: tuple[str, ...]
    hong_kong_period_words: tuple[str, ...]
    aggregate_subject: re.Pattern
    undated_metric_cues: tuple[str, ...]
    comparison_base_before: tuple[str, ...]
    bullet: re.Pattern
    period_ended_lengths: dict
    period_ended_results_words: tuple[str, ...]
    declared_unit: re.Pattern
    year_on_year_cues: tuple[str, ...]
    income_after_balance_name: tuple[str, ...]
    joint_total: re.Pattern
    cumulative_words: tuple[str, ...]
    currency_before_value: dict
    currency_declaration: re.Pattern
    currency_words: dict
    currency_styles: dict
    span_back_references: tuple[str, ...]
    article_dateline: re.Pattern
    anaphor: re.Pattern
    many_years: re.Pattern
    in_force_anaphors: tuple[str, ...]
    months_run: re.Pattern
    breakdown_openers: tuple[str, ...]
    share_out: re.Pattern
    research_source_after: re.Pattern
    currency_after_value: dict
    valuation_words: re.Pattern
    publisher_after: re.Pattern
    hong_kong_dollar_address: re.Pattern
    founding_words: tuple[str, ...]
    stock_code_near: re.Pattern
    report_disclosed_after: re.Pattern
    subsidiary_words: tuple[str, ...]

    @classmethod
    @functools.cache
    def load(cls) -> "ResolutionCues":
        raw = bundled_yaml("resolution.yaml")
        return cls(tuple(raw["balance_metric_cues"]), tuple(raw["flow_metric_cues"]),
                   tuple(raw["balance_metric_names"]), tuple(raw["backward_period_words"]),
                   tuple(raw["reporting_body_cues"]), re.compile(raw["paragraph_break"]), dict(raw["report_names"]),
                   tuple(raw["org_suffixes_dropped"]), dict(raw["org_short_forms"]), re.compile(raw["alias_bridge"]),
                   tuple(raw["alias_words"]), tuple(raw["untagged_period_words"]), tuple(raw["hong_kong_period_words"]),
                   re.compile("|".join(raw["aggregate_subject_patterns"])), tuple(raw["undated_metric_cues"]),
                   tuple(raw["comparison_base_before"]), re.compile(raw["bullet"]),
                   dict(raw["period_ended_lengths"]), tuple(raw["period_ended_results_words"]),
                   re.compile("|".join(f"(?:{p})" for p in raw["declared_unit_patterns"])),
                   tuple(raw["year_on_year_cues"]), tuple(raw["income_after_balance_name"]),
                   re.compile(raw["joint_total"]), tuple(raw["cumulative_words"]),
                   dict(raw["currency_before_value"]), re.compile(raw["currency_declaration"]),
                   dict(raw["currency_words"]),
                   _currency_styles(raw["currency_styles"]),
                   tuple(raw["span_back_references"]), re.compile(raw["article_dateline"], re.M),
                   re.compile(raw["anaphor"]), re.compile(raw["many_years"]), tuple(raw["in_force_anaphors"]),
                   re.compile(raw["months_run"]), tuple(raw["breakdown_openers"]),
                   re.compile(raw["share_out"]), re.compile(raw["research_source_after"]),
                   dict(raw["currency_after_value"]), re.compile("|".join(raw["valuation_words"])),
                   re.compile(raw["publisher_after"]), re.compile(raw["hong_kong_dollar_address"]),
                   tuple(raw["founding_words"]),
                   re.compile(r"[^。\n]{0,40}?(?:%s)\s*[:：]?\s*\d{3,6}" % "|".join(map(re.escape, raw["stock_code_words"]))),
                   re.compile(raw["report_disclosed_after"]), tuple(raw["subsidiary_words"]))


def _currency_styles(raw: dict) -> dict[str, tuple[tuple[re.Pattern, ...], ...]]:
    """currency -> groups of compiled patterns; a group that is not a list (the one-list form of an
    older file) is refused, not read character by character."""
    for code, groups in raw.items():
        if not isinstance(groups, list) or not all(isinstance(g, list) and g for g in groups):
            raise ValueError(f"resources/resolution.yaml: currency_styles.{code}: expected a list of lists of patterns")
    return {code: tuple(tuple(re.compile(p) for p in group) for group in groups) for code, groups in raw.items()}


def org_key(name: str, cues: ResolutionCues | None = None) -> str:
    """The grouping key of an organisation name: Simplified script, legal forms dropped, long forms
    shortened (招聯消費金融有限公司 -> 招联消金)."""
    cues = cues or ResolutionCues.load()
    key = simplified(re.sub(r"\s+", "", name))
    for suffix in cues.org_suffixes_dropped:
        if key.endswith(suffix) and len(key) > len(suffix) + 1:
            key = key[: -len(suffix)]
            break
    for long, short in cues.org_short_forms.items():
        key = key.replace(long, short)
    return key


def org_groups(doc: Document, cues: ResolutionCues | None = None) -> dict[str, str]:
    """ORG entity id -> the key of its organisation, alias statements followed."""
    cues = cues or ResolutionCues.load()
    orgs = sorted((e for e in doc.entities if e.label == "ORG"), key=lambda e: e.start)
    parent: dict[str, str] = {}

    def find(k: str) -> str:
        while parent.get(k, k) != k:
            k = parent[k]
        return k

    for a, b in zip(orgs, orgs[1:]):
        between, after = doc.text[a.end : b.start], doc.text[b.end : b.end + 2]
        # Inside brackets, and the bracket holds just the name or says it is one:
        # 招联消金（原名“招联消费金融”）, 乐信（LexinFintech）; not 招联消金、兴业消金, nor
        # 兴业消金（兴业银行旗下）.
        bracketed = any(c in between for c in "（(")
        closes = after[:1] in ("）", ")") or after in ("”）", "\")")
        says_alias = closes or any(w in between for w in cues.alias_words)
        if cues.alias_bridge.match(between) and bracketed and says_alias:
            ka, kb = find(org_key(doc.span_text(a), cues)), find(org_key(doc.span_text(b), cues))
            if ka != kb:
                parent[kb] = ka
    # A short form that opens exactly one longer name of the article (眾安 in 众安在线) is that name.
    keys = {org_key(doc.span_text(e), cues) for e in orgs}
    for short in sorted(keys, key=len):
        longer = {find(k) for k in keys if k != short and k.startswith(short)}
        if len(short) >= MIN_SHORT_FORM and len(longer) == 1 and find(short) not in longer:
            parent[find(short)] = longer.pop()
    return {e.id: find(org_key(doc.span_text(e), cues)) for e in orgs}


def is_balance(metric: str, cues: ResolutionCues | None = None) -> bool:
    """A metric measured at a moment (总资产, 贷款余额, 不良率), not over a period."""
    cues = cues or ResolutionCues.load()
    metric = simplified(metric)
    if _named_balance(metric, cues):
        return True
    return any(c in metric for c in cues.balance_metric_cues) and not any(c in metric for c in cues.flow_metric_cues)


def _named_balance(metric: str, cues: ResolutionCues) -> bool:
    """A balance named after a flow (累计发放贷款, 发放贷款及垫款), unless income or an expense follows
    the name (发放贷款和垫款利息收入), or a flow precedes 累计 (利润累计总和 is a sum of profits)."""
    for name in (c for c in cues.balance_metric_names if c in metric):
        at = metric.index(name)
        before, after = metric[:at], metric[at + len(name) :]
        summed_flow = name in cues.cumulative_words and any(c in before for c in cues.flow_metric_cues)
        if not summed_flow and not any(c in after for c in cues.income_after_balance_name):
            return True
    return False


def is_undated(metric: str, cues: ResolutionCues | None = None) -> bool:
    """A metric about no reporting period (持股, 注册资本, 目标价): only its own sentence dates it."""
    cues = cues or ResolutionCues.load()
    metric = simplified(metric)
    return any(c in metric for c in cues.undated_metric_cues)


def is_reporting_body(name: str, cues: ResolutionCues | None = None) -> bool:
    """A regulator, exchange, data provider or rating agency (央行, 港交所, 天眼查, 联合资信)."""
    cues = cues or ResolutionCues.load()
    return any(c in name for c in cues.reporting_body_cues)


def is_source(text: str, org: Entity, cues: ResolutionCues | None = None) -> bool:
    """The mention is a regulator or data source by its name (:func:`is_reporting_body`) that the
    text never introduces with a stock code, or a broker quoted for its research (中金發布研究報告稱，…
    遠東宏信…): the figures are not its own."""
    cues = cues or ResolutionCues.load()
    name = text[org.start : org.end]
    if is_reporting_body(name, cues):
        # 港交所(00388)公布中期業績: an exchange or agency listed itself reports its own results
        return not re.search(re.escape(name) + _TICKER_AFTER.pattern, text)
    return bool(cues.research_source_after.match(text, org.end))


def is_flow(metric: str, cues: ResolutionCues | None = None) -> bool:
    """A metric measured over a period (营收, 净利润, 新增贷款), not at a moment."""
    cues = cues or ResolutionCues.load()
    metric = simplified(metric)
    return not _named_balance(metric, cues) and any(c in metric for c in cues.flow_metric_cues)


def _title_end(text: str, start: int = 0) -> int:
    end = text.find("\n", start)
    return end if end > start else start


def main_org(doc: Document, owned: Counter | None = None, groups: dict[str, str] | None = None,
             span: tuple[int, int] | None = None) -> Entity | None:
    """The organisation the document is about: mentions + owned facts, title mentions weighted.

    ``owned``: facts per organisation key through org_metric relations. The
    organisation's first mention in the title (else in the body) stands for it.
    ``span``: one article of a page that holds several (:func:`article_starts`),
    its first line the title.
    """
    start, end = span or (0, len(doc.text))
    orgs = sorted((e for e in doc.entities if e.label == "ORG" and start <= e.start < end
                   and not is_source(doc.text, e)), key=lambda e: e.start)
    if not orgs:
        return None
    groups = groups if groups is not None else org_groups(doc)
    title_end = _title_end(doc.text, start)
    weight: Counter = Counter()
    for e in orgs:
        weight[groups[e.id]] += TITLE_WEIGHT if e.end <= title_end else 1
    in_text_title = {groups[e.id] for e in orgs if e.end <= title_end}
    in_title = in_text_title | _named_in_meta_title(doc, orgs, groups, start)
    for key in in_title - in_text_title:
        weight[key] += TITLE_WEIGHT  # 苏农银行2025年中报业绩稳健 in the page's title, not in its text
    for key, n in (owned or Counter()).items():
        if key in weight:  # a reporting body may own a fact, but is never the main organisation
            weight[key] += OWNED_FACT_WEIGHT * n
    first_seen = {}
    for e in orgs:
        first_seen.setdefault(groups[e.id], e)
    listed = {groups[e.id] for e in orgs if e.end <= title_end and _TICKER_AFTER.match(doc.text, e.end)}
    if len(listed) == 1:
        # 渤海租赁(000415)2025H1业绩点评: the title names its subject by its stock code, whatever
        # subsidiary (Avolon) owns more of the facts in the body
        return first_seen[listed.pop()]
    code_near = ResolutionCues.load().stock_code_near
    coded = {groups[e.id] for e in orgs if code_near.match(doc.text, e.end)
             and not OPEN_BRACKET_AT_END.search(doc.text, max(0, e.start - BRACKET_REACH), e.start)}
    if not in_title and len(coded) == 1:
        # 高阳科技(中国)有限公司* (於百慕达注册成立之有限公司) (股份代号:818) 截至…止年度之业绩公布: an untitled
        # results announcement is the company it introduces with its stock code
        return first_seen[coded.pop()]
    reporter = _reporter(doc.text, orgs, groups, start)
    if reporter is not None and (not in_title or reporter in in_title):
        # 事件:10/30,兴业证券披露三季度报…公司实现营收88.1亿元 (a broker note, its first line taken as the title): the
        # company whose report opens the article, however often its subsidiary (兴证全球基金) is named after
        return first_seen[reporter]
    ranked = sorted(weight.values(), reverse=True)
    if not in_title and len(ranked) > 1 and ranked[0] < MAIN_ORG_LEAD * ranked[1]:
        return None  # an industry roundup (券商APP活跃度创年内新高): no organisation leads it
    return next(first_seen[k] for k in first_seen if weight[k] == ranked[0])


def _reporter(text: str, orgs: list[Entity], groups: dict[str, str], start: int) -> str | None:
    """The one organisation that opens a clause near the article's start saying it disclosed its report
    (兴业证券披露三季度报), else None; none when the opening names a subsidiary, whose figures a parent's
    report discloses (新国都发布…年报。财报中同时披露了其控股子公司嘉联支付的业绩)."""
    cues = ResolutionCues.load()
    if any(w in text[start : start + REPORTER_REACH] for w in cues.subsidiary_words):
        return None
    reporters = {groups[e.id] for e in orgs if e.start < start + REPORTER_REACH
                 and cues.report_disclosed_after.match(text, e.end) and _CLAUSE_OPENS_BEFORE.search(text, start, e.start)}
    return reporters.pop() if len(reporters) == 1 else None


def _named_in_meta_title(doc: Document, orgs: list[Entity], groups: dict[str, str], start: int) -> set[str]:
    """The organisations a page's title (``meta.title``) names, for a text that does not open with that
    title on a line of its own (a research note flattened into one line, a byline first)."""
    title = ((doc.meta or {}).get("title") or "").strip()
    if start > 0 or not title or len(title) > MAX_TITLE_CHARS:  # a page whose "title" is its text
        return set()
    return {groups[e.id] for e in orgs if doc.span_text(e) in title}


# A clause opening right before a name: its subject (事件:10/30,|兴业证券披露…), not a parent named as an owner
# (根据其第一大股东|重庆百货发布的年报).
_CLAUSE_OPENS_BEFORE = re.compile(r"(?:^|[，,：:。；;！？\n])\s*$")

# A stock code right after a name: 渤海租赁(000415), 东兴证券（601198.SH）, 友邦(01299.HK).
_TICKER_AFTER = re.compile(r"\s*[（(]\s*(?:[A-Za-z]{2}[:：]?\s*)?\d{4,6}(?:\.[A-Za-z]{2})?\s*[)）]")


def article_starts(text: str) -> list[int]:
    """Where each article of a page starts: 0, and the title line above each later dateline
    (腾讯音乐Q3财报：业绩增长亮眼 / 观察者网· 2025-11-13 23:32), for pages that join several articles."""
    starts = [0]
    for m in ResolutionCues.load().article_dateline.finditer(text):
        title = text.rfind("\n", 0, max(0, m.start() - 1)) + 1
        if m.start() > 0 and title > starts[-1]:
            starts.append(title)
    return starts


def _cells(line: str, start: int) -> list[tuple[str, int, int]]:
    """A table line's cells with their offsets in the text: between bars, else between spaces."""
    sep = r"\|" if "|" in line else r"\s+"
    out, pos = [], 0
    for m in re.finditer(rf"[^|]+" if sep == r"\|" else r"\S+", line):
        cell = m.group()
        if cell.strip():
            lead = len(cell) - len(cell.lstrip())
            out.append((cell.strip(), start + m.start() + lead, start + m.start() + lead + len(cell.strip())))
    return out


def table_cell_units(text: str) -> list[tuple[int, int, str]]:
    """The cells of tables whose column or row names their unit: (start, end, unit word) of each cell
    under a header such as 增减变动幅度(%) (a 业绩快报) or 2025Q1末余额(亿元), or in a row named 不良贷款率(%),
    基本每股收益(元/股) or 营业收入(亿元). Cells are between bars, or between spaces on a line of several
    cells with a figure in it (指标 2025年Q1 同比变化)."""
    out, column_unit, width = [], {}, 0
    pos = 0
    for line in text.split("\n"):
        start, pos = pos, pos + len(line) + 1
        cells = _cells(line, start) if _is_table_line(line) else []
        if not cells:
            column_unit = {}
            continue
        if not any(_FIGURE_CELL.fullmatch(c) for c, _, _ in cells[1:]):  # a header row
            column_unit = {k: u for k, (c, _, _) in enumerate(cells) if (u := _unit_named(c))}
            width = len(cells)
            continue
        # a header without the row names' column (本报告期末 | 本报告期初 | 增减变动幅度(%)) aligns right
        shift = max(0, len(cells) - width)
        row_unit = _unit_named(cells[0][0])
        for k, (_, a, b) in enumerate(cells[1:], 1):
            unit = column_unit.get(k - shift) or row_unit
            if unit:
                out.append((a, b, unit))
    return out


def _is_table_line(line: str) -> bool:
    """A line of a table: cells between bars, or three or more cells between spaces."""
    return "|" in line or len(line.split()) >= 3


def _unit_named(cell: str) -> str | None:
    m = _UNIT_IN_NAME.search(cell)
    return None if m is None else "%" if m.group(1) in "%％" else re.sub(r"\s*/\s*股$", "", m.group(1))


# A row or column name ending in its unit: 增减变动幅度(%), 不良贷款率(%), 基本每股收益(元/股),
# 营业收入(亿元), 2025Q1末余额(亿元).
_UNIT_IN_NAME = re.compile(r"[（(]\s*([%％]|(?:人民币|人民幣)?(?:[千万萬亿億]|百万|百萬|万亿|萬億)?元(?:\s*/\s*股)?)\s*[)）]\s*$")
# A cell holding a figure (7,131, -0.01个百分点, +9.69%, 1.77%), not a name (2025年Q1, 2024年末).
_FIGURE_CELL = re.compile(r"[(（]?[-+−]?\d[\d,，]*(?:\.\d+)?[)）]?\s*(?:%|％|[a-zA-Z]{1,3}|个百分点|個百分點|倍)?")


def _split_at_bullets(text: str, bounds: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sentences cut where a bullet opens (- 运营收入为4.648亿元 [18] - 归属于...): a transcript's
    summary runs many bullets together without a full stop, and each says one thing."""
    bullet = ResolutionCues.load().bullet
    out = []
    for s, e in bounds:
        cuts = [m.start() for m in bullet.finditer(text, s, e) if m.start() > s]
        for a, b in zip([s, *cuts], [*cuts, e]):
            out.append((a, b))
    return out


class _Layout:
    """Sentence and paragraph numbers of every character of a text."""

    def __init__(self, text: str):
        self.text = text
        self.bounds = _split_at_bullets(text, sentence_bounds(text))
        self.sentence_no = [-1] * len(text)
        for k, (s, e) in enumerate(self.bounds):
            self.sentence_no[s:e] = [k] * (e - s)
        self.paragraph_no = [0] * len(text)
        breaks = [m.end() for m in ResolutionCues.load().paragraph_break.finditer(text)] + [len(text)]
        start = 0
        for n, end in enumerate(breaks):
            self.paragraph_no[start:end] = [n] * (end - start)
            start = end

    def sentence(self, pos: int) -> tuple[int, int]:
        k = self.sentence_no[pos]
        return self.bounds[k] if k >= 0 else (pos, pos)


class _Periods:
    """Period resolution for one document (see the module docstring)."""

    def __init__(self, doc: Document, layout: _Layout, periods_of_value: dict[str, list[Entity]],
                 guidance_sentences: set[int]):
        self.doc, self.layout, self.periods_of_value = doc, layout, periods_of_value
        self.guidance_sentences = guidance_sentences
        # a broker's valuation (基于2026年Non-GAAP净利润20倍市盈率进行估值) speaks of a year it forecasts
        valuation = ResolutionCues.load().valuation_words
        self.valuation_sentences = {k for k, (s, e) in enumerate(layout.bounds) if valuation.search(doc.text, s, e)}
        self.latest_written_year = max((int(m.group(1)) for m in _YEAR_NAMED.finditer(doc.text)), default=None)
        self.ents = doc.entity_by_id()
        self.doc_date = doc.meta.get("date") or _dateline(doc.text) or _source_date(doc.meta.get("source"))
        self.periods = sorted((e for e in doc.entities if e.label == "PERIOD"), key=lambda e: e.start)
        self.values_of_sentence: dict[int, list[Entity]] = {}
        for v in sorted((e for e in doc.entities if e.label == "VALUE"), key=lambda e: e.start):
            self.values_of_sentence.setdefault(layout.sentence_no[v.start], []).append(v)
        self.first_value = {k: vs[0] for k, vs in self.values_of_sentence.items()}
        self.explicit: list[tuple[Entity, str]] = []
        self.report_of_year = {e.id: n for e in self.periods if (n := _year_of_report(doc.text, e))}
        self.fiscal_year_end_month = _fiscal_year_end_month(doc.text)  # for fiscal quarters (2019财年第二季度)
        self.headings = _org_headings(doc.text, sorted((e for e in doc.entities if e.label == "ORG"),
                                                       key=lambda e: e.start))
        for e in self.periods:
            parsed = parse_period(doc.span_text(e))
            if parsed.status == "ok" and not parsed.relative and parsed.normalized:
                normalized = self._calendar(doc.span_text(e), parsed.normalized)
                self.explicit.append((e, self.report_of_year.get(e.id, normalized)))
        self.report = self._report_period(dict((e.id, n) for e, n in self.explicit))
        self.report_mentions = _report_mentions(doc.text)
        # 中證協表示,2022年,證券公司持續…。全行業…實作營業收入3949.73億元: a year opening a clause of a
        # sentence without figures dates the figures after it, as a report named there would
        self.year_openers = [(m.start(1), f"{m.group(1)}FY") for m in _YEAR_OPENER.finditer(doc.text)
                             if not self.values_of_sentence.get(layout.sentence_no[m.start(1)])]
        named = max((n for _, n in self.report_mentions), key=lambda n: period_end(n) or "", default=None)
        if named and (self.report is None or (period_end(named) or "") >= (period_end(self.report) or "")):
            # 2025年半年度报告显示 ... beside older comparison periods; 2022年中期业绩公告 beside 2022年Q2's ratios
            self.report = named
        ended = _fiscal_year_ended(doc.text)
        self.fiscal_year_end_day = ended[1] if ended else None  # MM-DD, for balances at the year's end
        self.fiscal_year = _fiscal_year_report(ended, self.doc_date)
        if self.fiscal_year:  # 新鴻基地產公布截至6月底全年業績 (September): the year ended in June, not the calendar one
            self.report = self.fiscal_year
        if self.report is None and self.year_openers and not self.doc_date:
            # 2024年,浙江网商银行…展现了…。全年实现营业收入… (undated; 2023年 only as a comparison base): the
            # year opening the article is the one it reports on
            self.report = max(n for _, n in self.year_openers)
        if self.report is None and self.doc_date:
            # 9家股份行三季报透视; 6家城商行前三季度均实现营收双增 (no PERIOD entity anywhere)
            self.report = _report_named_without_year(doc.text, self.doc_date) \
                or _period_word_in_text(doc.text, self.doc_date)
        # Without a publication date, the day after the report period ended stands in for it;
        # without any dated period, the end of the latest year the text names (2022年半年报显示，今年上半年...).
        self.reference_date = self.doc_date or self._day_after(self.report) or self._year_named(doc.text)
        if self.report is None and not self.periods:
            # 2025年上半年信托公司盈利指标排名分析 (undated, no PERIOD tagged): the latest period the
            # text names with its year
            self.report = _latest_period_with_year(doc.text)
        self._resolve_all()
        self.table_period, self.table_units = self._table_columns()
        # Spans of periods that values share out in order (2017年-2020年上半年，…分别为A、B、C、D), by
        # where they end: one PERIOD (2023-2025H) or two joined by a dash (2021年至去年).
        self.span_periods = {e.id: sp for e in self.periods if (sp := _span_periods(doc.span_text(e)))}
        self.span_periods.update({e.id: qs for e in self.periods if e.id not in self.span_periods
                                  and (qs := self._quarters_shared(e))})
        self.spans = sorted([(e.end, e.start, self.span_periods[e.id]) for e in self.periods if e.id in self.span_periods]
                            + self._period_pairs())
        self._dated_cache: dict[str, bool] = {}
        if self.report is None:  # only relative periods: the latest one they resolve to
            self.report = self._report_period({k: r.normalized for k, r in self.resolved.items()})
            # 中报显示…今年上半年… 期内，交易总数目为…: an anaphoric period now has a report to name
            self.resolved.update({e.id: self.resolve(e) for e in self.periods if self.resolved[e.id].normalized is None})

    def _report_period(self, normalized_of: dict[str, str | None]) -> str | None:
        """The latest period a reported (not forecast) value refers to; a period over an as-of date
        ending the same day (2024FY over 2024-12-31)."""
        # A fiscal year's quarter (2026财年第二季度) names the calendar one beside it less well.
        # Nor does a comparison base (增速较2023年的19.49%有所放缓, in an article on 2024).
        # Nor the year a company was listed or founded (長江基建自1996年上市28年來, in an undated article on 2024).
        bases = {p.id for p in self.periods if self._after_comparison_word(p) or _founding_after(self.doc.text, p.end)}
        forecasts = self.guidance_sentences | self.valuation_sentences
        linked = [normalized_of.get(p.id) for vid, ps in self.periods_of_value.items()
                  if self.layout.sentence_no[self.ents[vid].start] not in forecasts
                  for p in ps if not _is_fiscal(self.doc.span_text(p)) and p.id not in bases]
        candidates = [n for n in linked if n] or [n for k, n in normalized_of.items() if n and k not in bases]
        # a day that ends no month (截至2025年8月22日 a count of complaints) is when, not what, it reports
        candidates = [n for n in candidates if not _is_event_day(n)]
        # nor does a year past every year the text writes out (主力产品 30 年 IRR read as 2030, beside 2024 年)
        if self.latest_written_year is not None:
            candidates = [n for n in candidates if not n[:4].isdigit() or int(n[:4]) <= self.latest_written_year + 1]
        # of periods ending the same day, a month (2022年9月的活跃用户) names the report less well
        return max(candidates, key=lambda n: (period_end(n) or "", not _is_date(n), not _is_month(n)), default=None)

    @staticmethod
    def _year_named(text: str) -> str | None:
        """The end of the latest year the text speaks of, not as a listing or founding year; a year named as a
        comparison base (从2024年同期的10.7元增长至11.7元) stands for the year after it."""
        years = [int(m.group(1)) + bool(m.group(2)) for m in _YEAR_NAMED.finditer(text)
                 if not _founding_after(text, m.end())]
        return f"{max(years)}-12-31" if years else None

    def _quarters_shared(self, p: Entity) -> list[str] | None:
        """分季度来看，2025年前三个季度中，…分别实现营业收入A、B、C: the quarters of a first-N-quarters span,
        in order, when its sentence breaks the span down by quarter (分季度, 单季, 各季度); else None."""
        m = _FIRST_QUARTERS.fullmatch(self.doc.span_text(p).strip())
        s0, s1 = self.layout.sentence(p.start)
        if m is None or not _BY_QUARTER.search(self.doc.text, s0, s1):
            return None
        year = m.group(1) or (self.resolved[p.id].normalized or self.report or "")[:4]
        n = _quarter_number(m.group(2))
        return [f"{year}Q{q}" for q in range(1, n + 1)] if year.isdigit() and n >= 2 else None

    @staticmethod
    def _day_after(normalized: str | None) -> str | None:
        end = period_end(normalized)
        return (date.fromisoformat(end) + timedelta(days=1)).isoformat() if end else None

    def _anchor_in_sentence(self, p: Entity) -> str | None:
        """The last explicit period before ``p`` in its sentence that is not a comparison base:
        2025年第三季度…，较2025年第二季度的…，较2024年同期的… -> 2024Q3, not 2024Q2."""
        k = self.layout.sentence_no[p.start]
        before = [(e, n) for e, n in self.explicit if e.start < p.start and self.layout.sentence_no[e.start] == k]
        main = [n for e, n in before if not self._after_comparison_word(e)]
        return (main or [n for _, n in before] or [None])[-1]

    def _anchor_in_force(self, p: Entity) -> str | None:
        """For an anaphor of the period just spoken of (期内, 去年同期; ``in_force_anaphors``): the last
        period before it that carries forward (单计第三季，…；期内… -> the quarter, not the article's
        report), when one has been resolved; None otherwise (the report then stands in)."""
        if self.doc.span_text(p).strip() not in ResolutionCues.load().in_force_anaphors:
            return None
        # not a forecast's period (目标今年下半年出口…。期內，出口銷量… is the half reported)
        before = [e for e in self.periods if e.start < p.start and e.id in self.resolved and self._carries(e)
                  and not self._in_forecast(e)]
        return self.resolved[before[-1].id].normalized if before else None

    def _resolve_all(self) -> None:
        """Resolve the PERIODs in text order (an anaphor reads the periods resolved before it). An
        undated article whose 今年X turned out to be a year after an explicit X (今年第三季度 beside
        2023年第三季度) is about that later year: its report and reference date move there and every
        period is resolved again (今年前三季度, 去年同期 with them)."""
        self.later_year_periods: list[str] = []
        self._resolve_in_order()
        if self.later_year_periods and not self.doc_date:
            self.report = max(self.later_year_periods, key=lambda n: period_end(n) or "")
            self.reference_date = self._day_after(self.report)
            self._resolve_in_order()

    def _resolve_in_order(self) -> None:
        self.resolved = {}
        for e in self.periods:  # filled as it goes: an anaphor reads the periods before it
            self.resolved[e.id] = self.resolve(e)

    def _after_comparison_word(self, p: Entity) -> bool:
        before = self.doc.text[max(0, p.start - 2) : p.start].strip()
        return any(before.endswith(w) for w in ResolutionCues.load().comparison_base_before)

    def _in_forecast(self, p: Entity) -> bool:
        """A forecast's cue stands before the period or in its clause (预计第四季度…); a cue in a later
        clause (上半年新業務價值14.1億美元，差過分析員預期) leaves the period a reported one."""
        if self.layout.sentence_no[p.start] not in self.guidance_sentences:
            return False
        s0, s1 = self.layout.sentence(p.start)
        return is_guidance(self.doc.text[s0 : _clause_end(self.doc.text, p.end, s1)])

    def resolve(self, p: Entity) -> PeriodRef:
        """A PERIOD entity, normalised; relative ones against the sentence, the date or the report.
        A forecast's relative period (in a guidance sentence) is resolved forward."""
        text = self.doc.span_text(p)
        forward = self._in_forecast(p)
        if p.id in self.report_of_year:
            return PeriodRef(text=text, start=p.start, end=p.end, normalized=self.report_of_year[p.id], inferred=False)
        anchor = self._anchor_in_sentence(p) or self._anchor_in_force(p)
        parsed = parse_period(text, self.doc_date, anchor, forward=forward)
        if forward and parsed.relative and self.report:
            # 预计上半年净利润… in July beside the article's 2020年上半年: a profit warning forecasts the
            # report's own period, which had just ended, not the next one
            reported = parse_period(text, self.doc_date, anchor)
            parsed = reported if reported.normalized == self.report else parsed
        if parsed.relative and (parsed.status != "ok" or (anchor is None and (not self.doc_date or self.fiscal_year))) \
                and (self.report or self.reference_date):
            # a fiscal year's 全年/年內 (截至6月底全年業績, September) is the report's, not the calendar year's
            parsed = parse_period(text, self.reference_date, anchor or self.report, forward=forward)
        normalized = parsed.normalized
        if parsed.relative and not self.doc_date and normalized and text.startswith(_THIS_YEAR_WORDS) \
                and normalized in {n for e, n in self.explicit if e.start > p.start
                                   and self.layout.sentence_no[e.start] != self.layout.sentence_no[p.start]} \
                and normalized not in {n for e, n in self.explicit if e.start < p.start} \
                and normalized not in _periods_with_year(self.doc.text[: p.start]) \
                and normalized not in {n for _, n in self.report_mentions} \
                and not self._restated(p, normalized):
            # undated: 今年上半年 beside a later 2023年上半年 (其中，2023年上半年，净利润为12.64亿元) is a later
            # year's, unless the text names that report (发布了2025年半年度报告。报告显示，今年上半年…) or that
            # period before, tagged or not (2025年一季度，…。今年一季度，… restates it; 公布2017年首季香港保險業臨時統計
            # 數字。…今年首季…) or in the same sentence (申万宏源预计，今年上半年…；国泰海通预计2025年上半年…)
            normalized = _year_after(normalized)
            self.later_year_periods.append(normalized)
        return PeriodRef(text=text, start=p.start, end=p.end, normalized=self._calendar(text, normalized),
                         inferred=bool(parsed.relative))

    def _restated(self, p: Entity, normalized: str) -> bool:
        """A later sentence naming ``normalized`` with its year repeats a figure given after ``p``
        (今年首三季…毛保費增加7.1%至405億元 … 在2018年首三季，一般保險業務的毛保費為$405億): the same period."""
        text, k = self.doc.text, self.layout.sentence_no[p.start]
        later = [e for e, n in self.explicit if n == normalized and e.start > p.start]
        if not later:
            return False
        first_later = self.layout.sentence(later[0].start)[0]
        before = set(_FIGURE.findall(text, self.layout.bounds[k][0], first_later))
        after = {f for e in later for f in _FIGURE.findall(text, *self.layout.sentence(e.start))}
        return bool(before & after)

    def _calendar(self, text: str, normalized: str | None) -> str | None:
        """A fiscal quarter (2019财年第二季度) as the calendar quarter it covers, when the text says
        when the fiscal year ends (财务年度为截至3月31日的12个月 -> 2018Q3)."""
        m = re.fullmatch(r"(\d{4})Q([1-4])", normalized or "")
        if not m or not self.fiscal_year_end_month or not _is_fiscal(text):
            return normalized
        months_in = self.fiscal_year_end_month // 3 + int(m.group(2)) - 1  # quarters from the fiscal year's start
        return f"{int(m.group(1)) - 1 + months_in // 4}Q{months_in % 4 + 1}"

    def _table_columns(self) -> tuple[dict[str, PeriodRef], dict[str, str]]:
        """Values in a table whose header row names a period per column (项目 | 本报告期 | 上年同期 |
        增减变动幅度; 二零一六年 二零一五年): the k-th number of a row is the k-th column's. In a table
        with bars the columns count from the left; in one aligned by spaces from the right (a 附注
        column has no header of its own). Also the units a line under the header names per column
        (千港元 千港元 +/(-)), by value."""
        text, out, units_of = self.doc.text, {}, {}
        values = sorted((e for e in self.doc.entities if e.label == "VALUE"), key=lambda e: e.start)
        header: list[tuple[str, str]] = []
        pos = 0
        for line in text.split("\n"):
            start, pos = pos, pos + len(line) + 1
            cells = _cells(line, start)
            named_periods = [(c, self._column_period(c)) for c, _, _ in cells]
            periods = [(c, n) for c, n in named_periods if n]
            numbers = [(a, b) for (c, a, b), (_, n) in zip(cells, named_periods) if re.search(r"\d", c) and not n]
            if len(periods) >= 2 and not numbers:
                header, bars = periods, "|" in line
                # every column from the first period's on, a change column included (二零一六年 二零一五年 变动)
                first = next(k for k, (_, n) in enumerate(named_periods) if n)
                columns_named = named_periods[first:]
                column_units: list[str | None] = []
                continue
            if header and not numbers and len(cells) >= len(columns_named) and line.strip():
                # 千港元 千港元 +/(-); 每股港元 每股港元 变动 (a new block's units); any other line ends the units
                named = [_COLUMN_UNIT.fullmatch(c) for c, _, _ in cells[: len(columns_named)]]
                column_units = [m.group(1) if m else None for m in named] if any(named) else []
                if any(named):
                    extra = cells[len(columns_named) :]
                    if len(extra) == 1 and not _COLUMN_UNIT.fullmatch(extra[0][0]) and all(n for _, n in columns_named):
                        # 2022 2021 / 千港元 千港元 按年變化: a change column only the units line names
                        columns_named = columns_named + [(extra[0][0], None)]
                    continue
            if not header or not line.strip() or re.search(r"[。！？]", line):
                header = [] if re.search(r"[。！？]", line) or not line.strip() else header
                continue
            if not bars and len(numbers) == len(columns_named):
                _read_row(numbers, columns_named, column_units, values, out, units_of)
                continue
            columns = numbers[: len(header)] if bars else numbers[-len(header):]
            if not bars and len(numbers) < len(header):
                continue
            for (a, b), (cell, normalized) in zip(columns, header):
                for v in values:
                    if a <= v.start < b:
                        out[v.id] = PeriodRef(text=cell, normalized=normalized, inferred=True)
        return out, units_of

    def _column_period(self, cell: str) -> str | None:
        """A table header cell as a period (本报告期 (未经审计) -> the report's period), else None."""
        bare = re.sub(r"[（(][^）)]*[）)]", "", cell).strip()
        if not bare or len(bare) > 12:
            return None
        parsed = parse_period(bare, self.reference_date, self.report)
        return parsed.normalized if parsed.status == "ok" else None

    def _dated(self, p: Entity) -> bool:
        """Resolved, and neither a comparison base (去年同期, 从2020年的) nor an event's day (截至11月2日，
        已有160家公司披露), which must not carry forward."""
        if p.id not in self._dated_cache:
            self._dated_cache[p.id] = self._carries(p)
        return self._dated_cache[p.id]

    def _unsayable(self, p: Entity, pos: int) -> bool:
        """A run of months the format cannot say (前5个月; ``months_run``) that the sentence at ``pos``
        breaks down (其中，…): that sentence's figures are of the run too, so theirs is null."""
        cues = ResolutionCues.load()
        s0, _ = self.layout.sentence(pos)
        return self.resolved[p.id].normalized is None and bool(cues.months_run.search(self.doc.span_text(p))) \
            and self.layout.sentence_no[p.start] == self.layout.sentence_no[pos] - 1 \
            and self.doc.text[s0:pos].lstrip().startswith(cues.breakdown_openers)

    def _carries(self, p: Entity) -> bool:
        """:meth:`_dated`, uncached (also while the periods are being resolved)."""
        cues = ResolutionCues.load()
        backward = any(w in self.doc.span_text(p) for w in cues.backward_period_words) \
            or self._after_comparison_word(p)
        normalized = self.resolved[p.id].normalized
        year_ago = self.report and parse_period("去年同期", None, self.report).normalized
        return normalized is not None and not backward and not _is_event_day(normalized) and normalized != year_ago

    def main_period_before(self, pos: int) -> Entity | None:
        """The period of the first value of the nearest earlier sentence whose first value is dated.

        A sentence's first value carries its main period; later ones are often
        comparison bases (较2021年的3571.03亿元; 运营收入为4.648亿元，2020年第一季度为亏损9.611亿元),
        which must not leak into the next sentence: a sentence whose first value
        is undated carries the period it inherited. Falls back to the nearest
        dated period before.
        """
        here = self.layout.sentence_no[pos]
        # a period never carries past an organisation heading (4.国通星驿) into the next one's section
        floor = max((h.start for h in self.headings if h.start < pos), default=0)
        passed = False
        for k in range(here - 1, -1, -1):
            if self.layout.bounds[k][1] <= floor:
                return None
            first = self.first_value.get(k)
            if first is None:
                continue
            linked = self.periods_of_value.get(first.id, [])
            dated = [p for p in linked if self._dated(p)] or [p for p in linked if self._unsayable(p, pos)]
            if dated:
                return min(dated, key=lambda p: p.start)
            passed = passed or any(self._dated(p) for v in self.values_of_sentence[k]
                                   for p in self.periods_of_value.get(v.id, []))
        if passed:
            return None
        before = [e for e in self.periods if floor <= e.start < pos and self._dated(e)]
        return before[-1] if before else None

    def _period_pairs(self) -> list[tuple[int, int, list[str]]]:
        """Two PERIODs joined by a dash, a year and a later period (2017年-2020年上半年, 2021年至去年):
        (end, start, the full years from the first, then the last period)."""
        out = []
        for a, b in zip(self.periods, self.periods[1:]):
            na, nb = self.resolved[a.id].normalized or "", self.resolved[b.id].normalized or ""
            if not (na.endswith("FY") or na.endswith("-12-31")) or not nb[:4].isdigit() \
                    or not re.fullmatch(r"\s*[-–~至到]\s*", self.doc.text[a.end : b.start]):
                continue
            first, last = int(na[:4]), int(nb[:4])
            if 0 < last - first < 10:  # a year's end stands for the year (2017 年至 2019 年末，分别为A、B、C)
                end = f"{last}FY" if nb.endswith("-12-31") else nb
                out.append((b.end, a.start, [f"{y}FY" for y in range(first, last)] + [end]))
        return out

    def _year_pair_share(self, value: Entity, siblings: list[Entity]) -> PeriodRef | None:
        """2017年-2021年，营业收入分别为A、B、C、D、E: a span of periods in the value's sentence, and as
        many values of one metric after it: the k-th value is the k-th period. 报告期各期 (each period
        of the span named before) shares out the latest span with as many periods."""
        k = self.layout.sentence_no[value.start]
        ordered = sorted({v.start: v for v in siblings}.values(), key=lambda v: v.start)
        if value not in ordered:
            return None
        back = [p for p in self.periods_of_value.get(value.id, [])
                if self.doc.span_text(p).strip() in ResolutionCues.load().span_back_references]
        for end, start, periods in reversed(self.spans):
            in_sentence = self.layout.sentence_no[start] == k and all(v.start > end for v in ordered)
            earlier = back and end <= back[0].start
            if (in_sentence or earlier) and len(periods) == len(ordered):
                return PeriodRef(text=self.doc.text[start:end], start=start, end=end,
                                 normalized=periods[ordered.index(value)], inferred=not in_sentence)
        return None

    def _from_to(self, first: Entity, last: Entity) -> bool:
        """从A增至B, 由A降到B: two values of a change from one end of a span to the other."""
        before = self.doc.text[max(0, first.start - 2) : first.start]
        return bool(_FROM_WORD_BEFORE.search(before)) \
            and bool(re.fullmatch(r"\s*[^，,；;。]{0,4}[至到]\s*[约近超逾]?\s*", self.doc.text[first.end : last.start]))

    def _period_list_share(self, value: Entity, siblings: list[Entity]) -> PeriodRef | None:
        """2017年度、2018年度、2019年度和2020年1-6月，公司分别实现营业收入A、B、C、D: a list of
        explicit periods, and as many values of one metric after it: the k-th value is the k-th period."""
        k = self.layout.sentence_no[value.start]
        listed = [(e, n) for e, n in self.explicit if self.layout.sentence_no[e.start] == k]
        runs, run = [], listed[:1]
        for prev, cur in zip(listed, listed[1:]):
            # 2019年、2020年、2021年以及截至2022年上半年: a cut-off word may open the last item
            if re.fullmatch(r"\s*(?:[、，,和及与]|以及)\s*(?:截至|截止)?\s*", self.doc.text[prev[0].end : cur[0].start]):
                run.append(cur)
            else:
                runs.append(run)
                run = [cur]
        runs.append(run)
        for run in (r for r in runs if len(r) >= 2):
            ordered = sorted({v.start: v for v in siblings if v.start > run[-1][0].end}.values(), key=lambda v: v.start)
            if value in ordered and len(ordered) == len(run):
                e, n = run[ordered.index(value)]
                return PeriodRef(text=self.doc.span_text(e), start=e.start, end=e.end, normalized=n, inferred=False)
        return None

    def for_value(self, value: Entity, siblings: list[Entity] = (), from_document: bool = True,
                  balance: bool = False) -> PeriodRef | None:
        """``siblings``: the values of the same metric and relation in the value's sentence, which
        share out a span of years in order (2024-2027E营业收入分别为A、B、C、D). Without
        ``from_document`` only a period of the value's own sentence is taken. ``balance``: the value's
        metric is a balance, whose from-value (由X增至Y) may be of the year's start, not a year ago."""
        comparative = self._bracketed_comparative(value, from_document)
        if comparative is not None:
            return comparative
        linked = sorted(self.periods_of_value.get(value.id, []), key=lambda e: e.start)
        for p in linked:
            spanned = self.span_periods.get(p.id)
            shared = [v for v in siblings if p in self.periods_of_value.get(v.id, [])]
            ordered = sorted(shared, key=lambda v: v.start)
            if spanned and len(shared) == len(spanned):
                return PeriodRef(text=self.doc.span_text(p), start=p.start, end=p.end,
                                 normalized=spanned[ordered.index(value)], inferred=False)
            if spanned and len(shared) == 2 and self._from_to(*ordered):
                # 2021-2023年，信用减值损失从28.48亿元增至47.87亿元: the first and the last year
                return PeriodRef(text=self.doc.span_text(p), start=p.start, end=p.end,
                                 normalized=(spanned[0], spanned[-1])[ordered.index(value)], inferred=False)
        spanned = self._year_pair_share(value, siblings) or self._period_list_share(value, siblings)
        if spanned is not None:
            return spanned
        if value.id in self.table_period:
            return self.table_period[value.id]
        if linked:
            # With two period mentions (2022年，公司全年...) the explicit one is the more specific, a
            # part of a year beats the year it is in (2025年陆金所第一季度新增贷款: 2025Q1), and one that
            # resolves beats a word that names no period (报告|显示，…上半年新业务价值达…), though not a run of
            # months the format cannot say (累計前兩月…，2月…: the run's figure has no period).
            # Of equals, the one opening the value's part of a sentence split by semicolons (2016年年报显示，…；
            # 2017年一季报显示，该行营业收入…分别为5.51亿元: 2017Q1).
            refs = [self.resolved[p.id] for p in linked]
            years_split = {r.normalized[:4] for r in refs if r.normalized and not r.normalized.endswith("FY")}
            months_run = ResolutionCues.load().months_run
            part_start = self._semicolon_part_start(value)
            refs.sort(key=lambda r: (r.normalized is None and not months_run.search(r.text or ""),
                                     r.normalized is not None and r.normalized.endswith("FY")
                                     and r.normalized[:4] in years_split,
                                     r.inferred, _is_fiscal(r.text or ""),
                                     not (r.start is not None and part_start <= r.start < value.start)))
            return refs[0]
        inherited = self._inherited(value, from_document)
        if inherited is not None and inherited.normalized and self._year_ago_base(value, cued_only=balance):
            year_ago = parse_period("去年同期", None, inherited.normalized).normalized
            return PeriodRef(normalized=year_ago, inferred=True)
        return inherited

    def _semicolon_part_start(self, value: Entity) -> int:
        """Where the part of the value's sentence after its last semicolon before the value starts."""
        s0, _ = self.layout.sentence(value.start)
        return max(s0, max(self.doc.text.rfind(mark, s0, value.start) + 1 for mark in "；;"))

    def _bracketed_comparative(self, value: Entity, from_document: bool) -> PeriodRef | None:
        """A results release's comparative in brackets (每股基礎盈利為港幣0.63元（二零二四年：港幣1.12元）):
        the same period as the sentence's, in the year the bracket names (2024H1 beside 2025H1)."""
        m = _BRACKETED_YEAR.search(self.doc.text, max(0, value.start - BRACKET_REACH), value.start)
        if m is None:
            return None
        k = self.layout.sentence_no[value.start]
        before = [v for v in self.values_of_sentence.get(k, []) if v.end <= m.start()]
        main = self.for_value(before[-1]) if before else self._inherited(value, from_document)
        if main is None or not main.normalized:
            return None
        year = m.group(1).translate(_CN_DIGITS)
        same = parse_period(f"{year}年同期", None, main.normalized).normalized
        return PeriodRef(text=m.group(1) + "年", start=m.start(1), end=m.end(1) + 1, normalized=same, inferred=True)

    def _inherited(self, value: Entity, from_document: bool) -> PeriodRef | None:
        """The period of a value that names none: from the sentences before, a report, the document."""
        p = self.main_period_before(value.start)
        # (a year opener of the report's own year adds nothing: 2024年，是…关键一年。上半年… stays 2024H1)
        openers = [(pos, n) for pos, n in self.year_openers if n[:4] != (self.report or "")[:4]]
        since = [n for pos, n in sorted(self.report_mentions + openers) if (p.end if p else 0) <= pos < value.start]
        if since and from_document:  # 2024年3月，X被罚款…日前，19家民营银行2024年年报已披露完毕。资产规模…
            return PeriodRef(normalized=since[-1], inferred=True)
        if p is not None and (from_document or self.layout.sentence_no[p.start] == self.layout.sentence_no[value.start]):
            return self.resolved[p.id].model_copy(update={"inferred": True})
        if self.report and from_document:
            return PeriodRef(normalized=self.report, inferred=True)
        return None

    def _year_ago_base(self, value: Entity, cued_only: bool = True) -> bool:
        """The value a year-on-year change starts from (經營溢利由152億元，按年下降75.6%至37億元;
        不良率同比由1.2%降至1.1%) is the same period a year earlier; without ``cued_only``, a from-value
        of a period's flow or ratio with no cue (成本對收入比率由49%改善至47.1%) is too: a results release
        compares a period with the same one a year before."""
        text = self.doc.text
        s0, s1 = self.layout.sentence(value.start)
        if not _FROM_WORD_BEFORE.search(text[max(s0, value.start - 2) : value.start]):
            return False
        change = re.match(r"[^；;。]{0,16}?[至到]", text[value.end : s1])
        around = text[_clause_start(text, value.start, s0) : value.start] + (change.group() if change else "")
        return change is not None and (not cued_only or any(c in around for c in ResolutionCues.load().year_on_year_cues))


# The words that open a period of the current year (今年上半年).
_THIS_YEAR_WORDS = ("今年", "本年")

def _read_row(numbers: list[tuple[int, int]], columns: list[tuple[str, str | None]], units: list[str | None],
              values: list[Entity], out: dict[str, PeriodRef], units_of: dict[str, str]) -> None:
    """A row with a number under every column: each value takes its column's period (a change column's,
    the first period's) and the unit the line under the header names for it."""
    latest = next((c for c in columns if c[1]), None)  # a change column's figure is the latest period's
    for k, ((a, b), (cell, normalized)) in enumerate(zip(numbers, columns)):
        for v in values:
            if a <= v.start < b:
                cell, normalized = (cell, normalized) if normalized else latest
                out[v.id] = PeriodRef(text=cell, normalized=normalized, inferred=True)
                if k < len(units) and units[k]:
                    units_of[v.id] = units[k]


def _quarter_number(digit: str) -> int:
    """一…四 or 1…4 as a number (第三季度, 前3季度)."""
    return "一二三四".find(digit) + 1 or int(digit)


# A span of a year's first quarters (2025年前三个季度中) and the words that break it down by quarter.
_FIRST_QUARTERS = re.compile(r"(?:((?:19|20)\d{2})\s*年)?\s*前\s*([二三四2-4])\s*[个個]?\s*季度?\s*[中内內]?")
_BY_QUARTER = re.compile(r"分季度|分季|单季|單季|各季度?|逐季")

# A figure precise enough to recognise when restated (405 of 405億元, 7.1 of 7.1%; not a bare 3 or 20,
# nor a year).
_FIGURE = re.compile(r"(?<![\d.])(?!(?:19|20)\d\d(?![\d.]))(?:\d{3,}(?:\.\d+)?|\d+\.\d+)(?![\d.])(?!\s*年)")

# A table's column unit on the line under its header (千港元 千港元 +/(-); 人民币百万元).
_COLUMN_UNIT = re.compile(r"(?:每股)?((?:人民币|人民幣)?[千万萬百亿億]*(?:港元|港幣|港币|元|美元)|%)")

# A year in the text (2024 年), perhaps named as a year-ago comparison base (2024 年同期).
_YEAR_NAMED = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*[)）]?\s*年(\s*同期)?")  # 去（2025）年 too

# A year opening a clause (，2022年，证券公司…): the time the clause speaks of.
_YEAR_OPENER = re.compile(r"(?:^|(?<=[。！？!?\n，,：:]))\s*((?:19|20)\d{2})\s*年度?\s*[，,]")

# 从/從/由/自 (perhaps with a hedge) right before a value: the start of a change (从28.48亿元增至47.87亿元).
_FROM_WORD_BEFORE = re.compile(r"[从從由自][约約近超逾]?$")

# （二零二四年：港幣 | (2023年: before a VALUE: a release's comparative figure for that year.
_BRACKETED_YEAR = re.compile(r"[（(]\s*((?:19|20)\d{2}|[〇零一二三四五六七八九]{4})\s*年\s*[:：]\s*"
                             r"(?:港幣|港币|人民幣|人民币|美元)?\s*$")
BRACKET_REACH = 16

# A year written in Chinese numerals (二零一六年年度业绩公告), read as digits where a report is looked for.
_CN_YEAR = re.compile(r"[〇零一二三四五六七八九]{4}(?=\s*年)")
_CN_DIGITS = str.maketrans("〇零一二三四五六七八九", "00123456789")


def _report_mentions(text: str) -> list[tuple[int, str]]:
    """Where the text names a report with its year, and the period it covers (2025年半年度报告 ->
    2025H1), in order of position. The Chinese-numeral years are read as digits (same length)."""
    text = _CN_YEAR.sub(lambda m: m.group().translate(_CN_DIGITS), text)
    found = list(_reports_of_period_ended(text))
    for suffix, alternatives in _report_alternatives().items():
        for m in re.finditer(rf"(?<!\d)((?:19|20)\d{{2}})\s*年?\s*(?:{alternatives})", text):
            found.append((m.start(), f"{m.group(1)}{suffix}"))
    return sorted(found)


def _report_named(text: str) -> str | None:
    """The latest report the text names with its year (2025年半年度报告 -> 2025H1), else None."""
    return max((n for _, n in _report_mentions(text)), key=lambda n: period_end(n) or "", default=None)


# How many characters after 止年度 / 止六個月 a results word may stand (止年度的經審核綜合業績).
RESULTS_WORD_WINDOW = 12


def _reports_of_period_ended(text: str):
    """Results releases named by the period they close (截至2024年12月31日止年度的經審核綜合業績 ->
    2024FY; 截至2025年6月30日止六個月的業績 -> 2025H1; 截至9月30日止三個月 -> 2025Q3)."""
    cues = ResolutionCues.load()
    lengths = "|".join(sorted(map(re.escape, cues.period_ended_lengths), key=len, reverse=True))
    results = "|".join(map(re.escape, cues.period_ended_results_words))
    pattern = rf"(?:截至|截止)\s*((?:19|20)\d{{2}})\s*年\s*(\d{{1,2}})\s*月\s*\d{{1,2}}\s*日\s*止\s*({lengths})" \
              rf"(?=[^。；;\n]{{0,{RESULTS_WORD_WINDOW}}}(?:{results}))"
    for m in re.finditer(pattern, text):
        year, end_month, months = int(m.group(1)), int(m.group(2)), cues.period_ended_lengths[m.group(3)]
        if end_month % 3:
            continue  # a fiscal period of another calendar: not one of ours
        if months == 12 and end_month == 12:
            yield m.start(), f"{year}FY"
        elif months == end_month:
            yield m.start(), f"{year}{ {3: 'Q1', 6: 'H1', 9: 'Q1-Q3'}[months] }"
        elif months == 3:
            yield m.start(), f"{year}Q{end_month // 3}"


# A timestamp near the top (国际金融报· 2025-08-18 17:42): when the article came out.
_DATELINE_RE = re.compile(r"(?<!\d)((?:19|20)\d{2})-(\d{1,2})-(\d{1,2})\s+\d{1,2}:\d{2}")
DATELINE_WINDOW = 300


def _dateline(text: str) -> str | None:
    """The publication date an undated article prints near its top with a time of day, else None."""
    m = _DATELINE_RE.search(text[:DATELINE_WINDOW])
    if not m:
        return None
    try:
        return date(*map(int, m.groups())).isoformat()
    except ValueError:
        return None


# A date in a page's address (/html/2025-11/1007285.html, /news/202009/, /report/600837/202310310012.html,
# /content/2024/08/28/): a path segment opening with the year and month, perhaps the day, when the page
# went up; or a whole date closing the file name (/k2/1820363-20250829.htm).
_SOURCE_DATES = (
    re.compile(r"/(?P<y>(?:19|20)\d{2})[-_/]?(?P<m>0[1-9]|1[0-2])(?:[-_]?(?P<d>0[1-9]|[12]\d|3[01])"
               r"|/(?P<d2>0[1-9]|[12]\d|3[01])(?=[/_\-]))?(?=[/_.\-]|\d{4}\.)"),
    # a day in the page's file name, perhaps before its number (detail-20230616-2680480.html)
    re.compile(r"[-_](?P<y>(?:19|20)\d{2})(?P<m>0[1-9]|1[0-2])(?P<d>0[1-9]|[12]\d|3[01])(?=(?:[-_]\d+)?\.\w+$)"),
    # an article id opening with its day (new.qq.com/rain/a/20240912A03DGL00)
    re.compile(r"/(?P<y>20\d{2})(?P<m>0[1-9]|1[0-2])(?P<d>0[1-9]|[12]\d|3[01])[A-Z][0-9A-Z]{5,}(?![0-9A-Za-z])"),
)

# A 24-hex-digit MongoDB ObjectId as a part of an address; its first 8 digits are a Unix time.
_OBJECT_ID_RE = re.compile(r"(?<![0-9a-fA-F])([0-9a-f]{8})[0-9a-f]{16}(?![0-9a-fA-F])")
# ObjectIds appeared in 2009: an earlier "date" is a hex string of another kind.
OBJECT_ID_FIRST_YEAR = 2009


def _source_date(source: str | None) -> str | None:
    """When a page went up, from its address (the month's first day when the day is not given), else None.
    A MongoDB ObjectId in the address (pk=672a171c8e9f0946292c69ed) starts with the second it was made."""
    m = next((m for pattern in _SOURCE_DATES if (m := pattern.search(source or ""))), None)
    if not m:
        return _object_id_date(source or "")
    groups = m.groupdict()
    year, month, day = m["y"], m["m"], m["d"] or groups.get("d2")
    try:
        return date(int(year), int(month), int(day or 1)).isoformat()
    except ValueError:
        return None


def _object_id_date(source: str) -> str | None:
    m = _OBJECT_ID_RE.search(source)
    if not m:
        return None
    made = datetime.fromtimestamp(int(m.group(1), 16), tz=timezone.utc).date()
    return made.isoformat() if OBJECT_ID_FIRST_YEAR <= made.year <= date.today().year else None


def _report_alternatives() -> dict[str, str]:
    """Period suffix -> a regex alternation of the report names covering it (longest first)."""
    return {suffix: "|".join(sorted(map(re.escape, names), key=len, reverse=True))
            for suffix, names in ResolutionCues.load().report_names.items()}


def _year_of_report(text: str, period: Entity) -> str | None:
    """A bare year named as a report's (2022年半年报显示): the period the report covers (2022H1)."""
    year = re.fullmatch(r"\s*((?:19|20)\d{2})\s*年?\s*", text[period.start : period.end])
    if not year:
        return None
    for suffix, alternatives in _report_alternatives().items():
        if re.match(rf"\s*年?\s*(?:{alternatives})", text[period.end : period.end + 12]):
            return f"{year.group(1)}{suffix}"
    return None


def _report_named_without_year(text: str, doc_date: str) -> str | None:
    """The report a dated text names without a year (9家股份行三季报透视, dated 2025-11-04): the latest
    such report whose period ended before the date (2025Q1-Q3); the latest of several, else None."""
    try:
        published = date.fromisoformat(str(doc_date)[:10])
    except ValueError:
        return None
    found = []
    for suffix, alternatives in _report_alternatives().items():
        if not re.search(rf"(?<![半季])(?:{alternatives})", text):  # 年报 inside 半年报 is not the annual report
            continue
        for year in (published.year, published.year - 1):
            end = period_end(f"{year}{suffix}")
            if end and date.fromisoformat(end) < published:
                found.append(f"{year}{suffix}")
                break
    return max(found, key=lambda n: period_end(n) or "", default=None)


def _period_words(with_hong_kong: bool = False) -> str:
    cues = ResolutionCues.load()
    words = cues.untagged_period_words + (cues.hong_kong_period_words if with_hong_kong else ())
    return "(?:" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + ")"


def _in_forecast_clause(text: str, m: re.Match) -> bool:
    """A forecast's cue stands in the match's sentence before it or in its clause (预计第四季度的总交付量)."""
    s0 = max((text.rfind(c, 0, m.start()) for c in "。！？!?\n"), default=-1) + 1
    return is_guidance(text[s0 : _clause_end(text, m.end(), len(text))])


def _founding_after(text: str, pos: int) -> bool:
    """A listing or founding word right after ``pos`` (自1996年|上市28年來): the year before it is the company's
    history, not the period an article reports on."""
    return text[pos : pos + FOUNDING_REACH].lstrip().startswith(ResolutionCues.load().founding_words)


def _periods_with_year(text: str) -> set[str]:
    """The periods a year opens in ``text`` (2017年首季, 2025年上半年), tagged or not, normalised."""
    return {n for m in re.finditer(r"(?:19|20)\d{2}\s*年\s*" + _period_words(with_hong_kong=True), text)
            if (n := parse_period(m.group()).normalized)}


def _latest_period_with_year(text: str) -> str | None:
    """The latest period word a year opens (2025年上半年, beside 2024年上半年) outside a forecast's
    clause, else None."""
    found = []
    for m in re.finditer(r"(?:19|20)\d{2}\s*年\s*" + _period_words(), text):
        parsed = parse_period(m.group())
        if parsed.status == "ok" and parsed.normalized and not _in_forecast_clause(text, m):
            found.append(parsed.normalized)
    return max(found, key=lambda n: period_end(n) or "", default=None)


def _period_word_in_text(text: str, doc_date: str) -> str | None:
    """The first relative period word of a dated text (前三季度, 上半年) outside a forecast's clause
    (预计第四季度的总交付量), resolved against the date."""
    for m in re.finditer(_period_words(), text):
        if _in_forecast_clause(text, m):
            continue
        parsed = parse_period(m.group(), doc_date)
        if parsed.status == "ok" and parsed.normalized:
            return parsed.normalized
    return None


_FISCAL_END_RE = re.compile(r"(?:财务年度|財務年度|会计年度|會計年度|财政年度|財政年度|财年|財年)[为為是]?\s*(?:截至|截止)(\d{1,2})月")
_FISCAL_QUARTER_END_RE = re.compile(
    r"(?:截至|截止)\s*(?:19|20)\d{2}\s*年\s*(\d{1,2})\s*月\s*\d{1,2}\s*日[的之]?\s*(?:19|20)\d{2}\s*(?:财年|財年)\s*第([一二三四1-4])")


def _fiscal_year_end_month(text: str) -> int | None:
    """The month a fiscal year other than the calendar one ends in, as the text says it (公司财务年度为截至
    3月31日的12个月; 截至2018年9月30日的2019财年第二季度 -> 3), else None."""
    m = _FISCAL_END_RE.search(text)
    if m and int(m.group(1)) in (3, 6, 9):
        return int(m.group(1))
    m = _FISCAL_QUARTER_END_RE.search(text)
    if m:
        quarter = _quarter_number(m.group(2))
        month = (int(m.group(1)) + 3 * (4 - quarter) - 1) % 12 + 1
        return month if month in (3, 6, 9) else None
    return None


def _is_fiscal(period_text: str) -> bool:
    return "财年" in period_text or "財年" in period_text


_YEAR_SPAN_RE = re.compile(r"((?:19|20)?\d{2})\s*年?\s*[-–~至到]\s*((?:19|20)?\d{2})(.{0,8})")


def _span_periods(text: str) -> list[str] | None:
    """The periods a span of years shares out in order: full years, and the last year as the span's
    end names it (2023-2025年 -> 2023FY…2025FY; a prospectus's 2019-2022年前三季度 and a note's
    2023-2025H -> 2019FY, 2020FY, 2021FY, 2022Q1-Q3), else None."""
    m = _YEAR_SPAN_RE.fullmatch(text.strip())
    if not m:
        return None
    first, last = (int(y) + (2000 if len(y) == 2 else 0) for y in m.group(1, 2))
    if not 0 < last - first < 10:
        return None
    tail = m.group(3).strip()
    end = f"{last}FY" if tail in _FULL_YEAR_TAILS else _part_of_year(last, tail)
    return [f"{y}FY" for y in range(first, last)] + [end] if end else None


# What may close a span of full years: 年, 年度, 年末 (a year's end stands for the year when values
# share it out: 2017 年至 2019 年末，营业收入分别为A、B、C) and a forecast's E.
_FULL_YEAR_TAILS = ("", "年", "年度", "年末", "年底", "E", "e", "年E")


def _part_of_year(year: int, tail: str) -> str | None:
    """The part of ``year`` a span's end names (上半年, 前三季度, H1; a note's bare H is the first half)."""
    tail = "H1" if tail in ("H", "h") else tail
    parsed = parse_period(f"{year}{'' if tail[:1].isascii() else '年'}{tail.lstrip('年')}")
    ok = parsed.status == "ok" and not parsed.relative and (parsed.normalized or "")[:4] == str(year)
    return parsed.normalized if ok else None


def _cell_start(text: str, pos: int, sentence_start: int) -> int:
    """Where the table cell holding ``pos`` starts in its sentence: a forecast's cue in another cell
    (股份│預測明年股息率 … 沽空 $5.12億; 比率 30.237%) is another column's. A table flattened into one
    line runs each row's last cell into the next row's first: the value opening a cell (│5.3厘滙豐控股)
    is the column's, under its header, and keeps the sentence."""
    cell = max(sentence_start, max(text.rfind(bar, sentence_start, pos) for bar in "│|") + 1)
    return sentence_start if not text[cell:pos].strip() else cell


def _clause_start(text: str, pos: int, sentence_start: int, marks: str = "，,；;") -> int:
    """Where the clause holding ``pos`` starts: after the last of ``marks`` before it in its sentence."""
    return max([text.rfind(c, sentence_start, pos) for c in marks] + [sentence_start - 1]) + 1


def _clause_end(text: str, pos: int, sentence_end: int) -> int:
    """The end of the clause holding ``pos``: a forecast's cue stands before its value or in its
    clause (实现营收10亿元，低于分析师预期的12亿元: only the 12亿元 is a forecast)."""
    m = re.compile(r"[，,；;]").search(text, pos, sentence_end)
    return m.start() if m else sentence_end


def _is_date(normalized: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", normalized))


def _is_month(normalized: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}", normalized))


def _is_event_day(normalized: str) -> bool:
    """A day that ends no month (2023-11-02): when something happened, not a reporting period."""
    if not _is_date(normalized):
        return False
    day = date.fromisoformat(normalized)
    return (day + timedelta(days=1)).month == day.month


# A flow measured up to a quarter's end (截至6月末, 净利润...) covers the year so far.
_YEAR_TO_DATE = {"03-31": "Q1", "06-30": "H1", "09-30": "Q1-Q3", "12-31": "FY"}


# A period written as an end point (截至6月末, 2024年底, 9月30日): what a balance is measured at.
_END_POINT = re.compile(r"末|底|止|截至|截止|\d\s*日|[号號]")
END_POINT_REACH = 3  # 截至 just before the span
# A span of months from the year's start (1-6月, 1—9月份, 前11个月, 前三季度): what a 累计 flow sums over,
# where 上半年 beside 累计放贷规模 more often dates a total since the company began.
_MONTH_SPAN = re.compile(r"(?<!\d)1\s*[-－—–~至到]\s*\d{1,2}\s*月|前\s*[一二三四五六七八九十两\d]+\s*个?(?:月|季度)")


def _summed_over_span(text: str, metric: str, period: PeriodRef | None, cues: ResolutionCues) -> bool:
    """A metric that is a balance only by its 累计 (累计交易额, 累计净利润) summed over a span its
    sentence names (今年1-6月, 前三季度): a flow over that span, not a figure at its end (截至2025年6月)."""
    if period is None or not period.text or period.start is None or not period.normalized:
        return False
    if not _MONTH_SPAN.search(period.text) \
            or _END_POINT.search(text[max(0, period.start - END_POINT_REACH) : period.end]):
        return False
    if not any(w in metric for w in cues.cumulative_words):
        return False
    bare = metric
    for w in cues.cumulative_words:
        bare = bare.replace(w, "")
    return not is_balance(bare, cues)


def _compared_with_year_ago(period: PeriodRef | None, text: str, value: Entity) -> PeriodRef | None:
    """A year-on-year change in a clause after the year-ago base it is measured against (2024年同期經營利潤為
    1600萬美元，同比增長19.1%): the change is of the period a year after the base. In the base's own clause
    (去年同期增速为1.14%) it is the base period's."""
    if period is None or not period.normalized or not re.match(r"\d{4}", period.normalized) \
            or not _YEAR_AGO_BASE.fullmatch((period.text or "").strip()) or period.end is None \
            or not (period.end <= value.start and re.search(r"[，,；;]", text[period.end : value.start])):
        return period
    return period.model_copy(update={"normalized": _year_after(period.normalized)})


def _year_after(normalized: str) -> str:
    """The same period a year later (2024Q3 -> 2025Q3, 2024-09-30 -> 2025-09-30)."""
    return f"{int(normalized[:4]) + 1}{normalized[4:]}"


# A clause summing up its year (累計全年, 全年累計): its figure is the year's, not the month named before it.
_FULL_YEAR = re.compile(r"累[計计]全年|全年累[計计]|全年[稅税]")
# A clause summing up the year so far (累計稅後盈餘, after 2月單月): the months from January to the month.
_CUMULATIVE = re.compile(r"累[計计積积]")
_YEAR_TO_MONTH_END = {3: "Q1", 6: "H1", 9: "Q1-Q3", 12: "FY"}


# A period named as a year-ago base: 2024年同期, 去年同期, 上年同期 (not 同期 alone, the period in force).
_YEAR_AGO_BASE = re.compile(r"(?:(?:19|20)\d{2}\s*年|去年|上年|上一年|上年度)\s*同期")


def _as_of(period: PeriodRef | None, fiscal_year_end_day: str | None = None) -> PeriodRef | None:
    """A balance's period: the end date of the period it is linked to; a year's end is the fiscal
    year's (``fiscal_year_end_day``, MM-DD) when the article reports on a year ending then."""
    if period is None or not period.normalized:
        return period
    if fiscal_year_end_day and period.normalized.endswith("FY"):
        return period.model_copy(update={"normalized": f"{period.normalized[:4]}-{fiscal_year_end_day}"})
    return period.model_copy(update={"normalized": period_end(period.normalized)})


# A results release for a year not ending in December (截至2024年3月31日止年度; 公布截至6月底全年業績;
# 截至6月底止，全年股东应占亏损): its years end then, named by the year they end in.
_FISCAL_YEAR_ENDED = re.compile(r"截[至止]\s*(?:((?:19|20)\d{2})\s*年)?\s*(\d{1,2})\s*月\s*(?:(\d{1,2})\s*日|底|末)"
                                r"\s*止?\s*[的之]?\s*[，,]?\s*(?:全年|年度|财年|財年)")


def _fiscal_year_ended(text: str) -> tuple[str | None, str] | None:
    """(year or None, MM-DD) of the fiscal year the article reports on, when it is not the calendar year."""
    m = _FISCAL_YEAR_ENDED.search(text)
    if m is None:
        return None
    month = int(m.group(2))
    day = int(m.group(3)) if m.group(3) else monthrange(2001, month)[1] if 1 <= month <= 12 else 0
    if not 1 <= month <= 11 or day < 28:  # a calendar year, or no month's end
        return None
    return m.group(1), f"{month:02d}-{day:02d}"


def _fiscal_year_report(ended: tuple[str | None, str] | None, doc_date: str | None) -> str | None:
    """The fiscal year a results release reports on, from :func:`_fiscal_year_ended` (截至2025年6月30日止年度 ->
    2025FY; 截至6月底全年業績 in an article of 2025-09-04 -> 2025FY, the last such year ended by then), else None."""
    if ended is None:
        return None
    year, month_day = ended
    if year is None and doc_date:
        published = str(doc_date)[:10]
        year = published[:4] if f"{published[:4]}-{month_day}" < published else str(int(published[:4]) - 1)
    return f"{year}FY" if year else None


def _year_to_date(period: PeriodRef | None, report: str | None, fiscal_year_end_day: str | None = None) -> PeriodRef | None:
    """A flow's period: a quarter-end date becomes the year to that date (2025-06-30 -> 2025H1),
    or the quarter ending then when the article reports on that quarter (2025Q2), or the fiscal year
    ending then when the article reports on a fiscal year (截至6月底全年業績: 2025FY; its base 2024FY)."""
    if period is None or not period.normalized or not _is_date(period.normalized):
        return period
    if fiscal_year_end_day and report and report.endswith("FY") and period.normalized[5:] == fiscal_year_end_day:
        # the fiscal year ending that day, the report's or an earlier one (2021年:8,861,335,000港元 in 六福's
        # results for the year to March 2022: 2021FY)
        return period.model_copy(update={"normalized": f"{period.normalized[:4]}FY"})
    if report and not _is_date(report) and "Q" in report and "-" not in report \
            and period_end(report) == period.normalized:
        return period.model_copy(update={"normalized": report})
    ytd = _YEAR_TO_DATE.get(period.normalized[5:])
    return period.model_copy(update={"normalized": period.normalized[:4] + ytd}) if ytd else period


def build_facts(doc: Document) -> list[Fact]:
    """One fact per metric_value / metric_change relation of ``doc``, its organisation, period,
    unit and guidance resolved at document level. Gold annotations carry no scores (confidence 1);
    a prediction's confidence is the product of its metric's, value's and relation's probabilities
    (their ``score``)."""
    facts_of = _DocumentFacts(doc)
    facts = [facts_of.fact(r) for r in doc.relations if r.label in ("metric_value", "metric_change")
             and r.head in facts_of.ents and r.tail in facts_of.ents]
    facts.sort(key=lambda f: (f.value.start, f.metric.start))
    return facts


class _DocumentFacts:
    """What every fact of one document is resolved against: its layout, organisations, periods,
    declared units and the relations' siblings."""

    def __init__(self, doc: Document):
        self.doc, self.text = doc, doc.text
        self.ents = ents = doc.entity_by_id()
        self.layout = _Layout(doc.text)
        self.cues = cues = ResolutionCues.load()
        groups = org_groups(doc, cues)
        self.org_of_metric: dict[str, list[Entity]] = {}
        periods_of_value: dict[str, list[Entity]] = {}
        for r in doc.relations:
            if r.head not in ents or r.tail not in ents:
                continue
            if r.label == "org_metric":
                self.org_of_metric.setdefault(r.tail, []).append(ents[r.head])
            elif r.label == "value_period":
                periods_of_value.setdefault(r.head, []).append(ents[r.tail])
        owned = Counter(groups[o.id] for os_ in self.org_of_metric.values() for o in os_)
        # A page of several articles has a main organisation per article (owning that article's facts).
        starts = article_starts(doc.text)
        self.main_orgs = [(a, main_org(doc, Counter(groups[o.id] for m, os_ in self.org_of_metric.items()
                                                    if a <= ents[m].start < b for o in os_), groups, (a, b)))
                          for a, b in zip(starts, starts[1:] + [len(doc.text)])]
        # Owners of facts elsewhere in the document, never a regulator or data source named nearby.
        # A parenthetical mention (国通星驿(新大陆旗下), 京东数科(简称...)) qualifies the name before it.
        self.org_mentions = sorted((e for e in doc.entities if e.label == "ORG" and groups[e.id] in owned
                                    and not is_source(doc.text, e, cues)
                                    and self.text[:e.start].rstrip()[-1:] not in ("(", "（")), key=lambda e: e.start)
        guidance_sentences = {k for k, (s, e) in enumerate(self.layout.bounds) if is_guidance(self.text[s:e])}
        self.declared_units = [(m.start(), "".join(g for g in m.groups() if g))
                               for m in cues.declared_unit.finditer(self.text)]
        self.declared_currencies = [(m.end(), cues.currency_words[m.group(1) or m.group(2)])
                                    for m in cues.currency_declaration.finditer(self.text)]
        styled = f"{doc.meta.get('source') or ''}\n{self.text}"  # a .hk address counts as Hong Kong style
        self.style_currency = next((code for code, groups in cues.currency_styles.items()
                                    if any(all(p.search(styled) for p in group) for group in groups)), None)
        self.dollar_is_hkd = self.style_currency == "HKD" \
            or bool(cues.hong_kong_dollar_address.search(doc.meta.get("source") or ""))
        self.periods = _Periods(doc, self.layout, periods_of_value, guidance_sentences)
        self.cell_units = table_cell_units(doc.text)
        self.fiscal_year_end_day = self.periods.fiscal_year_end_day
        self.org_entities = sorted((e for e in doc.entities if e.label == "ORG"), key=lambda e: e.start)
        self.tails_of: dict[tuple[str, str, int], list[Entity]] = {}
        for x in doc.relations:
            if x.tail in ents:
                key = (x.head, x.label, self.layout.sentence_no[ents[x.tail].start])
                self.tails_of.setdefault(key, []).append(ents[x.tail])

    def fact(self, r: Relation) -> Fact:
        text, layout = self.text, self.layout
        metric, value = self.ents[r.head], self.ents[r.tail]
        s0, s1 = layout.sentence(value.start)
        if s1 - s0 > MAX_SENTENCE_CHARS:  # text without punctuation: read the value in a window around it
            s0, s1 = max(s0, value.start - SENTENCE_WINDOW), min(s1, value.end + SENTENCE_WINDOW)
        parsed = self.value_of(metric, value, text[s0:s1], s0)
        siblings = self.tails_of[(r.head, r.label, layout.sentence_no[value.start])]
        kind = "change" if r.label == "metric_change" else "level"
        confidence = math.prod([1.0 if x.score is None else x.score for x in (metric, value, r)])
        period = self.period_of(metric, value, siblings, s0, yoy_change=kind == "change" and parsed.basis == "yoy")
        return Fact(
            doc_id=self.doc.id,
            org=self.org_for(metric, value, siblings),
            metric=MetricRef(text=text[metric.start : metric.end], start=metric.start, end=metric.end),
            value=ValueRef(text=text[value.start : value.end], start=value.start, end=value.end,
                           number=parsed.number, unit=parsed.unit, kind=kind,
                           basis=parsed.basis if kind == "change" else None,
                           approx=bool(parsed.approx), low=parsed.low, high=parsed.high),
            period=period,
            guidance=self.is_forecast(value, period, text[_cell_start(text, value.start, s0) : _clause_end(text, value.end, s1)]),
            confidence=round(confidence, 4),
            sentence=text[s0:s1],
        )

    def is_forecast(self, value: Entity, period: PeriodRef | None, clause: str) -> bool:
        """A forecast: a cue in the value's clause; a year of a forecast span (2024 - 2027E营业收入分别为
        A、B、C、D) is one when it had not ended by the publication date (or after the report's year)."""
        spanned = _span_periods(period.text or "") if period and period.normalized else None
        if not spanned or not re.search(r"[Ee]\s*$", period.text or ""):
            return is_guidance(clause)
        last_actual = int(self.periods.doc_date[:4]) - 1 if self.periods.doc_date else \
            int(self.periods.report[:4]) if self.periods.report else None
        return is_guidance(clause) if last_actual is None else int(period.normalized[:4]) > last_actual

    def value_of(self, metric: Entity, value: Entity, sentence: str, s0: int):
        """The value parsed in its sentence, with the unit a table, a headline or a currency before
        it implies."""
        doc, span = self.doc, self.text[value.start : value.end]
        parsed = parse_value(span, sentence, value.start - s0)
        for unit in self._table_units_of(metric, value):
            if parsed.unit is not None or not _BARE_NUMBER.fullmatch(span):
                break
            parsed = parse_value(span + unit, sentence, value.start - s0)
        if parsed.unit is None and parsed.number is not None and re.search(r"[亿億万萬]$", span) \
                and is_money_metric(doc.span_text(metric)):
            # Headlines drop the currency (两年亏损11亿): a scaled amount of money is yuan.
            parsed = dataclasses.replace(parsed, unit="CNY")
        bare_cents = parsed.unit == "HKD" and re.search(r"(?<![港美])仙$", span) and self.declared_currencies
        if bare_cents:  # 每股6.84仙 under （美元,下同）: the declared currency's cents
            parsed = dataclasses.replace(parsed, unit=self.document_currency(value.start))
        if parsed.unit == "USD" and _BARE_DOLLAR.match(span) and self.dollar_is_hkd:
            # 一般保險業務的毛保費為$405億 in a Hong Kong article: Hong Kong dollars
            parsed = dataclasses.replace(parsed, unit="HKD")
        if parsed.unit == "CNY" and not re.search(r"人民|RMB|CNY|¥", span, re.I):
            # 港幣三十億四千八百萬元 (yuan of Hong Kong), （美元‧下同）... 12.6億元, 按年 in a Hong Kong article
            currency = _currency_before(self.text, value.start, self.cues) \
                or _currency_after(self.text, value.end, self.cues) or self.document_currency(value.start)
            if currency:
                parsed = dataclasses.replace(parsed, unit=currency)
        return parsed

    def _table_units_of(self, metric: Entity, value: Entity):
        """The units a table implies for a bare number, in the order they are tried: the one declared above
        it (单位: 人民币 百万元), its column's (a 千港元 column), its cell's name's (增减变动幅度(%) | -2.75)."""
        declared = _unit_before(self.declared_units, value.start) \
            if value.id in self.periods.table_period and _takes_declared_unit(self.doc.span_text(metric)) else None
        column = self.periods.table_units.get(value.id)
        cell = next((u for a, b, u in self.cell_units if a <= value.start < b), None)
        return [u for u in (declared, column, cell) if u]

    def document_currency(self, pos: int) -> str | None:
        """The currency of a bare yuan amount at ``pos``: the last declaration before it (（美元‧下同）), or
        the first one when none is (it follows the amount it is attached to), else the article's market
        style (a Hong Kong stock code and 按年: HKD), else None (renminbi)."""
        declared = [code for end, code in self.declared_currencies if end <= pos] or \
            [code for _, code in self.declared_currencies[:1]]
        return declared[-1] if declared else self.style_currency

    def period_of(self, metric: Entity, value: Entity, siblings: list[Entity], sentence_start: int,
                  yoy_change: bool = False) -> PeriodRef | None:
        """The value's period, as its clause reads it (累計全年 after a month; a year-on-year change after
        its year-ago base)."""
        period = self._period_of_metric(metric, value, siblings)
        if period is not None and _is_month(period.normalized or ""):
            period = self._month_or_year_to_it(period, value, sentence_start)
        return _compared_with_year_ago(period, self.text, value) if yoy_change else period

    def _month_or_year_to_it(self, period: PeriodRef, value: Entity, sentence_start: int) -> PeriodRef:
        """A month's figure, or the year's so far when the words read after the month sum up: 兆豐金去年12月
        稅後淨利31.05億元，累計全年稅後淨利350.96億元 (the year); 玉山金2月單月稅後純益30.2億元，累計稅後盈餘70.4億元
        (January and February: a run of months the format cannot say, so null)."""
        start = _clause_start(self.text, value.start, sentence_start)
        if period.end is not None and sentence_start <= period.end <= value.start:
            start = min(start, period.end)  # what the sentence says after the month, up to the value
        read = re.split(r"[；;]", self.text[start : value.start])[-1]  # not past a semicolon's other subject
        year, month = period.normalized[:4], int(period.normalized[5:7])
        if _FULL_YEAR.search(read):
            return period.model_copy(update={"normalized": f"{year}FY"})
        if _CUMULATIVE.search(read) and month > 1:
            so_far = _YEAR_TO_MONTH_END.get(month)
            return period.model_copy(update={"normalized": f"{year}{so_far}" if so_far else None})
        return period

    def _period_of_metric(self, metric: Entity, value: Entity, siblings: list[Entity]) -> PeriodRef | None:
        """The value's period; a balance's as-of date, a flow's span from the year's start."""
        name = self.doc.span_text(metric)
        if self.cues.many_years.search(name + "|" + self.text[max(0, value.start - MANY_YEARS_REACH) : value.start]):
            return None  # 近三年复合增长率为124.36%: a span of years the period format cannot say
        balance = is_balance(name, self.cues)
        period = self.periods.for_value(value, siblings, from_document=not is_undated(name, self.cues), balance=balance)
        if balance and not _summed_over_span(self.text, name, period, self.cues):
            return _as_of(period, self.fiscal_year_end_day)
        if is_flow(name, self.cues):
            report = self.periods.report
            if period is not None and _is_event_day(period.normalized or "") and report and not _is_date(report):
                # 11月1日，富途公布…营收…: a flow is never of the day it was announced, but of the report
                return period.model_copy(update={"normalized": report, "inferred": True})
            return _year_to_date(period, report, self.fiscal_year_end_day)
        return period

    def org_for(self, metric: Entity, value: Entity, siblings: list[Entity]) -> OrgRef | None:
        text, layout, cues = self.text, self.layout, self.cues
        listed = _listed_owner(text, layout, self.org_entities, value, siblings)
        if listed is not None:  # 宁波银行和杭州银行总市值分别达到1881.36亿元和1191亿元
            return OrgRef(text=text[listed.start : listed.end], start=listed.start, end=listed.end, inferred=False)
        orgs = sorted(self.org_of_metric.get(metric.id, []), key=lambda e: e.start)
        # Several owners of one metric (A为1600亿，B为946亿): each value belongs to the
        # owner named nearest before it; a value before all of them has no owner here.
        before = [o for o in orgs if o.start < value.start]
        owner = before[-1] if before else (orgs[0] if len(orgs) == 1 else None)
        if owner is not None:
            owner = self.owner_in_run(owner, orgs, value, siblings)
        inferred = owner is None
        source = owner is not None and is_source(text, owner, cues)
        if (owner is None or source) and _aggregate_subject(text, layout, metric, cues, self.org_entities):
            return None  # 43家上市券商合计实现营业收入: an industry figure belongs to no one organisation
        if _joint_total(text, layout, metric, self.org_entities, cues):
            return None  # 中国平安、中国人寿以及新华保险共实现归母净利润: a total of several
        if source and cues.publisher_after.match(text, owner.end):
            # 壽險公會公布…壽險業保費收入: the publisher of an industry's figures owns none of them (央行累计注销
            # 牌照102张, a regulator's own deed, stays its own)
            return None
        if owner is None:
            owner = self.nearest_owner(value)
        if owner is None or _COUNTED.search(text, max(0, owner.start - COUNT_REACH), owner.start):
            return None  # 31家持牌消费金融公司的注册资本总和: a class of organisations, counted
        return OrgRef(text=text[owner.start : owner.end], start=owner.start, end=owner.end, inferred=inferred)

    def owner_in_run(self, owner: Entity, orgs: list[Entity], value: Entity, siblings: list[Entity]) -> Entity:
        """``owner`` ends a list of owners of the metric: as many values after it share the list out in
        order (微众银行、裕民银行增幅较快，为21.70%和21.40%); one value of them all (海通证券、国泰君安…其归母
        净利润均超过30亿元; 招商银行、兴业银行均同比收窄12BP) is the first one's, as the fact gold keeps one."""
        s0, _ = self.layout.sentence(owner.start)
        run = next((r for r in _org_runs(self.text, self.org_entities, s0, owner.end) if r[-1] is owner), [owner])
        if len(run) < 2 or not all(o in orgs for o in run):
            return owner
        after = sorted({v.start: v for v in siblings if v.start > owner.end}.values(), key=lambda v: v.start)
        return run[after.index(value)] if len(after) == len(run) and value in after else run[0]

    def nearest_owner(self, value: Entity) -> Entity | None:
        """A sentence that names no owner: the last owner named before in the paragraph, else the
        organisation heading above, else the document's main organisation."""
        para = self.layout.paragraph_no[value.start]
        near = [o for o in self.org_mentions if o.start < value.start and self.layout.paragraph_no[o.start] == para]
        if self.opens_with_anaphor(value):  # 财达证券前三季度营收和净利润双双下滑…。公司前三季度实现营业收入…
            subjects = [o for o in self.org_entities if o.start < value.start and self.layout.paragraph_no[o.start] == para
                        and self.opens_sentence(o) and not is_source(self.text, o, self.cues)]
            near = subjects or near
        above = [o for o in self.periods.headings if o.start < value.start]
        return near[-1] if near else above[-1] if above else self.main_org_at(value.start)

    def opens_sentence(self, org: Entity) -> bool:
        """The organisation is the subject of its sentence or clause: nothing but a bullet before it
        (财务数据显示，财达证券前三季度营收和净利润双双下滑)."""
        s0, _ = self.layout.sentence(org.start)
        return not self.text[_clause_start(self.text, org.start, s0, "，,；;：:") : org.start].strip(" \t-•·■")

    def opens_with_anaphor(self, value: Entity) -> bool:
        """The value's sentence, or its clause, opens with 公司/该行 (perhaps after a period): it is the
        organisation that opened a sentence last before it, whether or not that one owns other facts."""
        s0, _ = self.layout.sentence(value.start)
        return any(self.cues.anaphor.match(self.text, start) for start in {s0, _clause_start(self.text, value.start, s0)})

    def main_org_at(self, pos: int) -> Entity | None:
        return next(org for start, org in reversed(self.main_orgs) if start <= pos)


# A dollar sign without its country (US$, HK$): the article's own dollars.
_BARE_DOLLAR = re.compile(r"[-+−]?\s*\$")
_BARE_NUMBER = re.compile(r"\s*[(（]?[-+−]?\d[\d,，]*(?:\.\d+)?[)）]?\s*")


def _takes_declared_unit(metric: str) -> bool:
    """An amount of money, not a ratio, a per-share figure or a count (基本每股收益(元/股), 净资产收益率(%))."""
    return is_money_metric(metric) and not re.search(r"每股|率|[(（][^)）]*[)）]", metric)


def _unit_before(declared: list[tuple[int, str]], pos: int) -> str | None:
    """The scale and currency the nearest unit declaration before ``pos`` gives (百万元), else None."""
    before = [unit for start, unit in declared if start < pos]
    return before[-1] if before else None


def _aggregate_subject(text: str, layout: _Layout, metric: Entity, cues: ResolutionCues,
                       orgs: list[Entity] = ()) -> bool:
    """The metric's clause is about many organisations together (17家A股城商行的资产总额, 行业信托资产规模),
    or its sentence is, with no organisation named since (2024年57家信托公司平均实现营业收入X，…；平均实现
    利润总额Y; 新三板40家小贷公司共实现营业收入)."""
    s0, _ = layout.sentence(metric.start)
    cut = max((m.end() for m in re.finditer(r"[，,；;：:]", text[s0 : metric.start])), default=0)
    if cues.aggregate_subject.search(text[s0 + cut : metric.end]):
        return True
    since = max((o.end for o in orgs if s0 <= o.start and o.end <= metric.start), default=s0)
    return bool(cues.aggregate_subject.search(text[since : metric.end]))


def _currency_before(text: str, start: int, cues: ResolutionCues) -> str | None:
    """The currency a word right before a VALUE names (港幣|三十億元 -> HKD), else None."""
    before = strip_trailing_hedge(text[max(0, start - CURRENCY_REACH) : start])
    return next((code for word, code in cues.currency_before_value.items() if before.endswith(word)), None)


def _currency_after(text: str, end: int, cues: ResolutionCues) -> str | None:
    """The currency a word right after a VALUE names (一百九十九亿元|人民币 -> CNY), else None."""
    after = text[end : end + CURRENCY_REACH].lstrip()
    return next((code for word, code in cues.currency_after_value.items() if after.startswith(word)), None)


# How far before a VALUE a currency word is looked for (港幣 0.63元).
CURRENCY_REACH = 6


# A count of organisations right before an ORG span (31家|持牌消费金融公司) makes it a class of them.
_COUNTED = re.compile(r"(?:\d+|[一二三四五六七八九十百两兩]+)\s*家\s*$")
COUNT_REACH = 8


def _joint_total(text: str, layout: _Layout, metric: Entity, orgs: list[Entity], cues: ResolutionCues) -> bool:
    """The metric follows a list of organisations and a word of totalling (A、B以及C共实现…; A和B合计…)."""
    s0, _ = layout.sentence(metric.start)
    runs = _org_runs(text, orgs, s0, metric.start)
    if not runs or len(runs[-1]) < 2:
        return False
    return bool(cues.joint_total.match(text, runs[-1][-1].end, metric.start))


def _org_runs(text: str, orgs: list[Entity], start: int, end: int) -> list[list[Entity]]:
    """The ORG mentions within [start, end), grouped into lists (A、B和C; A以及B), in order."""
    runs: list[list[Entity]] = []
    for o in (o for o in orgs if start <= o.start and o.end <= end):
        if runs and (runs[-1][-1].end == o.start or _LIST_JOINER.fullmatch(text, runs[-1][-1].end, o.start)):
            runs[-1].append(o)
        else:
            runs.append([o])
    return runs


_LIST_JOINER = re.compile(r"\s*(?:[、，,和及与與跟]|以及)\s*")


# A line that names one organisation and nothing else, perhaps numbered or with a bracket
# (2.拉卡拉; 1.连连数字(原连连支付)): the lines below it, up to the next such line, are about it.
_HEADING_NUMBER = re.compile(r"\s*(?:\d{1,2}\s*[.、．]|[一二三四五六七八九十]{1,3}\s*、|[（(]\d{1,2}[)）])?\s*")
_HEADING_AFTER = re.compile(r"\s*(?:[（(][^()（）\n]{0,30}[)）])?\s*[:：]?\s*(?:\n|$)")


def _org_headings(text: str, orgs: list[Entity]) -> list[Entity]:
    """The ORG mentions that make a heading line of their own, in order."""
    return [o for o in orgs if _HEADING_NUMBER.fullmatch(text, text.rfind("\n", 0, o.start) + 1, o.start)
            and _HEADING_AFTER.match(text, o.end)]


def _listed_owner(text: str, layout: _Layout, orgs: list[Entity], value: Entity,
                  siblings: list[Entity]) -> Entity | None:
    """A list of organisations, then 分别 and as many values of one metric: the k-th value is the k-th
    organisation's (A、B、C分别实现营业收入X、Y和Z)."""
    ordered = sorted({v.start: v for v in siblings}.values(), key=lambda v: v.start)
    if len(ordered) < 2 or value not in ordered:
        return None
    s0, _ = layout.sentence(value.start)
    # the values after the last 分别 before this one (共有A、B…7家险企保险业务收入突破千亿元，分别达到X、Y…;
    # 凈利潤超過1億元的還有A、B、C，分別為X、Y、Z: not 千亿元, 1億元)
    cues = list(ResolutionCues.load().share_out.finditer(text[s0 : value.start]))
    if not cues:
        return None
    cue_at = s0 + cues[-1].start()
    runs = _org_runs(text, orgs, s0, cue_at)
    after = [v for v in ordered if v.start > cue_at]
    if not runs or len(runs[-1]) != len(after) or value not in after:
        return None
    return runs[-1][after.index(value)]


def fact_key(f: Fact) -> tuple:
    """What must agree for two facts to match in the span-based evaluation."""
    period = (f.period.start, f.period.end) if f.period and f.period.start is not None else None
    return (f.doc_id, f.value.start, f.value.end, f.metric.start, f.metric.end, f.value.kind, period,
            f.org.text if f.org else None)
