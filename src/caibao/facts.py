"""The fact builder: annotated (gold or predicted) documents -> metric facts.

One fact per (METRIC -> VALUE) relation, as the guide says. Organisation
and period come from the sentence's relations when there are any; else
they are resolved at document level and flagged ``inferred``:

* organisation: the document's main organisation (first ORG of the title,
  else the most frequent ORG, ties to the earliest mention);
* period: the nearest preceding explicit period of the document;
* relative periods (全年, 去年, 单季 ...) are normalised against the
  nearest explicit period before them and the document date.

Both the gold side and the model side of evaluation go through this same
code, so fact scores measure the model, not the builder.
"""

from __future__ import annotations

import math
from collections import Counter

from caibao.normalize import is_guidance, parse_period, parse_value
from caibao.schema import Document, Entity, Fact, MetricRef, OrgRef, PeriodRef, ValueRef, sentence_bounds


def main_org(doc: Document) -> Entity | None:
    orgs = sorted((e for e in doc.entities if e.label == "ORG"), key=lambda e: e.start)
    if not orgs:
        return None
    title_end = doc.text.find("\n")
    if title_end > 0:
        in_title = [e for e in orgs if e.end <= title_end]
        if in_title:
            return in_title[0]
    counts = Counter(doc.text[e.start : e.end] for e in orgs)
    best = max(counts.values())
    return next(e for e in orgs if counts[doc.text[e.start : e.end]] == best)


def _explicit_periods(doc: Document, doc_date) -> list[tuple[Entity, str]]:
    """PERIOD entities that normalise without any anchor (2021年, 2022年第四季度 ...)."""
    out = []
    for e in sorted((e for e in doc.entities if e.label == "PERIOD"), key=lambda e: e.start):
        parsed = parse_period(doc.text[e.start : e.end])
        if parsed.status == "ok" and not parsed.relative and parsed.normalized:
            out.append((e, parsed.normalized))
    return out


def build_facts(doc: Document, entity_scores: dict[str, float] | None = None,
                relation_scores: dict[tuple[str, str, str], float] | None = None) -> list[Fact]:
    ents = doc.entity_by_id()
    text = doc.text
    doc_date = doc.meta.get("date")
    bounds = sentence_bounds(text)

    def sentence_of(pos: int) -> str:
        for s, e in bounds:
            if s <= pos < e:
                return text[s:e]
        return ""

    explicit = _explicit_periods(doc, doc_date)

    def anchor_before(pos: int) -> str | None:
        before = [norm for e, norm in explicit if e.start < pos]
        return before[-1] if before else None

    def nearest_period_before(pos: int) -> Entity | None:
        before = [e for e, _ in explicit if e.start < pos]
        return before[-1] if before else None

    sentence_no = {}
    for k, (s0, e0) in enumerate(bounds):
        for i in range(s0, e0):
            sentence_no[i] = k

    explicit_ids = {e.id for e, _ in explicit}

    def main_period_before(pos: int) -> Entity | None:
        """The period of the first dated value of the nearest earlier sentence.

        A sentence's first dated value carries its main period; later ones are
        often comparison bases (较2021年的3571.03亿元), which must not leak into
        the next sentence. Falls back to the nearest explicit period before.
        """
        here = sentence_no.get(pos, -1)
        best: tuple[int, int, Entity] | None = None
        for vid, periods in periods_of_value.items():
            v = ents[vid]
            k = sentence_no.get(v.start, -1)
            if not (0 <= k < here):
                continue
            dated = [p for p in periods if p.id in explicit_ids]
            if not dated:
                continue
            key = (k, -v.start)
            if best is None or key > best[:2]:
                best = (k, -v.start, min(dated, key=lambda p: p.start))
        return best[2] if best else nearest_period_before(pos)

    org_of_metric: dict[str, list[Entity]] = {}
    periods_of_value: dict[str, list[Entity]] = {}
    for r in doc.relations:
        if r.head not in ents or r.tail not in ents:
            continue
        if r.label == "org_metric":
            org_of_metric.setdefault(r.tail, []).append(ents[r.head])
        elif r.label == "value_period":
            periods_of_value.setdefault(r.head, []).append(ents[r.tail])
    fallback_org = main_org(doc)

    facts = []
    for r in doc.relations:
        if r.label not in ("metric_value", "metric_change") or r.head not in ents or r.tail not in ents:
            continue
        metric, value = ents[r.head], ents[r.tail]
        sentence = sentence_of(value.start)
        sent_start = next((s for s, e in bounds if s <= value.start < e), 0)
        parsed = parse_value(text[value.start : value.end], sentence, value.start - sent_start)

        orgs = sorted(org_of_metric.get(metric.id, []), key=lambda e: e.start)
        # Several owners of one metric (A为1600亿，B为946亿): each value belongs to the
        # owner named nearest before it; a value before all of them has no owner here.
        before = [o for o in orgs if o.start < value.start]
        owner = before[-1] if before else (orgs[0] if len(orgs) == 1 else None)
        if owner is not None:
            o = owner
            org = OrgRef(text=text[o.start : o.end], start=o.start, end=o.end, inferred=False)
        elif fallback_org is not None:
            o = fallback_org
            org = OrgRef(text=text[o.start : o.end], start=o.start, end=o.end, inferred=True)
        else:
            org = None

        linked = sorted(periods_of_value.get(value.id, []), key=lambda e: e.start)
        period = None
        if linked:
            # With two period mentions (2022年，公司全年...) the explicit one is the more specific.
            candidates = [(p, parse_period(text[p.start : p.end], doc_date, anchor_before(p.start))) for p in linked]
            candidates.sort(key=lambda pc: (pc[1].relative, pc[1].status != "ok"))
            p, pp = candidates[0]
            period = PeriodRef(text=text[p.start : p.end], start=p.start, end=p.end,
                               normalized=pp.normalized, inferred=bool(pp.relative))
        else:
            p = main_period_before(value.start)
            if p is not None:
                pp = parse_period(text[p.start : p.end], doc_date, anchor_before(p.start))
                period = PeriodRef(text=text[p.start : p.end], start=p.start, end=p.end,
                                   normalized=pp.normalized, inferred=True)

        number = parsed.number
        kind = "change" if r.label == "metric_change" else "level"
        # Gold annotations carry no scores: confidence 1. Predictions: the product
        # of the metric's, the value's and the relation's probabilities.
        confidence = math.prod([
            *((entity_scores.get(metric.id, 1.0), entity_scores.get(value.id, 1.0)) if entity_scores else ()),
            (relation_scores or {}).get((r.head, r.tail, r.label), 1.0),
        ])
        facts.append(Fact(
            doc_id=doc.id,
            org=org,
            metric=MetricRef(text=text[metric.start : metric.end], start=metric.start, end=metric.end),
            value=ValueRef(text=text[value.start : value.end], start=value.start, end=value.end,
                           number=number, unit=parsed.unit, kind=kind,
                           basis=parsed.basis if kind == "change" else None,
                           approx=bool(parsed.approx), low=parsed.low, high=parsed.high),
            period=period,
            guidance=is_guidance(sentence),
            confidence=round(confidence, 4),
            sentence=sentence,
        ))
    facts.sort(key=lambda f: (f.value.start, f.metric.start))
    return facts


def fact_key(f: Fact) -> tuple:
    """What must agree for two facts to match in evaluation."""
    period = (f.period.start, f.period.end) if f.period and f.period.start is not None else None
    return (f.doc_id, f.value.start, f.value.end, f.metric.start, f.metric.end, f.value.kind, period,
            f.org.text if f.org else None)
