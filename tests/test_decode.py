"""Span rules after the tagger (caibao.decode): tables of real text -> expected spans."""

from __future__ import annotations

from pathlib import Path

import pytest

from caibao.annotations import read_gold
from caibao.decode import (close_brackets, complete_period_prefixes, complete_suffixes, drop_currency_orgs, drop_non_org_names,
                           drop_short_spans, merge_ranges, share_metric_list, split_coordinated_metrics,
                           join_split_orgs, repair_period_ends, split_glued_orgs, split_joined_orgs,
                           split_period_lists, tag_coded_names, tag_declared_names, trim_leading_words,
                           trim_trailing_words)
from caibao.schema import Entity, Relation


def spans_of(text: str, marked: list[tuple[str, str]]) -> list[tuple[int, int, str]]:
    out, pos = [], 0
    for surface, label in marked:
        start = text.index(surface, pos)
        out.append((start, start + len(surface), label))
        pos = start + len(surface)
    return out


def texts(text: str, spans) -> list[tuple[str, str]]:
    return [(text[s:e], label) for s, e, label in spans]


@pytest.mark.parametrize("text, tagged, expected", [
    # X消金 / X消费金融 cut to the bank prefix by the tagger
    ("兴业消金净利润暴跌76.82%", [("兴业", "ORG"), ("净利润", "METRIC"), ("76.82%", "VALUE")],
     [("兴业消金", "ORG"), ("净利润", "METRIC"), ("76.82%", "VALUE")]),
    ("北银消费金融营收下降", [("北银", "ORG"), ("营收", "METRIC")], [("北银消费金融", "ORG"), ("营收", "METRIC")]),
    # the suffix swallowed by the next span: that span loses it
    ("杭银消金净利润", [("杭银", "ORG"), ("消金净利润", "METRIC")], [("杭银消金", "ORG"), ("净利润", "METRIC")]),
    # a next span made of the suffix alone disappears
    ("中银消金增长", [("中银", "ORG"), ("消金", "METRIC")], [("中银消金", "ORG")]),
    # brokers, wealth managers, insurers, Traditional script
    ("招银理财净利润", [("招银", "ORG"), ("理财净利润", "METRIC")], [("招银理财", "ORG"), ("净利润", "METRIC")]),
    ("中信期货营收", [("中信", "ORG"), ("营收", "METRIC")], [("中信期货", "ORG"), ("营收", "METRIC")]),
    ("平安銀行淨利潤", [("平安", "ORG"), ("淨利潤", "METRIC")], [("平安銀行", "ORG"), ("淨利潤", "METRIC")]),
    # not 资本: 招商银行资本充足率 keeps its METRIC whole
    ("招行资本充足率", [("招行", "ORG"), ("资本充足率", "METRIC")], [("招行", "ORG"), ("资本充足率", "METRIC")]),
    # complete names stay as they are
    ("招联消金营业收入", [("招联消金", "ORG"), ("营业收入", "METRIC")], [("招联消金", "ORG"), ("营业收入", "METRIC")]),
    # 1.5个百分点 is one VALUE
    ("不良率上升1.5个百分点", [("不良率", "METRIC"), ("1.5", "VALUE")], [("不良率", "METRIC"), ("1.5个百分点", "VALUE")]),
    ("核心一级资本充足率提升3个百分点", [("核心一级资本充足率", "METRIC"), ("3", "VALUE")],
     [("核心一级资本充足率", "METRIC"), ("3个百分点", "VALUE")]),
    ("淨息差收窄12個基點", [("淨息差", "METRIC"), ("12", "VALUE")], [("淨息差", "METRIC"), ("12個基點", "VALUE")]),
    # a PERIOD cut inside its number's unit (富途控股披露2021年三季度报告); two periods stay two
    ("富途控股披露2021年三季度报告", [("富途控股", "ORG"), ("2021年三", "PERIOD")],
     [("富途控股", "ORG"), ("2021年三季度", "PERIOD")]),
    ("2024年第三季度营收", [("2024年", "PERIOD"), ("第三季度", "PERIOD")], [("2024年", "PERIOD"), ("第三季度", "PERIOD")]),
    ("截至4月25日20点左右", [("4月", "PERIOD")], [("4月25日", "PERIOD")]),
    # a year cut before its part (壽險業2025年前九月保費收入: the gold writes them as one PERIOD)
    ("公布壽險業2025年前九月保費收入", [("2025年", "PERIOD")], [("2025年前九月", "PERIOD")]),
    ("2024年上半年营收", [("2024年", "PERIOD")], [("2024年上半年", "PERIOD")]),
    ("公布壽險業2025年前九月保費收入", [("2025", "PERIOD")], [("2025年前九月", "PERIOD")]),
    # a date cut before the length of the period it ends (as the gold writes 2021年6月30日止六个月)
    ("截至2010年12月31日止三个月期间,每日", [("2010年12月31日", "PERIOD")], [("2010年12月31日止三个月期间", "PERIOD")]),
    ("6月30日止中期純利", [("6月30日", "PERIOD")], [("6月30日", "PERIOD")]),
    # web-20-04: 保险业务收入较2024年同期同比增长, the base cut before its 同期
    ("保险业务收入较2024年同期同比增长", [("保险业务收入", "METRIC"), ("2024年", "PERIOD")],
     [("保险业务收入", "METRIC"), ("2024年同期", "PERIOD")]),
    # fresh pages (stages 13, 14): a developer's ending after a bare name; after a whole name it is a word
    ("保利发展发布2022年业绩公告", [("保利", "ORG")], [("保利发展", "ORG")]),
    ("新世界发展公布", [("新世界", "ORG")], [("新世界发展", "ORG")]),
    ("郑州银行发展历程", [("郑州银行", "ORG")], [("郑州银行", "ORG")]),
    ("奇富科技发展的新起点", [("奇富科技", "ORG")], [("奇富科技", "ORG")]),
])
def test_complete_suffixes(text, tagged, expected):
    assert texts(text, complete_suffixes(text, spans_of(text, tagged))) == expected


@pytest.mark.parametrize("text, tagged, expected", [
    ("微众银行实现净利润108亿元", [("实现净利润", "METRIC")], [("净利润", "METRIC")]),
    ("仅实现营收12亿元", [("仅实现营收", "METRIC")], [("营收", "METRIC")]),
    # the industry a metric is of is its owner, not a qualifier; a share of the industry stays
    ("行业信托资产规模为21.14万亿元", [("行业信托资产规模", "METRIC")], [("信托资产规模", "METRIC")]),
    ("金融租赁全行业的不良率为0.56%", [("金融租赁全行业的不良率", "METRIC")], [("不良率", "METRIC")]),
    ("总资产占行业比重26%", [("总资产占行业比重", "METRIC")], [("总资产占行业比重", "METRIC")]),
    ("推高赔付率", [("推高赔付率", "METRIC")], [("赔付率", "METRIC")]),
    # web articles: an average's verb (57家信托公司平均实现营业收入), Traditional script
    ("平均实现营业收入11.09亿元", [("平均实现营业收入", "METRIC")], [("营业收入", "METRIC")]),
    ("公司實現營業收入3.2億元", [("實現營業收入", "METRIC")], [("營業收入", "METRIC")]),
    ("公司赚取的增值税后的服务费为896万美元", [("赚取的增值税后的服务费", "METRIC")], [("增值税后的服务费", "METRIC")]),
    ("实现", [("实现", "METRIC")], [("实现", "METRIC")]),  # nothing left: kept
    # stage 19: a hedge, a verb of costs, the tail of 扣除…后之
    ("被指利率高达500%", [("被指利率", "METRIC")], [("利率", "METRIC")]),
    ("发生营业成本45.27万亿元", [("发生营业成本", "METRIC")], [("营业成本", "METRIC")]),
    ("扣除后之股东应占核心溢利65.9亿元", [("后之股东应占核心溢利", "METRIC")], [("股东应占核心溢利", "METRIC")]),
    # an ORG after the verb of ownership or the outlet's byline glued to it (fresh pages, stage 6)
    ("歸屬於摯文集團的淨利潤為3.49億元", [("歸屬於摯文集團", "ORG")], [("摯文集團", "ORG")]),
    ("中证智能财讯东兴证券(601198)1月6日晚间披露", [("中证智能财讯东兴证券", "ORG")], [("东兴证券", "ORG")]),
])
def test_trim_leading_words(text, tagged, expected):
    assert texts(text, trim_leading_words(text, spans_of(text, tagged))) == expected


@pytest.mark.parametrize("text, tagged, expected", [
    # the tagger stopped inside the bracket (web-11-11, dev)
    ("公司赚取的服务费(扣除增值税)为487万美元", [("服务费(扣除", "METRIC"), ("487万美元", "VALUE")],
     [("服务费(扣除增值税)", "METRIC"), ("487万美元", "VALUE")]),
    ("存款（含应计利息）余额", [("存款（含应计", "METRIC")], [("存款（含应计利息）", "METRIC")]),
    # closed brackets, and a bracket that never closes nearby, stay as they are
    ("市盈率(TTM)为8倍", [("市盈率(TTM)", "METRIC")], [("市盈率(TTM)", "METRIC")]),
    ("净利润(非美国通用会计准则下的调整后口径计算的数字)", [("净利润(非", "METRIC")], [("净利润(非", "METRIC")]),
    # the next span starts inside the bracket: left alone
    ("营收(同比+5%)", [("营收(同比", "METRIC"), ("+5%", "VALUE")], [("营收(同比", "METRIC"), ("+5%", "VALUE")]),
    # an ORG cut inside its ticker's bracket ends before it (stage 20); a closed one stays
    ("蔚来(NIO.US)的毛利率为4.9%", [("蔚来(NIO", "ORG")], [("蔚来", "ORG")]),
    ("平安壹账通银行(PAOB)表示", [("平安壹账通银行(PAOB)", "ORG")], [("平安壹账通银行(PAOB)", "ORG")]),
])
def test_close_brackets(text, tagged, expected):
    assert texts(text, close_brackets(text, spans_of(text, tagged))) == expected


def test_gold_metrics_survive_close_brackets():
    for doc in read_gold(Path(__file__).resolve().parents[1] / "annotations" / "gold"):
        spans = sorted((e.start, e.end, e.label) for e in doc.entities)
        assert close_brackets(doc.text, spans) == spans, doc.id


# Real sentences from the gold (batch-0x, web-xx), their range VALUE tagged in two pieces.
@pytest.mark.parametrize("text, tagged, expected", [
    ("当前公司指引2023年全年投放量4550亿元至4950亿元", ["4550亿元", "4950亿元"], ["4550亿元至4950亿元"]),
    ("2023年奇富科技的总贷款额将在4550亿至4900亿元人民币之间", ["4550亿", "4900亿元人民币"],
     ["4550亿至4900亿元人民币"]),
    ("发售价为每股7.60-8.74港元", ["7.60", "8.74港元"], ["7.60-8.74港元"]),
    ("修订后的指引代表同比增长 42% 至 46%", ["42%", "46%"], ["42% 至 46%"]),  # a range of growth
    ("與2023 年相比預計增加約人民幣 149-190 億元", ["149", "190 億元"], ["149-190 億元"]),
    ("合理价值区间为17.96-19.46元/股", ["17.96", "19.46元/股"], ["17.96-19.46元/股"]),
    # a change and its result, a from-to, different units: two VALUEs, as the gold has them
    ("放款规模比2023年减少195亿至557.5亿元", ["195亿", "557.5亿元"], ["195亿", "557.5亿元"]),
    ("360数科的净收入从同期的36亿元至41.4亿元", ["36亿元", "41.4亿元"], ["36亿元", "41.4亿元"]),
    ("注册用户规模从2019年二季度的1亿户到2亿户", ["1亿户", "2亿户"], ["1亿户", "2亿户"]),
    ("第四季淨利年增17%至3.63億元", ["17%", "3.63億元"], ["17%", "3.63億元"]),
    ("综合成本率上升1.7个百分点至96.9%", ["1.7个百分点", "96.9%"], ["1.7个百分点", "96.9%"]),
])
def test_merge_ranges(text, tagged, expected):
    spans = spans_of(text, [(v, "VALUE") for v in tagged])
    assert [t for t, _ in texts(text, merge_ranges(text, spans))] == expected


def test_gold_ranges_and_value_pairs_survive_merge_ranges():
    """On every gold document the rule leaves the gold spans as they are (109 VALUE pairs joined by 至/-)."""
    for doc in read_gold(Path(__file__).resolve().parents[1] / "annotations" / "gold"):
        spans = sorted((e.start, e.end, e.label) for e in doc.entities)
        assert merge_ranges(doc.text, spans) == spans, doc.id


def _ents(text, marked):
    return [Entity(id=f"e{k}", start=s, end=e, label=lab) for k, (s, e, lab) in enumerate(spans_of(text, marked), 1)]


def test_split_coordinated_metrics_in_traditional_script():
    text = "58家信托公司平均注冊資本、總資產、凈資產分別達到51.15億元、135.86億元和117.81億元。"
    ents = _ents(text, [("平均注冊資本、總資產、凈資產", "METRIC"), ("51.15億元", "VALUE"), ("135.86億元", "VALUE"),
                        ("117.81億元", "VALUE")])
    rels = [Relation(head="e1", tail=t, label="metric_value") for t in ("e2", "e3", "e4")]
    new_ents, new_rels = split_coordinated_metrics(text, ents, rels, {"e1": len(text)})
    name = {e.id: text[e.start:e.end] for e in new_ents}
    assert {(name[r.head], name[r.tail]) for r in new_rels} == {
        ("平均注冊資本", "51.15億元"), ("總資產", "135.86億元"), ("凈資產", "117.81億元")}


def test_split_coordinated_metrics_joined_by_yiji():
    """以及 joins two metrics (stage 22: 汉口银行); 及 alone does not (手续费及佣金收入 stays whole, below)."""
    text = "利息净收入以及投资收益分别为40.17亿元、9.93亿元。"
    ents = _ents(text, [("利息净收入以及投资收益", "METRIC"), ("40.17亿元", "VALUE"), ("9.93亿元", "VALUE")])
    rels = [Relation(head="e1", tail=t, label="metric_value") for t in ("e2", "e3")]
    new_ents, new_rels = split_coordinated_metrics(text, ents, rels, {"e1": len(text)})
    name = {e.id: text[e.start:e.end] for e in new_ents}
    assert {(name[r.head], name[r.tail]) for r in new_rels} == {("利息净收入", "40.17亿元"), ("投资收益", "9.93亿元")}


def test_split_coordinated_metrics_shares_values_in_order():
    text = "招联消金营业收入、净利润分别为173.18亿元、30.16亿元，同比分别下降11.65%、16.22%。"
    ents = _ents(text, [("招联消金", "ORG"), ("营业收入、净利润", "METRIC"), ("173.18亿元", "VALUE"),
                        ("30.16亿元", "VALUE"), ("11.65%", "VALUE"), ("16.22%", "VALUE")])
    rels = [Relation(head="e1", tail="e2", label="org_metric")] + [
        Relation(head="e2", tail=t, label=lab) for t, lab in
        [("e3", "metric_value"), ("e4", "metric_value"), ("e5", "metric_change"), ("e6", "metric_change")]]
    new_ents, new_rels = split_coordinated_metrics(text, ents, rels, {"e2": len(text)})
    name = {e.id: text[e.start:e.end] for e in new_ents}
    got = {(name[r.head], name[r.tail], r.label) for r in new_rels}
    assert got == {("招联消金", "营业收入", "org_metric"), ("招联消金", "净利润", "org_metric"),
                   ("营业收入", "173.18亿元", "metric_value"), ("净利润", "30.16亿元", "metric_value"),
                   ("营业收入", "11.65%", "metric_change"), ("净利润", "16.22%", "metric_change")}


def _share(text, marked, relations):
    ents = _ents(text, marked)
    name = {e.id: text[e.start:e.end] for e in ents}
    ids = {v: k for k, v in name.items()}
    rels = [Relation(head=ids[h], tail=ids[t], label=lab) for h, t, lab in relations]
    ends = {e.id: len(text) for e in ents if e.label == "METRIC"}
    return {(name[r.head], name[r.tail], r.label) for r in share_metric_list(text, ents, rels, ends)}


def test_a_list_of_metrics_tagged_apart_shares_each_run_of_values_in_order():
    # the relation head handed the runs to the first and the last name (web-09-15, dev)
    text = ("2023年末58家信托公司平均注冊資本、總資產、凈資產分別達到51.15億元、135.86億元和117.81億元,"
            "較2022年末分別增加2.95億元、3.41億元和6.63億元。")
    marked = [("平均注冊資本", "METRIC"), ("總資產", "METRIC"), ("凈資產", "METRIC"), ("51.15億元", "VALUE"),
              ("135.86億元", "VALUE"), ("117.81億元", "VALUE"), ("2.95億元", "VALUE"), ("3.41億元", "VALUE"),
              ("6.63億元", "VALUE")]
    predicted = [("平均注冊資本", "51.15億元", "metric_value"), ("凈資產", "135.86億元", "metric_value"),
                 ("凈資產", "117.81億元", "metric_value"), ("平均注冊資本", "2.95億元", "metric_change"),
                 ("平均注冊資本", "3.41億元", "metric_change"), ("凈資產", "6.63億元", "metric_change")]
    assert _share(text, marked, predicted) == {
        ("平均注冊資本", "51.15億元", "metric_value"), ("總資產", "135.86億元", "metric_value"),
        ("凈資產", "117.81億元", "metric_value"), ("平均注冊資本", "2.95億元", "metric_change"),
        ("總資產", "3.41億元", "metric_change"), ("凈資產", "6.63億元", "metric_change")}


def test_a_list_of_metrics_shares_its_owner_and_needs_respectively():
    text = "招联消金营业收入、净利润分别为173.18亿元、30.16亿元。"
    marked = [("招联消金", "ORG"), ("营业收入", "METRIC"), ("净利润", "METRIC"), ("173.18亿元", "VALUE"),
              ("30.16亿元", "VALUE")]
    predicted = [("招联消金", "营业收入", "org_metric"), ("营业收入", "173.18亿元", "metric_value"),
                 ("营业收入", "30.16亿元", "metric_value")]
    assert _share(text, marked, predicted) == {
        ("招联消金", "营业收入", "org_metric"), ("招联消金", "净利润", "org_metric"),
        ("营业收入", "173.18亿元", "metric_value"), ("净利润", "30.16亿元", "metric_value")}
    # without 分别 the head's links stay (营业收入、净利润均为…: no order to share by)
    unordered = text.replace("分别为", "为")
    assert _share(unordered, marked, predicted) == set(predicted)


def test_a_list_of_metrics_agrees_with_every_gold_document():
    """On the annotators' own relations the rule changes nothing (it fires 24 times there)."""
    from caibao.model import metric_sentence_ends

    for d in read_gold(Path(__file__).resolve().parents[1] / "annotations" / "gold"):
        shared = share_metric_list(d.text, d.entities, d.relations, metric_sentence_ends(d.text, d.entities))
        assert {(r.head, r.tail, r.label) for r in shared} == {(r.head, r.tail, r.label) for r in d.relations}, d.id


@pytest.mark.parametrize("text, metric, n_values", [
    ("贷款撮合、发放和服务费用为12亿元。", "贷款撮合、发放和服务费用", 1),  # one metric with a list inside
    ("营收、净利润均为正，其中营收12亿元、13亿元。", "营收、净利润", 2),  # no 'respectively'
    ("2020年和2021年手续费及佣金收入分别为12亿元、13亿元。", "手续费及佣金收入", 2),  # 及 inside one metric (web-08-03)
])
def test_split_coordinated_metrics_leaves_other_metrics_whole(text, metric, n_values):
    values = [v for v in ("12亿元", "13亿元")[:n_values]]
    ents = _ents(text, [(metric, "METRIC")] + [(v, "VALUE") for v in values])
    rels = [Relation(head="e1", tail=f"e{k}", label="metric_value") for k in range(2, 2 + n_values)]
    new_ents, new_rels = split_coordinated_metrics(text, ents, rels, {"e1": len(text)})
    assert new_ents == ents and new_rels == rels


@pytest.mark.parametrize("text, metric, orgs_elsewhere, expected_org, expected_metric", [
    ("截至2024年末,招联金融总资产为1637.51亿元", "招联金融总资产", ["招联金融"], "招联金融", "总资产"),
    ("年报显示,微众银行实现净利润108亿元", "微众银行实现净利润", [], "微众银行", "净利润"),
    ("建信消金的净利润仅为0.03亿元", "建信消金的净利润", [], "建信消金", "净利润"),
    ("興業消費金融實現營業收入47.64億元", "興業消費金融實現營業收入", ["興業消費金融"], "興業消費金融", "營業收入"),
])
def test_split_glued_orgs(text, metric, orgs_elsewhere, expected_org, expected_metric):
    start = text.index(metric)
    ents = [Entity(id="m", start=start, end=start + len(metric), label="METRIC")]
    full = text + "。" + "、".join(orgs_elsewhere)
    for k, name in enumerate(orgs_elsewhere):
        pos = full.rindex(name)
        ents.append(Entity(id=f"o{k}", start=pos, end=pos + len(name), label="ORG"))
    new_ents, rels = split_glued_orgs(full, ents, [])
    by_label = {(full[e.start:e.end], e.label) for e in new_ents}
    assert (expected_org, "ORG") in by_label and (expected_metric, "METRIC") in by_label
    org = next(e for e in new_ents if full[e.start:e.end] == expected_org and e.start == start)
    assert Relation(head=org.id, tail="m", label="org_metric") in rels


@pytest.mark.parametrize("metric", ["商业银行理财规模", "银行卡交易量", "消费金融公司注册资本", "个人消费贷款余额"])
def test_split_glued_orgs_leaves_metrics_that_only_look_like_names(metric):
    ents = [Entity(id="m", start=0, end=len(metric), label="METRIC")]
    assert split_glued_orgs(metric + "为12亿元", ents, []) == (ents, [])


def test_split_coordinated_metrics_takes_the_run_of_values_when_one_is_linked_elsewhere():
    # the tagger also read 信托 as a METRIC and linked the first value to it
    text = "2023年末58家信托公司平均注冊資本、總資產、凈資產分別達到51.15億元、135.86億元和117.81億元。"
    ents = _ents(text, [("信托", "METRIC"), ("平均注冊資本、總資產、凈資產", "METRIC"), ("51.15億元", "VALUE"),
                        ("135.86億元", "VALUE"), ("117.81億元", "VALUE")])
    rels = [Relation(head="e1", tail="e3", label="metric_value"),
            Relation(head="e2", tail="e4", label="metric_value"), Relation(head="e2", tail="e5", label="metric_value")]
    new_ents, new_rels = split_coordinated_metrics(text, ents, rels, {"e1": len(text), "e2": len(text)})
    name = {e.id: text[e.start:e.end] for e in new_ents}
    assert {(name[r.head], name[r.tail]) for r in new_rels} == {
        ("平均注冊資本", "51.15億元"), ("總資產", "135.86億元"), ("凈資產", "117.81億元")}


def test_split_coordinated_metrics_joined_by_he():
    text = "本季度,促成借款总额和净收入分别增长至6,172万美元和415万美元,双双环比翻番"
    ents = _ents(text, [("促成借款总额和净收入", "METRIC"), ("6,172万美元", "VALUE"), ("415万美元", "VALUE")])
    rels = [Relation(head="e1", tail="e2", label="metric_value"), Relation(head="e1", tail="e3", label="metric_value")]
    new_ents, new_rels = split_coordinated_metrics(text, ents, rels, {"e1": len(text)})
    name = {e.id: text[e.start:e.end] for e in new_ents}
    assert {(name[r.head], name[r.tail]) for r in new_rels} == {("促成借款总额", "6,172万美元"), ("净收入", "415万美元")}


@pytest.mark.parametrize("text, expected", [
    ("导言:12月3日, 和信贷公司(纳斯达克股票代码:HX)(“和信贷”或“本公司”)公布了财务业绩。和信贷平台累计促成借款",
     ["和信贷", "和信贷", "和信贷"]),  # the owner's name too, where the tagger left it untagged
    ("招联消费金融有限公司（以下简称“招联消金”）公布年报，招联消金营业收入增长", ["招联消金", "招联消金"]),
    ("维信金科控股有限公司(“维信金科”)发布2021年中期财务报告", ["维信金科", "维信金科"]),
    # not an organisation's declaration: a regulation, a generic self-reference
    ("《商业银行资本管理办法》(以下简称“新规”)实施后", []),
    ("维信金科(02003.HK)(“公司”)发布报告", []),
])
def test_tag_declared_names(text, expected):
    assert [text[s:e] for s, e, label in tag_declared_names(text, []) if label == "ORG"] == expected


def test_tag_declared_names_keeps_the_taggers_spans():
    text = "招联消费金融有限公司（以下简称“招联消金”）称，招联消金营业收入增长"
    tagged = [(0, 10, "ORG"), (text.index("招联消金营"), text.index("营业"), "ORG")]
    assert tag_declared_names(text, tagged) == sorted(tagged + [(text.index("招联消金”"), text.index("招联消金”") + 4, "ORG")])


@pytest.mark.parametrize("text, expected", [
    # fresh pages (stage 10): an unseen name the tagger missed, introduced with its stock code
    ("<匯港通訊> 長和(00001)發表2024年全年業績指,呈報基準計算,去年收益總額4766.8億元", ["長和"]),
    ("九龍倉置業（1997）公布，截至去年底止全年業績，由盈轉虧", ["九龍倉置業"]),
    ("近日,徽商银行(03698)发布2024年度报告。徽商银行实现营业收入", ["徽商银行", "徽商银行"]),
    ("中新社电 贵州茅台(600519.SH)发布公告", ["贵州茅台"]),
    ("据悉中国平安(02318)的营收", ["中国平安"]),  # the word opening the clause is no part of the name
    # not a name before a code: a year in brackets, a generic self-reference
    ("年报（2024）显示营业收入增长", []),
    ("本公司(00001)公布", []),
])
def test_tag_coded_names(text, expected):
    assert [text[s:e] for s, e, label in tag_coded_names(text, []) if label == "ORG"] == expected


def test_a_metric_over_a_coded_name_becomes_its_org():
    text = "<匯港通訊> 長和(00001)發表2024年全年業績指,去年收益總額4766.8億元"
    spans = spans_of(text, [("長和", "METRIC"), ("收益總額", "METRIC"), ("4766.8億元", "VALUE")])
    assert texts(text, tag_coded_names(text, spans)) == [("長和", "ORG"), ("收益總額", "METRIC"), ("4766.8億元", "VALUE")]


def test_an_org_inside_an_outlets_byline_is_dropped():
    text = "<匯港通訊> 長和(00001)發表2024年全年業績"
    spans = spans_of(text, [("匯", "ORG"), ("長和", "ORG")])
    assert texts(text, drop_non_org_names(text, spans)) == [("長和", "ORG")]


def test_a_country_or_region_is_no_org():
    # 友邦保险's markets (stage 10, a fresh page): 泰国 and a 马来西 cut from 马来西亚 owned every later figure
    text = "友邦保险公布全年业绩;马来西增长15%,泰国及新加坡则分别跌3%及7%。"
    spans = spans_of(text, [("友邦保险", "ORG"), ("马来西", "ORG"), ("泰国", "ORG"), ("新加坡", "ORG")])
    assert texts(text, drop_non_org_names(text, spans)) == [("友邦保险", "ORG")]


def test_a_metric_starting_inside_its_quotation_takes_the_opening_mark():
    text = "業務分部來看，「手機×AIoT」分部收入為841億元"  # 小米, HK01 (stage 10)
    spans = spans_of(text, [("手機×AIoT」分部收入", "METRIC"), ("841億元", "VALUE")])
    assert texts(text, close_brackets(text, spans)) == [("「手機×AIoT」分部收入", "METRIC"), ("841億元", "VALUE")]


@pytest.mark.parametrize("text, metric, expected", [
    ("友邦保险公布全年业绩,去年度新业务价值27.5亿美元", "去年度新业务价值", [("去年度", "PERIOD"), ("新业务价值", "METRIC")]),
    ("去年同期净利润为3亿元", "去年同期净利润", [("去年同期", "PERIOD"), ("净利润", "METRIC")]),
    ("年內溢利為3億元", "年內溢利", [("年內溢利", "METRIC")]),  # a line of the accounts, whole
    # stage 15: a half year's word; 期間 stays, the accounts' line 期間利潤及全面收益總額 is written so (stage 6)
    ("6家券商半年度净利润增长超2倍", "半年度净利润", [("半年度", "PERIOD"), ("净利润", "METRIC")]),
    ("期間利潤及全面收益總額5780.4萬元", "期間利潤及全面收益總額", [("期間利潤及全面收益總額", "METRIC")]),
])
def test_a_period_word_opening_a_metric_becomes_a_period(text, metric, expected):
    assert texts(text, trim_leading_words(text, spans_of(text, [(metric, "METRIC")]))) == expected


@pytest.mark.parametrize("text, tagged, kept", [
    # 阳光保险 (stage 11, a fresh page): a metric's abbreviation tagged as an ORG owned every figure after it
    ("COR:车险整体 COR 99.1%", ["COR", "COR"], []),
    ("财险综合成本率(COR)99.1%", ["COR"], []),
    # an organisation's own abbreviation after its name stays (平安壹账通银行(PAOB), web-17-08)
    ("平安壹账通银行(PAOB)表示", ["平安壹账通银行", "PAOB"], ["平安壹账通银行", "PAOB"]),
])
def test_a_metric_abbreviation_is_no_org(text, tagged, kept):
    assert [text[s:e] for s, e, _ in drop_non_org_names(text, spans_of(text, [(n, "ORG") for n in tagged]))] == kept


@pytest.mark.parametrize("text, tagged, kept", [
    # stage 19: 有 of 国有控股企业 owned every figure of the statistics bureau's release; 陽 cut from 陽明
    ("1—5月份,规模以上工业企业中,国有控股企业实现利润总额9438.4亿元", ["有"], []),
    ("長榮、陽明上月營收淡", ["長榮", "陽"], ["長榮"]),
    # a list of one-character abbreviations of the big five banks (gold, batch-0x) stays
    ("工、农、中、建、交五大行", ["工", "农", "中", "建", "交"], ["工", "农", "中", "建", "交"]),
])
def test_a_lone_chinese_character_is_no_org(text, tagged, kept):
    assert [text[s:e] for s, e, _ in drop_non_org_names(text, spans_of(text, [(n, "ORG") for n in tagged]))] == kept


@pytest.mark.parametrize("text, tagged, kept", [
    # the central bank's money data (stage 12): a monetary aggregate is a national total, no owner
    ("3月末,廣義貨幣(M2)餘額208.09萬億元", ["廣義貨幣"], []),
    ("流通中貨幣(M0)餘額8.31萬億元", ["流通中貨幣"], []),
    # 成都|地区 (成都银行, stage 12): a place, not the bank cut short
    ("2024年成都地区的贷款余额占行的73.17%", ["成都"], []),
    # a regulator's release (stage 13): a class of organisations owns an industry total
    ("其中,大型商業銀行本外幣資產137.2萬億元", ["商業銀行"], []),
])
def test_aggregates_and_places_are_no_orgs(text, tagged, kept):
    spans = [(text.index(name), text.index(name) + len(name), "ORG") for name in tagged]
    assert [text[s:e] for s, e, _ in drop_non_org_names(text, spans)] == kept


def test_a_lists_circled_number_is_no_part_of_a_name():
    text = "③连连数字作为国内最大独立支付供应商"  # a research note's list (stage 12)
    assert texts(text, trim_leading_words(text, spans_of(text, [("③连连数字", "ORG")]))) == [("连连数字", "ORG")]


def test_an_org_inside_a_currency_is_dropped():
    text = "恒基地產股東應佔基礎盈利為港幣三十億元,較美元債務更多。"
    spans = spans_of(text, [("恒基地產", "ORG"), ("港", "ORG"), ("三十億元", "VALUE"), ("美", "ORG")])
    assert texts(text, drop_currency_orgs(text, spans)) == [("恒基地產", "ORG"), ("三十億元", "VALUE")]


def test_a_one_character_metric_is_dropped():
    text = "其中,总资产规模过千亿元只有两家"
    spans = spans_of(text, [("中", "METRIC"), ("总资产规模", "METRIC"), ("千亿元", "VALUE")])
    assert texts(text, drop_short_spans(spans, "METRIC")) == [("总资产规模", "METRIC"), ("千亿元", "VALUE")]


def test_a_one_character_period_is_dropped():
    # web-23-05: 單 of 單計第三季 tagged as a PERIOD of its own took the quarter's facts' period
    text = "單計第三季,純利571.62億元"
    spans = spans_of(text, [("單", "PERIOD"), ("第三季", "PERIOD"), ("純利", "METRIC"), ("571.62億元", "VALUE")])
    assert texts(text, drop_short_spans(spans, "PERIOD")) == [("第三季", "PERIOD"), ("純利", "METRIC"),
                                                                ("571.62億元", "VALUE")]


@pytest.mark.parametrize("text, tagged, expected", [
    # the verb that introduces the value, glued to the METRIC (web-23-05, web-21-00)
    ("營業收入錄4,791.05億元", [("營業收入錄", "METRIC")], [("營業收入", "METRIC")]),
    ("純利報10.3億元", [("純利報", "METRIC")], [("純利", "METRIC")]),
    ("年度每股盈利料為4.95元", [("年度每股盈利料", "METRIC")], [("年度每股盈利", "METRIC")]),
    # an ORG glued to the first character of its verb (web-22-05)
    ("廣東明珠預計2025年度歸母凈利潤", [("廣東明珠預", "ORG")], [("廣東明珠", "ORG")]),
    ("中国人寿寿险公司在上半年", [("中国人寿寿险公司在", "ORG")], [("中国人寿寿险公司", "ORG")]),
    # the verb is the end of a word of the metric: kept
    ("投資回報為5%", [("投資回報", "METRIC")], [("投資回報", "METRIC")]),
    ("违约金额达3亿元", [("违约", "METRIC")], [("违约", "METRIC")]),
    ("报", [("报", "METRIC")], [("报", "METRIC")]),
    # a line of business glued after its bank (stage 14: 杭州银行科创金融 owns no figures)
    ("杭州银行科创金融服务科技型企业", [("杭州银行科创金融", "ORG")], [("杭州银行", "ORG")]),
    ("同花顺网站与APP用户活跃度提升", [("同花顺网站", "ORG")], [("同花顺", "ORG")]),  # its website (stage 17)
    ("招商基金資管業務規模7820.85億元", [("招商基金資管業", "ORG")], [("招商基金", "ORG")]),  # stage 20
    # stage 19: the currency word or the hedge before the value (国泰航空, 世紀互聯)
    ("股东应占亏损港币3.42亿元", [("应占亏损港币", "METRIC")], [("应占亏损", "METRIC")]),
    ("非IDC業務小幅增長1.4%", [("非IDC業務小幅", "METRIC")], [("非IDC業務", "METRIC")]),
    ("营业收入依次为58.03亿元、60.76亿元", [("营业收入依次", "METRIC")], [("营业收入", "METRIC")]),  # stage 22
    # stage 20: a line of business tagged with the 及 that joins it to the next (個人人壽及年金業務)
    ("個人人壽及年金業務的保費收入", [("個人人壽及", "ORG")], [("個人人壽", "ORG")]),
])
def test_trim_trailing_words(text, tagged, expected):
    assert texts(text, trim_trailing_words(text, spans_of(text, tagged))) == expected


@pytest.mark.parametrize("text, tagged, expected", [
    # web-20-04: the model cut 今 off 今年前三季度
    ("如今年前三季度投资收益率超", [("年前三季度", "PERIOD")], [("今年前三季度", "PERIOD")]),
    ("去年全年净利润", [("年全年", "PERIOD")], [("去年全年", "PERIOD")]),
    # the word before is another span's: left alone
    ("2024年前三季度", [("2024", "VALUE"), ("年前三季度", "PERIOD")], [("2024", "VALUE"), ("年前三季度", "PERIOD")]),
    ("2025年度业绩", [("2025年度", "PERIOD")], [("2025年度", "PERIOD")]),
])
def test_complete_period_prefixes(text, tagged, expected):
    assert texts(text, complete_period_prefixes(text, spans_of(text, tagged))) == expected


@pytest.mark.parametrize("text, tagged, expected", [
    # web-22-02, a roundup's table row: 北京银行宁波银行上海银行南京银行营收分别为…
    ("北京银行宁波银行上海银行南京银行营收", [("北京银行宁波银行上海银行南京银行", "ORG")],
     [("北京银行", "ORG"), ("宁波银行", "ORG"), ("上海银行", "ORG"), ("南京银行", "ORG")]),
    ("贵阳银行兰州银行郑州银行营收", [("贵阳银行兰州银行郑州银行", "ORG")],
     [("贵阳银行", "ORG"), ("兰州银行", "ORG"), ("郑州银行", "ORG")]),
    # one name whose parts end differently, or a single name: whole
    ("法国巴黎银行个人金融集团", [("法国巴黎银行个人金融集团", "ORG")], [("法国巴黎银行个人金融集团", "ORG")]),
    ("中国工商银行", [("中国工商银行", "ORG")], [("中国工商银行", "ORG")]),
    ("江苏江南农村商业银行", [("江苏江南农村商业银行", "ORG")], [("江苏江南农村商业银行", "ORG")]),
])
def test_split_joined_orgs(text, tagged, expected):
    assert texts(text, split_joined_orgs(text, spans_of(text, tagged))) == expected


@pytest.mark.parametrize("text, tagged, expected", [
    # web-22-00: an unseen rural bank's name in two pieces
    ("江蘇如東農商行實現營業收入", [("江蘇", "ORG"), ("東農商行", "ORG"), ("營業收入", "METRIC")],
     [("江蘇如東農商行", "ORG"), ("營業收入", "METRIC")]),
    # two organisations related by a word: apart (seed-002-0081, seed-002-0099)
    ("ST安信向金城银行", [("ST安信", "ORG"), ("金城银行", "ORG")], [("ST安信", "ORG"), ("金城银行", "ORG")]),
    ("360数科在港交所", [("360数科", "ORG"), ("港交所", "ORG")], [("360数科", "ORG"), ("港交所", "ORG")]),
    # the first piece is a whole name already
    ("招商银行兴业银行", [("招商银行", "ORG"), ("业银行", "ORG")], [("招商银行", "ORG"), ("业银行", "ORG")]),
])
def test_join_split_orgs(text, tagged, expected):
    assert texts(text, join_split_orgs(text, spans_of(text, tagged))) == expected


@pytest.mark.parametrize("text, tagged, expected", [
    # fresh pages (stage 6): a newspaper named as the source, an insurance line in an industry roundup
    ("据中国证券报记者了解,前5个月,保险业实现原保险保费收入26763亿元", [("中国证券", "ORG")], []),
    ("前三季度,农业保险、责任保险原保险保费收入分别为267.3亿元和172.8亿元",
     [("农业保险", "ORG"), ("责任保险", "ORG"), ("原保险保费收入", "METRIC")], [("原保险保费收入", "METRIC")]),
    ("产险业务中,交强险原保险保费收入1281.90亿元", [("交强险", "ORG"), ("原保险保费收入", "METRIC")],
     [("原保险保费收入", "METRIC")]),
    ("沪深两市成交额", [("沪深", "ORG"), ("成交额", "METRIC")], [("成交额", "METRIC")]),
    # an organisation named like a line of business in a longer name stays
    ("平安财产保险净利润", [("平安财产保险", "ORG")], [("平安财产保险", "ORG")]),
    # fresh pages (stage 14): a region and a region's market, a platform's segment, a table's stray letter
    ("长三角销售贡献为56%", [("长三角", "ORG"), ("销售贡献", "METRIC")], [("销售贡献", "METRIC")]),
    ("東歐市場佔集團出口約五成", [("東歐市場", "ORG")], []),
    ("蓝领(30%)和下沉市场", [("蓝领", "ORG")], []),
    ("O 15.8%", [("O", "ORG")], []),
    ("工、农、中、建、交", [("工", "ORG"), ("农", "ORG")], [("工", "ORG"), ("农", "ORG")]),
    # a Taiwan regulator's class of banks, a market's industry (stage 15)
    ("本國銀行稅前盈餘", [("本國銀行", "ORG")], []),
    ("香港保險業的統計數字", [("香港保險業", "ORG")], []),
    # bare class words and product lines (stages 7, 15, 16): 保險, 投資銀行, 國銀行 cut from 本國銀行, 定期人壽, ASP
    ("保險業務收入", [("保險", "ORG")], []),
    ("投資銀行業務收入", [("投資銀行", "ORG")], []),
    ("今年10月底本國銀行備抵呆帳", [("國銀行", "ORG")], []),
    ("定期人壽保費", [("定期人壽", "ORG")], []),
    ("ASP同比增長3.6%", [("ASP", "ORG")], []),
    ("國銀前11月稅前盈餘", [("國銀", "ORG")], []),  # Taiwan's domestic banks together (stage 17)
    ("本季澳門博彩毛收入按年上升13%", [("澳門博彩", "ORG")], []),  # a market's gaming industry (stage 17)
    ("意健险保费收入2576亿元", [("意健险", "ORG")], []),  # a P&C insurer's line (stage 18)
    # stage 20: a market of a Hong Kong drinks maker; Hong Kong's insurers written 港保險業
    ("新西蘭的收入增長5%", [("新西蘭", "ORG")], []),
    ("港保險業首季毛保費共1,220億元", [("港保險業", "ORG")], []),
    ("两融余额739亿元", [("两融", "ORG")], []),  # a broker's line of business
    ("其中苏州城区贷款贡献超过95%", [("苏州城区", "ORG")], []),  # a bank's home district (stage 21)
])
def test_drop_non_org_names(text, tagged, expected):
    assert texts(text, drop_non_org_names(text, spans_of(text, tagged))) == expected


@pytest.mark.parametrize("text, tagged, expected", [
    # fresh pages (stage 6): one character short of a report's name; into the number after it
    ("苏农银行2025年中报业绩稳健", [("2025年中", "PERIOD")], [("2025年中报", "PERIOD")]),
    ("24Q1-Q343家上市券商实现营收3714亿元", [("24Q1-Q34", "PERIOD")], [("24Q1-Q3", "PERIOD")]),
    # spans that read as no period for other reasons stay as they are
    ("2019-2021年的复合增长率", [("2019-2021年", "PERIOD")], [("2019-2021年", "PERIOD")]),
    ("目前", [("目前", "PERIOD")], [("目前", "PERIOD")]),
    # stage 19: a period's end word left to the metric after it joins the period; a final dividend keeps its 末期
    ("上半年末资管规模为15011亿元", [("上半年", "PERIOD"), ("末资管规模", "METRIC")],
     [("上半年末", "PERIOD"), ("资管规模", "METRIC")]),
    ("截至2023年底贷款余额", [("2023年", "PERIOD"), ("底贷款余额", "METRIC")], [("2023年底", "PERIOD"), ("贷款余额", "METRIC")]),
    ("公司拟派2021年末期股息", [("2021年", "PERIOD"), ("末期股息", "METRIC")], [("2021年", "PERIOD"), ("末期股息", "METRIC")]),
])
def test_repair_period_ends(text, tagged, expected):
    assert texts(text, repair_period_ends(text, spans_of(text, tagged))) == expected


def test_split_period_lists():
    # web-23-02: 中國人壽前三季度/Q3 實現歸母淨利潤1045.23/662.45 億元
    text = "中國人壽前三季度/Q3 實現歸母淨利潤"
    spans = spans_of(text, [("中國人壽", "ORG"), ("前三季度/Q3", "PERIOD"), ("歸母淨利潤", "METRIC")])
    assert texts(text, split_period_lists(text, spans)) == [("中國人壽", "ORG"), ("前三季度", "PERIOD"), ("Q3", "PERIOD"),
                                                             ("歸母淨利潤", "METRIC")]


def test_no_gold_span_is_changed_by_the_new_span_rules():
    """The rules only undo shapes the guide rules out: on every gold document's own spans they
    change nothing."""
    rules = (complete_period_prefixes, trim_trailing_words, split_joined_orgs, join_split_orgs, split_period_lists,
             drop_non_org_names, repair_period_ends, tag_coded_names)
    for doc in read_gold(Path(__file__).resolve().parents[1] / "annotations" / "gold"):
        spans = sorted((e.start, e.end, e.label) for e in doc.entities)
        for rule in rules:
            assert rule(doc.text, spans) == spans, (doc.id, rule.__name__)
        assert drop_short_spans(spans, "PERIOD") == spans, doc.id


def test_each_rule_can_be_switched_off_by_name():
    from caibao.decode import RULES, apply_span_rules

    text = "微众银行实现净利润108亿元"
    start = text.index("实现")
    spans = [(start, start + len("实现净利润"), "METRIC")]
    assert apply_span_rules(text, spans) == [(start + 2, start + 5, "METRIC")]  # all rules: 净利润
    without = [r for r in RULES if r != "trim_leading_words"]
    assert apply_span_rules(text, spans, without) == spans


def test_an_unknown_rule_in_a_config_is_an_error_naming_it(tmp_path):
    from caibao.config import load_config
    from caibao.io import InputError

    cfg = tmp_path / "exp.yaml"
    cfg.write_text("decoding:\n  rules: [merge_ranges, trim_leading_word]\n", "utf-8")
    with pytest.raises(InputError, match=r"unknown decoding rule 'trim_leading_word'"):
        load_config(cfg)
