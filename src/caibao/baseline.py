"""The rule pre-annotator, also the baseline the trained model must beat.

VALUE and PERIOD come from patterns; METRIC and ORG from lexicons (plain
text files, one entry a line, grown from the gold train split by
``caibao lexicon``); relations link the nearest compatible entities inside
one sentence. Its output is a pre-annotation: never gold until reviewed.
"""

from __future__ import annotations

import re
from collections import Counter
from importlib import resources
from pathlib import Path

from caibao.schema import Document, Entity, Relation, sentence_bounds

_NUM = r"[-+]?\d+(?:,\d{3})*(?:\.\d+)?"
_CN_NUM = r"[一二三四五六七八九十两〇零百千]+"
_SCALE = r"(?:万亿|亿|億|千万|百万|万|萬|千)"
_CURRENCY = r"(?:亿元|億元|万元|萬元|元|美元|港元|港币|港幣|美仙|人民币元|英镑|欧元)"
_MEASURE = r"(?:个百分点|個百分點|个基点|基点|倍|家|人|名|笔|户|件|条|款|项|次|位|股|亿次|万次)"
_UNIT = rf"(?:{_SCALE}?(?:余|多)?(?:{_CURRENCY}|{_MEASURE})|{_SCALE}(?:余|多)?|%|％)"
VALUE_PATTERN = re.compile(
    rf"(?:{_NUM}(?:余|多)?{_UNIT}(?:\s*(?:至|到|-|~|－)\s*{_NUM}(?:余|多)?{_UNIT})?"
    rf"|{_NUM}\s*(?:至|到|-|~)\s*{_NUM}{_UNIT}"
    rf"|[一二三四五六七八九十]成"
    rf"|{_CN_NUM}分之{_CN_NUM}"
    rf"|{_CN_NUM}(?:{_SCALE})(?:余|多)?(?:{_CURRENCY}|{_MEASURE})?)"
)
# Numbers that are dates, durations or ordinals are not values.
_NOT_VALUE_AFTER = re.compile(r"^(?:年|月|日|季|个月|天|号|期|周|后|届|大|强)")

_YEAR = r"(?:\d{4}|\d{2})\s*年"
_QUARTER = r"(?:第?[一二三四1-4]季度?末?|Q[1-4]|[一二三四]季度?末?)"
PERIOD_PATTERN = re.compile(
    rf"(?:{_YEAR}(?:第?[一二三四1-4]季度末?|[上下]半年|前三季度|全年|年末|年底|末|度)?"
    rf"|\d{{4}}\s*财年|财年|\d{{4}}(?:年)?Q[1-4]|\d{{2}}Q[1-4]|\d{{4}}年\d{{1,2}}月\d{{1,2}}日"
    rf"|{_QUARTER}|上半年|下半年|前三季度|全年|去年|今年|报告期末?|单季|同期|年末|季度末|本季度|上季度)"
)
CHANGE_CUES = re.compile(r"(增长|下降|增加|减少|提升|上升|下滑|回落|同比|环比|按年|较|涨|跌|增|降)")


def _lexicon(name: str) -> list[str]:
    path = resources.files("caibao").joinpath(f"resources/lexicons/{name}.txt")
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [x.strip() for x in lines if x.strip() and not x.startswith("#")]


class RuleAnnotator:
    def __init__(self, metrics: list[str] | None = None, orgs: list[str] | None = None):
        self.metrics = sorted(set(metrics if metrics is not None else _lexicon("metrics")), key=len, reverse=True)
        self.orgs = sorted(set(orgs if orgs is not None else _lexicon("orgs")), key=len, reverse=True)
        self._metric_re = re.compile("|".join(map(re.escape, self.metrics))) if self.metrics else None
        self._org_re = re.compile("|".join(map(re.escape, self.orgs))) if self.orgs else None

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        found: list[tuple[int, int, str, int]] = []  # start, end, label, priority
        for m in VALUE_PATTERN.finditer(text):
            if _NOT_VALUE_AFTER.match(text[m.end():]) or not re.search(r"[%％元仙点倍家人名笔户件条款项次位股万亿億萬千成分]",
                                                                        m.group()):
                continue
            found.append((m.start(), m.end(), "VALUE", 0))
        for m in PERIOD_PATTERN.finditer(text):
            found.append((m.start(), m.end(), "PERIOD", 1))
        if self._metric_re:
            for m in self._metric_re.finditer(text):
                found.append((m.start(), m.end(), "METRIC", 2))
        if self._org_re:
            for m in self._org_re.finditer(text):
                found.append((m.start(), m.end(), "ORG", 3))
        # Longest first, then by priority; drop anything overlapping an accepted span.
        found.sort(key=lambda x: (-(x[1] - x[0]), x[3], x[0]))
        taken = [False] * (len(text) + 1)
        accepted = []
        for s, e, label, _ in found:
            if any(taken[s:e]):
                continue
            for i in range(s, e):
                taken[i] = True
            accepted.append((s, e, label))
        return sorted(accepted)

    def annotate(self, doc: Document) -> Document:
        text = doc.text
        spans = self.spans(text)
        entities = [Entity(id=f"r{k + 1}", start=s, end=e, label=lab) for k, (s, e, lab) in enumerate(spans)]
        relations: list[Relation] = []
        for s0, e0 in sentence_bounds(text):
            inside = [x for x in entities if s0 <= x.start < e0]
            for v in (x for x in inside if x.label == "VALUE"):
                metrics = [m for m in inside if m.label == "METRIC" and m.end <= v.start]
                if not metrics:
                    continue
                m = metrics[-1]
                between = text[m.end : v.start]
                label = "metric_change" if CHANGE_CUES.search(between) else "metric_value"
                relations.append(Relation(head=m.id, tail=v.id, label=label))
                periods = [p for p in inside if p.label == "PERIOD" and p.end <= v.start]
                if periods:
                    relations.append(Relation(head=v.id, tail=periods[-1].id, label="value_period"))
            for m in (x for x in inside if x.label == "METRIC"):
                orgs = [o for o in inside if o.label == "ORG" and o.end <= m.start]
                if orgs and any(r.head == m.id for r in relations):
                    relations.append(Relation(head=orgs[-1].id, tail=m.id, label="org_metric"))
        # The guide marks METRIC and PERIOD only when a value belongs to them.
        used = {r.head for r in relations} | {r.tail for r in relations}
        kept = [x for x in entities if x.label in ("ORG", "VALUE") or x.id in used]
        kept = [x for x in kept if x.label != "VALUE" or x.id in used]
        return Document(id=doc.id, text=text, meta=doc.meta, entities=kept, relations=relations)


def build_lexicons(docs: list[Document], min_count: int = 1) -> dict[str, list[str]]:
    """METRIC and ORG surface strings of (train) gold documents, most frequent first."""
    out = {}
    for label, name in (("METRIC", "metrics"), ("ORG", "orgs")):
        counts = Counter(d.text[e.start : e.end] for d in docs for e in d.entities if e.label == label)
        out[name] = [s for s, n in counts.most_common() if n >= min_count and len(s) >= 2]
    return out


def write_lexicons(lexicons: dict[str, list[str]], folder: Path) -> None:
    from caibao.io import atomic_write_text

    for name, entries in lexicons.items():
        atomic_write_text(folder / f"{name}.txt",
                          f"# {name} lexicon, grown from the gold train split by `caibao lexicon`\n"
                          + "".join(x + "\n" for x in entries))
