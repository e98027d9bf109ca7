"""Tests of caibao.normalize.

The two tables in tests/data/ hold real strings from the seed corpus
(/work/shared/corpus), each with the expected normalisation worked out by
hand:

* values.tsv: span, the sentence it sits in (context), its offset there,
  expected number / low / high, unit, approx, sign, basis, status and the
  source document.  Empty number on an ``ok`` row means a range.
* periods.tsv: span, publication date, anchor period, expected normalized
  form, relative flag and status.  An empty ``relative`` is not checked
  (unparsed rows).
"""

from __future__ import annotations

import csv
import dataclasses
from datetime import date
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caibao.normalize import (
    ParsedPeriod,
    ParsedValue,
    chinese_to_number,
    find_approx,
    find_basis,
    find_sign,
    is_guidance,
    parse_period,
    parse_value,
)

DATA = Path(__file__).parent / "data"


def _read_tsv(name: str) -> list[dict[str, str]]:
    with open(DATA / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


VALUE_ROWS = _read_tsv("values.tsv")
PERIOD_ROWS = _read_tsv("periods.tsv")


def _opt_float(s: str) -> float | None:
    return float(s) if s != "" else None


def test_tables_are_big_enough():
    assert len(VALUE_ROWS) >= 150
    assert len(PERIOD_ROWS) >= 150
    assert sum(r["status"] == "unparsed" for r in VALUE_ROWS) >= 15
    assert sum(r["status"] == "unparsed" for r in PERIOD_ROWS) >= 15


# --- values table -----------------------------------------------------------


@pytest.mark.parametrize(
    "row", VALUE_ROWS, ids=[f"{i}:{r['source']}:{r['span']}" for i, r in enumerate(VALUE_ROWS)]
)
def test_value_table(row):
    ctx, span, start = row["context"], row["span"], int(row["span_start"])
    assert ctx[start : start + len(span)] == span, "table row offset is wrong"
    pv = parse_value(span, ctx, start)
    assert pv.status == row["status"], pv.reason
    if row["status"] == "unparsed":
        assert pv.number is None and pv.low is None and pv.high is None
        assert pv.reason
        return
    expected_number = _opt_float(row["number"])
    if expected_number is None:
        assert pv.number is None
        assert pv.low == pytest.approx(float(row["low"]))
        assert pv.high == pytest.approx(float(row["high"]))
    else:
        assert pv.number == pytest.approx(expected_number)
        assert pv.low is None and pv.high is None
    assert pv.unit == (row["unit"] or None)
    assert pv.approx is (row["approx"] == "1")
    assert pv.sign == int(row["sign"])
    assert pv.basis == (row["basis"] or None)


# --- periods table ----------------------------------------------------------


@pytest.mark.parametrize(
    "row",
    PERIOD_ROWS,
    ids=[f"{i}:{r['source']}:{r['span']}@{r['doc_date']}|{r['anchor']}" for i, r in enumerate(PERIOD_ROWS)],
)
def test_period_table(row):
    pp = parse_period(row["span"], row["doc_date"] or None, row["anchor"] or None)
    assert pp.status == row["status"], pp.reason
    assert pp.normalized == (row["normalized"] or None)
    if row["relative"] != "":
        assert pp.relative is (row["relative"] == "1")
    if row["status"] == "unparsed":
        assert pp.reason


# --- the examples of the brief and the guide ---------------------------------


@pytest.mark.parametrize(
    "span, number, unit",
    [
        ("2138亿元", 2138e8, "CNY"),
        ("21%", 21.0, "%"),
        ("1.65亿", 1.65e8, None),
        ("5000万美元", 5e7, "USD"),
        ("6114元", 6114.0, "CNY"),
        ("2个百分点", 2.0, "pp"),
        ("0.08美元", 0.08, "USD"),
        ("64 亿港元", 64e8, "HKD"),
        ("三成", 30.0, "%"),
        ("三分之一", 100 / 3, "%"),
        ("百分之二十", 20.0, "%"),
        ("一千二百万", 1.2e7, None),
        ("两亿", 2e8, None),
        ("-3.2%", -3.2, "%"),
        ("+20%", 20.0, "%"),
        ("8美仙", 0.08, "USD"),
        ("50.03港元", 50.03, "HKD"),
        ("2.087亿名", 2.087e8, "名"),
        ("4,123.61亿元", 4123.61e8, "CNY"),
        ("1.2 billion", 1.2e9, None),
        ("US$5.8 million", 5.8e6, "USD"),
        ("RMB1.2 billion", 1.2e9, "CNY"),
        ("HK$3.5bn", 3.5e9, "HKD"),
        ("US$5.8m", 5.8e6, "USD"),
        ("¥300", 300.0, "CNY"),
        ("￥300", 300.0, "CNY"),
        ("25倍", 25.0, "x"),
        ("5个基点", 5.0, "bp"),
        # Hong Kong rates in 厘 (淨息差1.88厘, 股息率5.3厘) are percent
        ("1.88厘", 1.88, "%"),
        # the region's other currencies (fresh pages, stage 7)
        ("269.594億澳門元", 269.594e8, "MOP"),
        ("114.1亿新加坡元", 114.1e8, "SGD"),
        ("26.2亿坡元", 26.2e8, "SGD"),
        ("5.3厘", 5.3, "%"),
        ("50bp", 50.0, "bp"),
        ("3pct", 3.0, "pp"),
        ("0.5‰", 0.05, "%"),
        ("２１％", 21.0, "%"),
        ("１，２３４万元", 1234e4, "CNY"),
        ("1.2萬億元", 1.2e12, "CNY"),
        ("十二家", 12.0, "家"),
        ("三点五亿元", 3.5e8, "CNY"),
        ("5角", 0.5, "CNY"),
        ("277.2百万港元", 2.772e8, "HKD"),
        ("10亿元人民币", 1e9, "CNY"),
        # fresh pages (stages 14, 15): Taiwan's 兆 is a trillion, counted basis points, a miswritten
        # 百分點, Hong Kong floor areas
        ("3兆1452亿元", 3.1452e12, "CNY"),
        ("44兆2685億元", 44.2685e12, "CNY"),
        ("7.8兆元", 7.8e12, "CNY"),
        ("18个BP", 18.0, "bp"),
        ("6.4個百份點", 6.4, "pp"),
        ("5,740萬平方呎", 5.74e7, "平方呎"),
        # stage 19: measured lengths (平均期限为53.3个月, 平均债务年期7.19年; gold web-02-01 3.9个月,
        # web-08-10 平均机龄4.4年) and counts of kinds (游戏支持14種語言)
        ("53.3个月", 53.3, "个月"),
        ("13.24個月", 13.24, "個月"),
        ("7.19年", 7.19, "年"),
        ("14種", 14.0, "種"),
        # stage 20: plots of land (新增21幅土地), containers (總貨運量195萬標準箱)
        ("21幅", 21.0, "幅"),
        ("195萬標準箱", 1.95e6, "標準箱"),
    ],
)
def test_value_forms(span, number, unit):
    pv = parse_value(span)
    assert pv.status == "ok", pv.reason
    assert pv.number == pytest.approx(number)
    assert pv.unit == unit


@pytest.mark.parametrize(
    "span, approx",
    [("60余家", True), ("1000多亿", True), ("4w+", True), ("十余万", True), ("千余人", True), ("2138亿元", False)],
)
def test_value_inner_hedges(span, approx):
    pv = parse_value(span)
    assert pv.ok and pv.approx is approx


@pytest.mark.parametrize(
    "span, low, high, unit",
    [
        ("4550亿至4900亿元", 4550e8, 4900e8, "CNY"),
        ("4550至4900亿元", 4550e8, 4900e8, "CNY"),
        ("15%-20%", 15.0, 20.0, "%"),
        ("10-20%", 10.0, 20.0, "%"),
        ("10%至20%", 10.0, 20.0, "%"),
        ("59.35港元至72.30港元", 59.35, 72.30, "HKD"),
        ("US$5-6 million", 5e6, 6e6, "USD"),
        ("-5%至-1%", -5.0, -1.0, "%"),
        ("3～5倍", 3.0, 5.0, "x"),
    ],
)
def test_ranges(span, low, high, unit):
    pv = parse_value(span)
    assert pv.ok, pv.reason
    assert pv.number is None and pv.is_range
    assert (pv.low, pv.high) == (pytest.approx(low), pytest.approx(high))
    assert pv.unit == unit


def test_range_with_decline_cue_is_negated_and_ordered():
    pv = parse_value("10%至20%", "预计营收同比下降10%至20%")
    assert pv.sign == -1 and pv.basis == "yoy"
    assert (pv.low, pv.high) == (pytest.approx(-20.0), pytest.approx(-10.0))


@pytest.mark.parametrize(
    "span, context",
    [
        ("3月16日", "3月16日，乐信发布2021年四季度及全年未经审计财务业绩。"),
        ("2021年", "乐信发布2021年四季度业绩"),
        ("2021-12-31", ""),
        ("03660", "360数科(03660.HK)"),
        ("3660", "360数科-S(3660.HK)涨超17%"),
        ("601360", "360集团(601360.SH)"),
        ("3660", "股份代号为“3660”。"),
        ("80、90后", "80、90后成为消费主力"),
        ("90后", "90后用户占比"),
        ("未来12个月", "公司将在未来12个月回购"),
        ("12个月", "公司将在未来12个月回购"),
        ("12", "公司将在未来12个月回购"),
        ("12个", "公司将在未来12个月回购"),
        ("10个月", "线上产品平均期限10个月"),  # an integer before a time word stays a duration
        ("2025年", "2025年"),
        ("第6届", "举办第6届信也科技杯"),
        ("前三", "排名行业前三"),
        ("六类", "覆盖六类场景"),
        ("2小时", "在2小时内完成"),
        ("2022", "AAAI 2022落下帷幕"),
        ("数十家", "与数十家银行合作"),
        ("万亿", "聚集万亿消费信贷科技市场"),
        ("十四五", "“十四五”规划"),
        ("Q4", "Q4用户新增1136万"),
        ("营收", "营收114亿元"),
        ("", ""),
        ("02", "02二次上市被股权冻结"),
        ("8", "北京时间3月10日8：30举行业绩电话会议"),
        ("2022 W", "王继平2022 WAIC观点"),
        ("18.7mm", "对应设计降雨量为18.7mm"),
        ("17573.58点", "恒生指数跌0.49%，报17573.58点"),
        ("5%/127%", "收入和成本分别贡献5%/127%"),
        ("4.5%至41.832亿元", "增长4.5%至41.832亿元"),
        ("三五家", "三五家公司"),
        ("+852-3027-6500", "中国香港：+852-3027-6500"),
        ("2019-2021", "药师帮2019-2021年"),
    ],
)
def test_not_values_are_unparsed(span, context):
    pv = parse_value(span, context)
    assert pv.status == "unparsed"
    assert pv.number is None and pv.low is None and pv.high is None
    assert pv.reason


def test_span_start_picks_the_right_occurrence():
    ctx = "营收同比增长20%，净利润同比下降20%。"
    first = parse_value("20%", ctx)
    second = parse_value("20%", ctx, span_start=ctx.rindex("20%"))
    assert first.number == 20.0 and first.sign == 1
    assert second.number == -20.0 and second.sign == -1


def test_span_not_in_context_uses_span_only():
    pv = parse_value("21%", "完全无关的句子，同比下降", span_start=None)
    assert pv.number == 21.0 and pv.sign == 1 and pv.basis is None


def test_losses_follow_the_guide():
    # 净利润亏损8.3亿元 -> negative; 净亏损8.3亿元 -> positive (the metric is a loss)
    assert parse_value("8.3亿元", "公司净利润亏损8.3亿元。").number == pytest.approx(-8.3e8)
    assert parse_value("8.3亿元", "公司净利润为亏损8.3亿元。").number == pytest.approx(-8.3e8)
    assert parse_value("8.3亿元", "公司净亏损8.3亿元。").number == pytest.approx(8.3e8)
    assert parse_value("8.3亿元", "公司經營虧損8.3億元。".replace("億", "亿")).number == pytest.approx(8.3e8)
    # 亏损收窄: the loss shrank, the change is negative
    narrowed = parse_value("30%", "净亏损同比收窄30%。")
    assert narrowed.number == pytest.approx(-30.0) and narrowed.basis == "yoy"
    # 收窄至 gives the new level
    assert parse_value("5亿元", "净亏损收窄至5亿元。").number == pytest.approx(5e8)
    assert parse_value("5亿元", "由盈转亏，净利润转亏5亿元").number == pytest.approx(-5e8)
    # fresh pages (stage 15): 縮窄 (a loss narrowed) and 蒸发 (a market value evaporated) are declines
    assert parse_value("75.6%", "調整后凈虧損為2090萬元,同比縮窄75.6%。", 18).number == pytest.approx(-75.6)
    assert parse_value("60亿港元", "股价暴跌,市值蒸发60亿港元。", 9).number == pytest.approx(-6e9)


def test_frozen_results():
    pv = parse_value("21%")
    with pytest.raises(dataclasses.FrozenInstanceError):
        pv.number = 3.0  # type: ignore[misc]
    pp = parse_period("2021Q4")
    with pytest.raises(dataclasses.FrozenInstanceError):
        pp.normalized = "x"  # type: ignore[misc]
    assert isinstance(pv, ParsedValue) and isinstance(pp, ParsedPeriod)


# --- helpers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "s, n",
    [
        ("一千二百", 1200),
        ("一千二百万", 12_000_000),
        ("两亿", 200_000_000),
        ("十二", 12),
        ("二十", 20),
        ("十", 10),
        ("一百零五", 105),
        ("一千零五十", 1050),
        ("一千二", 1200),
        ("三万五", 35_000),
        ("两亿五", 250_000_000),
        ("一万亿", 1_000_000_000_000),
        ("三千五百亿", 350_000_000_000),
        ("一亿二千万", 120_000_000),
        ("一亿零五万", 100_050_000),
        ("二〇二一", 2021),
        ("兩億", 200_000_000),
        ("壹仟贰佰", 1200),
        ("4.5万", 45_000),
        ("3千5百万", 35_000_000),
        ("1,234", 1234),
        ("１２３", 123),
        ("三点五", 3.5),
        ("千", 1000),
        ("-5", -5),
    ],
)
def test_chinese_to_number(s, n):
    assert chinese_to_number(s) == pytest.approx(n)


@pytest.mark.parametrize("s", ["", "万", "亿", "三五", "abc", "十百", "一万二万", "营收", "1.2.3"])
def test_chinese_to_number_rejects(s):
    assert chinese_to_number(s) is None


@pytest.mark.parametrize(
    "before, basis",
    [
        ("营收114亿元，同比增长", "yoy"),
        ("按年跌", "yoy"),
        ("较上年的1.882亿名增长", "yoy"),
        ("较去年同期增长", "yoy"),
        ("较2021年增长", "yoy"),
        ("从2021年同期的40.16亿元增长", "yoy"),
        ("淨利年增", "yoy"),
        ("环比下降", "qoq"),
        ("環比成長了約", "qoq"),
        ("按季增长", "qoq"),
        ("较上季度增长", "qoq"),
        ("1 天拖欠率季減 ", "qoq"),
        ("比第三季度的 5.86% 提高了 ", "qoq"),
        ("revenue grew 5% year-over-year, while margin rose ", None),
        ("revenue grew year over year by ", "yoy"),
        ("income decreased sequentially by ", "qoq"),
        ("较上年末上升", None),
        ("较年初增长", None),
        ("占同期总交易额的", None),
        ("复合年增长率为", None),
        ("营收114亿元", None),
        ("同比增长21%；营收", None),
    ],
)
def test_find_basis(before, basis):
    assert find_basis(before) == basis


@pytest.mark.parametrize(
    "before, sign",
    [
        ("同比下降", -1),
        ("按年跌", -1),
        ("同比下滑了", -1),
        ("减少了", -1),
        ("净亏损同比收窄", -1),
        ("净利润亏损", -1),
        ("净亏损", 1),
        ("累计亏损达", 1),
        ("同比增长", 1),
        ("营收114亿元，调整后息税前利润", 1),
        ("同比下降30.4%至", 1),
        ("应占净利润同比下滑至", 1),
        ("从2019年的86.9%下降到2021年的", 1),
        ("分别下降2.0%、", -1),
        ("下降了 5% 或人民幣 ", -1),
        ("decreased by 5% or RMB73 million, to ", 1),
        ("90-day delinquency ratio decreased by ", -1),
        ("net income increased by ", 1),
        ("信用减值损失为", 1),
        ("", 1),
        # the size of a decline, not a level (web-01-01, web-01-02)
        ("资产总额为655.60亿元,较2023年末的712.80亿元减少57.2亿元,同比降幅为", -1),
        ("营业收入51.88亿元,较上年同期减少3.49亿元,减少幅度为", -1),
        # shrinking, falling back, cutting (web-04-07, web-05-03, web-07-04, web-05-04)
        ("自2022年以来已连续三年缩表,整体缩水", -1),
        ("友邦保險上半年純利倒退逾", -1),
        ("核心本地業務經營溢利挫近", -1),
        ("較2022年同期的0.49元削", -1),
        ("市值缩水至", 1),
        ("統一企業上半年營收衰退", -1),  # stage 20 (經濟日報)
        ("2021年经调整净利率为负", -1),  # a negative margin written out before it (stage 21: 喜马拉雅)
        ("资产负债率为", 1),  # 负 of 负债 is no sign
        ("单3季度新增贷款22.65亿元,同比少增", -1),  # a smaller increase than a year before (stage 21)
        ("存款同比多增", 1),
    ],
)
def test_find_sign(before, sign):
    assert find_sign(before) == sign


@pytest.mark.parametrize(
    "before, after, approx",
    [
        ("占比达到近", "", True),
        ("约为", "", True),
        ("约人民币", "", True),
        ("缩减了超", "", True),
        ("超过", "大关", True),
        ("逾", "", True),
        ("不到", "", True),
        ("低于人民币", "", True),
        ("", "左右", True),
        ("", "以上", True),
        ("", "多名", True),
        ("", "多元化", False),
        ("was approximately RMB", "", True),
        ("decreased by more than ", "", True),
        ("达", "", False),
        ("高达", "", False),
        ("仅", "", False),
        ("营收", "，同比增长", False),
    ],
)
def test_find_approx(before, after, approx):
    assert find_approx(before, after) is approx


@pytest.mark.parametrize(
    "sentence, expected",
    [
        ("预计2023年奇富科技的总贷款额将在4550亿至4900亿元人民币之间。", True),
        ("乐信给出全年促成交易额预计增长10%的经营目标。", True),
        ("公司指引2023年全年投放量4550亿元至4950亿元。", True),
        ("我們預計第一季的 GMV 將與第四季持平。", True),
        ("Looking ahead, we expect Q1 GMV to be flat with Q4.", True),
        ("The company raised its full-year guidance.", True),
        ("大和将目标价上调至30美元。", True),
        ("营收114亿元，同比增长21%。", False),
        ("90天以上的逾期率为1.92%，资产质量始终控制在预期范围。", False),
        ("净利润超市场预期。", False),
        ("新增貸款履約風險符合我們的預期。", False),
        ("Results were better than expected.", False),
        # comparisons with the consensus in Hong Kong reports are actuals, not forecasts
        ("第二季小鵬汽車銷量收入按年升1.5倍至168.84億元，略遜預期的169.34億元，汽車毛利率亦增加7.9個百分點至14.3%，"
         "勝預期的11.4%。", False),
        # plans (fresh pages, stages 10-16); a proposed dividend and a profit warning stay reported (the fact gold)
        ("鴻海昨天並公告，董事會決議發行無擔保普通公司債，擬發行總額不超過500億元。", True),
        ("中原消费金融计划于2月24日发行2025年第一期个人消费ABS,规模达15亿元。", True),
        ("公司管理层表示，未来几年，公司的分红率水平希望不低于70%。", True),
        ("公司拟派2021年末期股息每股1.50元,全年股息每股2.38元。", False),
        ("A股42家上市券商中已有半数披露2025年度业绩预告或业绩快报,合计净利润超过千亿元。", False),
    ],
)
def test_is_guidance(sentence, expected):
    assert is_guidance(sentence) is expected


# --- periods: the examples of the brief ----------------------------------------


@pytest.mark.parametrize(
    "span, doc_date, anchor, normalized, relative",
    [
        ("去年", "2023-03-10", None, "2022FY", True),
        ("去年", date(2023, 3, 10), None, "2022FY", True),
        ("去年", "2023-03-10 09:00:00 +0800", None, "2022FY", True),
        ("全年", None, "2021年四季度", "2021FY", True),
        ("全年", None, "2021Q4", "2021FY", True),
        ("单季", None, "2022Q3", "2022Q3", True),
        ("本季度", None, "2022Q3", "2022Q3", True),
        ("四季度", "2022-03-16", None, "2021Q4", True),
        ("年末", None, "2021", "2021-12-31", True),
        ("年末", None, "2021FY", "2021-12-31", True),
        ("季度末", None, "2022Q1", "2022-03-31", True),
        ("报告期", None, "2022Q1-Q3", "2022Q1-Q3", True),
        ("报告期末", None, "2022Q1-Q3", "2022-09-30", True),
        ("去年同期", None, "2022Q4", "2021Q4", True),
        ("上年同期", None, "2022H1", "2021H1", True),
        ("同期", None, "2022Q4", "2022Q4", True),
        # 年內 is the period under review (a Hong Kong interim: 該行指出年內淨利息收入…), like 期內
        ("年內", "2025-08-21", "2025H1", "2025H1", True),
        ("2025年前九月", None, None, "2025Q1-Q3", False),  # 前N月 without 个 (壽險公會, a fresh page)
        ("年内", None, "2024FY", "2024FY", True),
        ("截至2021年12月31日", None, None, "2021-12-31", False),
        ("2021年12月31日", None, None, "2021-12-31", False),
        ("2021年四季度末", None, None, "2021-12-31", False),
        ("2022第四季度", None, None, "2022Q4", False),
        ("2022年第四季度", None, None, "2022Q4", False),
        ("22Q4", None, None, "2022Q4", False),
        ("4Q22", None, None, "2022Q4", False),
        ("2022Q4", None, None, "2022Q4", False),
        ("2022年4季度", None, None, "2022Q4", False),
        ("2022年Q4", None, None, "2022Q4", False),
        ("2022年前三季度", None, None, "2022Q1-Q3", False),
        ("今年前三季度", "2022-11-20", None, "2022Q1-Q3", True),
        # Hong Kong style (港交所, 香港01): the first three quarters, the quarter ending in September
        ("今年首3季", "2025-11-05", None, "2025Q1-Q3", True),
        ("2025年首三季度", None, None, "2025Q1-Q3", False),
        ("今年9月底止第三季", "2025-11-05", None, "2025Q3", True),
        ("上半年", "2022-09-01", None, "2022H1", True),
        ("二季度", "2022-09-01", None, "2022Q2", True),
        ("2022财年", None, None, "2022FY", False),
        ("FY2022", None, None, "2022FY", False),
        ("2023年1月", None, None, "2023-01", False),
        ("2024年第四季", None, None, "2024Q4", False),
        ("第四季", "2025-03-18", None, "2024Q4", True),
        ("上半年", None, "2024年", "2024H1", True),
        ("今年三季度", "2022-12-01", None, "2022Q3", True),
        ("截至2022年12月31日止年度", None, None, "2022FY", False),
        ("截至2022年6月30日止六个月", None, None, "2022H1", False),
        # HK results: 集團截至二零二五年六月三十日止六個月內 (內 closes the span)
        ("二零二五年六月三十日止六個月內", None, None, "2025H1", False),
        ("截至2022年9月30日止九个月", None, None, "2022Q1-Q3", False),
        ("截至2022年9月30日止三个月", None, None, "2022Q3", False),
        # HK interim results (web articles): 中期 after a date ending the half
        ("2023年6月30日止6个月中期", None, None, "2023H1", False),
        ("截至2020年6月30日中期", None, None, "2020H1", False),
        ("截至今年6月底止中期", "2024-08-28", None, "2024H1", True),
        ("2024年中期", None, None, "2024H1", False),
        # Hong Kong news's 上季 is the quarter just reported (美團上季收入, 2022-08-26); 上季度 the one before
        ("上季", "2022-08-26", None, "2022Q2", True),
        ("上季", None, "2022Q2", "2022Q1", True),
        ("上季度", "2022-11-17", None, "2022Q2", True),
        ("2021Q4", None, None, "2021Q4", False),
        ("2021-12-31", None, None, "2021-12-31", False),
        ("Q4 2024", None, None, "2024Q4", False),
        ("the fourth quarter of 2024", None, None, "2024Q4", False),
        ("full year 2024", None, None, "2024FY", False),
        ("FY24", None, None, "2024FY", False),
        ("first half of 2024", None, None, "2024H1", False),
        ("first nine months of 2022", None, None, "2022Q1-Q3", False),
        ("December 31, 2024", None, None, "2024-12-31", False),
        ("end of 2024", None, None, "2024-12-31", False),
        ("the fourth quarter", "2025-03-18", None, "2024Q4", True),
        ("last year", "2025-03-18", None, "2024FY", True),
        ("二〇二二年", None, None, "2022FY", False),
        ("2022年第2季度", None, None, "2022Q2", False),
        ("2月29日", "2024-03-01", None, "2024-02-29", True),
        ("去年同期", None, "2024-02-29", "2023-02-28", True),
        ("1Q25末", None, None, "2025-03-31", False),  # 1Q25末客户资金规模1431.7亿元
        ("1H25末", None, None, "2025-06-30", False),
        ("2022年當年", None, None, "2022FY", False),  # 2022年當年新增髮卡量0.5億張
    ],
)
def test_period_forms(span, doc_date, anchor, normalized, relative):
    pp = parse_period(span, doc_date, anchor)
    assert pp.status == "ok", pp.reason
    assert pp.normalized == normalized
    assert pp.relative is relative


@pytest.mark.parametrize(
    "span, doc_date, anchor",
    [
        ("去年", None, None),
        ("去年", None, "2022Q4"),  # deictic: needs the publication date
        ("全年", None, None),
        ("Q4", None, None),
        ("单季", None, "2021FY"),  # no quarter in the anchor
        ("报告期", "2022-03-01", None),
        ("同期", "2022-03-01", None),
        ("年内", "2022-03-01", None),  # under review: the builder gives the report
        ("未来12个月", "2022-03-17", None),
        ("过去一年", "2022-03-17", None),
        ("近三年", "2022-03-17", None),
        ("2020、2021全年", None, None),
        ("2019年至2021年", None, None),
        ("今年以来", "2022-06-01", None),
        ("同比", "2022-06-01", None),
        ("营收", None, None),
        ("2022年13月", None, None),
        ("2021年2月30日", None, None),
        ("", None, None),
        ("截至2022年8月15日止年度", None, None),
    ],
)
def test_periods_unparsed(span, doc_date, anchor):
    pp = parse_period(span, doc_date, anchor)
    assert pp.status == "unparsed"
    assert pp.normalized is None
    assert pp.reason


def test_unresolvable_relative_period_is_marked_relative():
    pp = parse_period("上半年")
    assert pp.status == "unparsed" and pp.relative is True


def test_anchor_wins_over_doc_date_for_anaphoric_periods():
    # a quarter without a year takes the anchor's year even if the doc date says otherwise
    assert parse_period("四季度", "2023-03-10", "2021年").normalized == "2021Q4"
    # ... but deictic years count from the publication date
    assert parse_period("去年全年", "2022-03-17", "2021年四季度").normalized == "2021FY"


def test_quarter_without_year_is_the_last_ended_one():
    # published on the last day of a quarter: that quarter has not ended yet
    assert parse_period("一季度", "2023-03-31").normalized == "2022Q1"
    assert parse_period("一季度", "2023-04-01").normalized == "2023Q1"
    assert parse_period("上半年", "2022-06-30").normalized == "2021H1"


# --- properties ------------------------------------------------------------------

_SCALES = {"万": 10**4, "亿": 10**8, "万亿": 10**12, "千万": 10**7, "百万": 10**6, "萬": 10**4,
           "億": 10**8, "w": 10**4, "W": 10**4, "k": 10**3, "K": 10**3, "million": 10**6,
           "billion": 10**9, "mn": 10**6, "bn": 10**9}
_CURRENCIES = {"元": "CNY", "美元": "USD", "港元": "HKD", "港币": "HKD", "": None}


@settings(max_examples=300, deadline=None)
@given(n=st.integers(min_value=1, max_value=10**6), scale=st.sampled_from(sorted(_SCALES)),
       space=st.sampled_from(["", " "]))
def test_prop_integer_with_scale(n, scale, space):
    pv = parse_value(f"{n}{space}{scale}")
    assert pv.status == "ok", pv.reason
    assert pv.number == pytest.approx(n * _SCALES[scale])


@settings(max_examples=200, deadline=None)
@given(n=st.integers(min_value=1, max_value=10**6), scale=st.sampled_from(["万", "亿", "万亿", ""]),
       cur=st.sampled_from(sorted(_CURRENCIES)))
def test_prop_currency_and_scale(n, scale, cur):
    span = f"{n}{scale}{cur}"
    if not scale and not cur and 1900 <= n <= 2099:
        return  # a bare year-like number is unparsed on purpose
    pv = parse_value(span)
    assert pv.status == "ok", (span, pv.reason)
    assert pv.number == pytest.approx(n * {"万": 1e4, "亿": 1e8, "万亿": 1e12, "": 1}[scale])
    assert pv.unit == _CURRENCIES[cur]


@settings(max_examples=200, deadline=None)
@given(x=st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False),
       pct=st.sampled_from(["%", "％"]))
def test_prop_percent(x, pct):
    pv = parse_value(f"{x}{pct}")
    assert pv.unit == "%"
    assert pv.number == pytest.approx(float(x))


@settings(max_examples=200, deadline=None)
@given(x=st.decimals(min_value="0.01", max_value=1000, places=2), cue=st.sampled_from(["下降", "减少", "下滑", "跌", "降低"]))
def test_prop_decline_cues_negate(x, cue):
    ctx = f"营收同比{cue}{x}%。"
    pv = parse_value(f"{x}%", ctx)
    assert pv.sign == -1 and pv.basis == "yoy"
    assert pv.number == pytest.approx(-float(x))


@settings(max_examples=200, deadline=None)
@given(a=st.integers(min_value=0, max_value=10**4), d=st.integers(min_value=1, max_value=10**4),
       sep=st.sampled_from(["至", "-", "~", "到"]), unit=st.sampled_from(["%", "亿元", "万人"]))
def test_prop_ranges(a, d, sep, unit):
    b = a + d
    pv = parse_value(f"{a}{unit}{sep}{b}{unit}")
    assert pv.status == "ok", pv.reason
    assert pv.number is None
    assert pv.low <= pv.high
    assert pv.high / pv.low == pytest.approx(b / a) if a else pv.low == 0


_CN = "零一二三四五六七八九"


def _to_chinese(n: int) -> str:
    """An independent int -> Chinese numeral writer (formal style)."""
    if n == 0:
        return "零"

    def below_10k(x: int) -> str:
        out, zero, started = "", False, False
        for u, ch in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
            digit = x // u % 10
            if digit == 0:
                zero = zero or started
            else:
                if zero:
                    out += "零"
                    zero = False
                out += _CN[digit] + ch
                started = True
        return out

    yi, rem = divmod(n, 10**8)
    wan, ge = divmod(rem, 10**4)
    s = ""
    if yi:
        s += _to_chinese(yi) + "亿"
    if wan:
        if yi and wan < 1000:
            s += "零"
        s += below_10k(wan) + "万"
    elif yi and ge:
        s += "零"
    if ge:
        if (yi or wan) and ge < 1000 and not s.endswith("零"):
            s += "零"
        s += below_10k(ge)
    return s


@settings(max_examples=500, deadline=None)
@given(n=st.integers(min_value=0, max_value=10**13))
def test_prop_chinese_numerals_roundtrip(n):
    assert chinese_to_number(_to_chinese(n)) == n


@settings(max_examples=200, deadline=None)
@given(n=st.integers(min_value=0, max_value=10**12))
def test_prop_thousands_separators(n):
    assert chinese_to_number(f"{n:,}") == n


_CN_Q = {1: "一", 2: "二", 3: "三", 4: "四"}


@settings(max_examples=200, deadline=None)
@given(y=st.integers(min_value=1990, max_value=2099), q=st.integers(min_value=1, max_value=4),
       form=st.sampled_from(["{y}年第{c}季度", "{y}年{c}季度", "{y}Q{q}", "{y}年Q{q}", "{y}年第{q}季度", "Q{q} {y}"]))
def test_prop_quarters(y, q, form):
    pp = parse_period(form.format(y=y, q=q, c=_CN_Q[q]))
    assert pp.normalized == f"{y}Q{q}"
    assert pp.relative is False


@settings(max_examples=200, deadline=None)
@given(d=st.dates(min_value=date(1990, 1, 1), max_value=date(2099, 12, 31)))
def test_prop_dates(d):
    assert parse_period(f"{d.year}年{d.month}月{d.day}日").normalized == d.isoformat()
    assert parse_period(f"截至{d.year}年{d.month}月{d.day}日").normalized == d.isoformat()


@settings(max_examples=200, deadline=None)
@given(doc=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
       q=st.integers(min_value=1, max_value=4))
def test_prop_bare_quarter_has_ended_before_publication(doc, q):
    pp = parse_period(f"第{_CN_Q[q]}季度", doc)
    assert pp.ok and pp.relative
    year, quarter = int(pp.normalized[:4]), int(pp.normalized[-1])
    assert quarter == q
    end = date(year, 3 * q, [31, 30, 30, 31][q - 1])
    assert end < doc
    # and it is the most recent one
    assert date(year + 1, 3 * q, [31, 30, 30, 31][q - 1]) >= doc


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=20))
def test_prop_never_raises(text):
    pv = parse_value(text, "前后" + text + "文字")
    assert pv.status in ("ok", "unparsed")
    if pv.status == "unparsed":
        assert pv.number is None and pv.low is None and pv.high is None
    else:
        assert pv.number is not None or (pv.low is not None and pv.high is not None)
    pp = parse_period(text, "2022-03-17", text)
    assert pp.status in ("ok", "unparsed")
    assert (pp.normalized is None) == (pp.status == "unparsed")


def test_value_cue_words_are_data_validated_on_load(tmp_path, monkeypatch):
    """The value normaliser's vocabularies live in resources/value_cues.yaml; a cue added there is
    used with no code change, and a file of the wrong shape is refused when loaded."""
    import yaml
    from pydantic import ValidationError

    from caibao.normalize import values

    cues = values.load_value_cues()
    assert cues.sign_cues["下降"] == -1 and cues.currency_suffixes["港仙"][0] == "HKD"
    assert parse_value("3.2%", "净利润同比下降3.2%", 7).number == -3.2
    raw = yaml.safe_load(resources.files("caibao").joinpath("resources/value_cues.yaml").read_text("utf-8"))
    raw["sign_cues"]["下降"] = "down"
    with pytest.raises(ValidationError):
        values.ValueCues.model_validate(raw)
    raw["sign_cues"]["下降"] = -1
    raw["unknown_list"] = ["x"]
    with pytest.raises(ValidationError):
        values.ValueCues.model_validate(raw)


def test_period_cue_words_are_data_validated_on_load():
    """Relative period words live in resources/period_cues.yaml; an operation the resolver does not
    know is refused when the file is loaded, not when a sentence first meets the word."""
    import yaml
    from pydantic import ValidationError

    from caibao.normalize import periods

    cues = periods.load_period_cues()
    assert cues.anaphoric_terms["去年同期"] == "same_last_year" and cues.deictic_years["去年"] == -1
    assert parse_period("去年同期", "2024-08-20", anchor="2024H1").normalized == "2023H1"
    raw = yaml.safe_load(resources.files("caibao").joinpath("resources/period_cues.yaml").read_text("utf-8"))
    raw["anaphoric_terms"]["去年同期"] = "last_year_same_period"
    with pytest.raises(ValidationError):
        periods.PeriodCues.model_validate(raw)


@pytest.mark.parametrize("span, normalized", [
    ("1-3Q24", "2024Q1-Q3"),               # brokers' first three quarters (web-23-02)
    ("Q3期末", "2025-09-30"),              # web-21-04
    ("Q3 單季度", "2025Q3"),               # web-23-02
    ("截至2020年3月31日的年度", "2020FY"),   # web-21-05
    ("截至6月30日止第二季", "2025Q2"),       # web-21-00
    ("截至今年9月底止首三季", "2025Q1-Q3"),   # web-23-05
    ("前5个月", None),                     # a run of months the format cannot say
])
def test_period_forms_of_the_fifth_round(span, normalized):
    assert parse_period(span, "2025-10-30").normalized == normalized


@pytest.mark.parametrize("span, normalized", [
    ("累計上半年", "2025H1"),               # Taiwan monthly reports (chk8-2-02, chk8-4-05)
    ("累計前三季", "2025Q1-Q3"),            # chk12-4-02
    ("7月單月", "2025-07"),                 # a single month beside 累計 (chk10-4-01)
    ("去年12月單月", "2024-12"),            # chk9-4-03
    ("截至今年6月底止", "2025-06-30"),       # 截至…止 without a length (chk7-1-01)
    ("截至2015年12月31日止全年度", "2015FY"),  # chk8-1-02
    ("9M25", "2025Q1-Q3"),                  # brokers' first nine months (chk7-4-01)
    ("6M2025", "2025H1"),
    ("24 Q1-Q3", "2024Q1-Q3"),              # a year and its part written apart (chk11-1-02)
    ("2024/2025財政年度", "2025FY"),         # Hong Kong fiscal years by their end year (chk11-4-05)
    ("2025/26財政年度", "2026FY"),
    ("2025财政年度", "2025FY"),              # chk13-4-06
    ("去（2025）年", "2025FY"),              # Taiwan writes the year a deictic word means (stage 18)
    ("2025）年", "2025FY"),                  # ... and the model's span may start inside the bracket
    ("去(2025)年12月", "2025-12"),
    ("累计前5月", None),                    # still a run of months the format cannot say
    ("單月", None),                         # no month named
    ("首9個月", "2025Q1-Q3"),                # Hong Kong's first nine months (stage 21: RTHK on industrial profits)
    ("2021年首九個月", "2021Q1-Q3"),
])
def test_period_forms_of_the_fresh_pages(span, normalized):
    assert parse_period(span, "2025-10-30").normalized == normalized


@pytest.mark.parametrize("context, span, number, unit", [
    ("营收分别为70.5、90.9和101亿元", "70.5", 70.5e8, "CNY"),  # the list's last member carries the unit
    ("平均期限分别为3.5、4.2和5.1个月", "3.5", 3.5, "个月"),  # a measured length shared out (stage 19)
    # a year after the list is no unit of its members (stage 17: 信托公司标准差 came out in 年)
    ("标准差分别为3.46、4.86、2.69、3.86,2015年上半年55家信托公司", "3.46", 3.46, None),
    ("分别为3、4和5个月", "3", 3.0, None),  # whole months: durations, no unit
    # a slash list of four-digit amounts is no list of dates (stage 21: 兴证全球基金's fund sizes)
    ("非货/权益/债券基金规模分别为2792.1/1428.4/1193.3 亿元", "1428.4", 1428.4e8, "CNY"),
])
def test_a_bare_number_takes_the_unit_its_list_ends_with(context, span, number, unit):
    pv = parse_value(span, context, context.index(span))
    assert (pv.number, pv.unit) == (pytest.approx(number), unit)


@pytest.mark.parametrize("context, span, number", [
    # a count of the group a decline names is no decline (stage 14: 證交所's 衰退公司共292家)
    ("其中营收成长公司共661家,衰退公司共292家", "292家", 292.0),
    ("营收下降的公司有292家", "292家", 292.0),
    # a count that itself declines stays negative
    ("营业网点减少12家", "12家", -12.0),
])
def test_a_count_of_a_group_a_decline_names(context, span, number):
    assert parse_value(span, context, context.index(span)).number == number
