"""Document-level resolution of the fact builder: real sentences -> expected fact fields.

Each case is a short real text (from public news pages) annotated as the guide
says, written with ⟦span|LABEL⟧ marks; relations name spans by their text
(``text#2`` for the second span with that text). The expected org is the
mention text the fact gets, the period its normalised form.
"""

from __future__ import annotations

import re

import pytest

from caibao import facts as facts_mod
from caibao.facts import build_facts, is_balance, is_flow, org_groups, org_key
from caibao.schema import Document, Entity, Relation

MARK = re.compile(r"⟦([^|⟧]+)\|([A-Z]+)⟧")


def marked_doc(marked: str, relations: list[tuple[str, str, str]], date: str | None = None,
               source: str | None = None) -> Document:
    text, entities, names, pos = "", [], {}, 0
    for m in MARK.finditer(marked):
        text += marked[pos : m.start()]
        surface, label = m.group(1), m.group(2)
        eid = f"e{len(entities) + 1}"
        entities.append(Entity(id=eid, start=len(text), end=len(text) + len(surface), label=label))
        n = sum(1 for k in names if k == surface or k.startswith(surface + "#")) + 1
        names[surface if n == 1 else f"{surface}#{n}"] = eid
        text += surface
        pos = m.end()
    text += marked[pos:]
    rels = [Relation(head=names[h], tail=names[t], label=lab) for h, t, lab in relations]
    return Document(id="case", text=text, meta={"date": date, "source": source}, entities=entities, relations=rels)


def facts_by_value(doc: Document) -> dict[str, tuple]:
    return {f.value.text: (f.org.text if f.org else None, f.period.normalized if f.period else None)
            for f in build_facts(doc)}


CASES = [
    pytest.param(  # a roundup: 其 refers to the company named earlier in the paragraph, not the title's first org
        "⟦招联消金⟧ORG、⟦兴业消金⟧ORG业绩承压\n"
        "根据⟦中国银行|ORG⟧财报披露,⟦中银消金|ORG⟧⟦2024全年|PERIOD⟧实现⟦净利润|METRIC⟧⟦0.45亿元|VALUE⟧。"
        "但截至⟦2024年末|PERIOD⟧,其⟦资产总额|METRIC⟧⟦791.51亿元|VALUE⟧,同比增长了⟦6.53%|VALUE⟧。",
        [("中银消金", "净利润", "org_metric"), ("净利润", "0.45亿元", "metric_value"),
         ("0.45亿元", "2024全年", "value_period"), ("资产总额", "791.51亿元", "metric_value"),
         ("资产总额", "6.53%", "metric_change"), ("791.51亿元", "2024年末", "value_period"),
         ("6.53%", "2024年末", "value_period")],
        "2025-04-11",
        {"0.45亿元": ("中银消金", "2024FY"), "791.51亿元": ("中银消金", "2024-12-31"),
         "6.53%": ("中银消金", "2024-12-31")},
        id="roundup-paragraph-owner",
    ),
    pytest.param(  # a balance linked to a year is an as-of figure at that year's end
        "数据显示,⟦2024年|PERIOD⟧⟦兴业消金|ORG⟧⟦贷款余额|METRIC⟧下降⟦5.2%|VALUE⟧至⟦819.4亿元|VALUE⟧。",
        [("兴业消金", "贷款余额", "org_metric"), ("贷款余额", "5.2%", "metric_change"),
         ("贷款余额", "819.4亿元", "metric_value"), ("5.2%", "2024年", "value_period"),
         ("819.4亿元", "2024年", "value_period")],
        "2025-04-11",
        {"5.2%": ("兴业消金", "2024-12-31"), "819.4亿元": ("兴业消金", "2024-12-31")},
        id="balance-as-of",
    ),
    pytest.param(  # a flow of the same year stays the year
        "⟦兴业消金|ORG⟧⟦2024年|PERIOD⟧⟦营业收入|METRIC⟧⟦100.67亿元|VALUE⟧,同比下滑⟦10.36%|VALUE⟧。",
        [("兴业消金", "营业收入", "org_metric"), ("营业收入", "100.67亿元", "metric_value"),
         ("营业收入", "10.36%", "metric_change"), ("100.67亿元", "2024年", "value_period"),
         ("10.36%", "2024年", "value_period")],
        None,
        {"100.67亿元": ("兴业消金", "2024FY"), "10.36%": ("兴业消金", "2024FY")},
        id="flow-stays-a-year",
    ),
    pytest.param(  # a forecast's quarter without a year lies ahead of the publication date
        "⟦趣店|ORG⟧预计⟦第四季度|PERIOD⟧⟦营收|METRIC⟧将达到⟦12亿元|VALUE⟧。",
        [("趣店", "营收", "org_metric"), ("营收", "12亿元", "metric_value"), ("12亿元", "第四季度", "value_period")],
        "2024-11-13",
        {"12亿元": ("趣店", "2024Q4")},
        id="forecast-forward",
    ),
    pytest.param(  # the forecast cue belongs to its clause: the reported figure is not guidance
        "⟦宜人金科|ORG⟧⟦2020年第一季度|PERIOD⟧⟦营收|METRIC⟧为⟦10.237亿元|VALUE⟧,和⟦分析师预期|METRIC⟧的⟦2.0946亿美元|VALUE⟧相差甚远。",
        [("宜人金科", "营收", "org_metric"), ("营收", "10.237亿元", "metric_value"),
         ("10.237亿元", "2020年第一季度", "value_period"), ("分析师预期", "2.0946亿美元", "metric_value")],
        None,
        {"10.237亿元": ("宜人金科", "2020Q1"), "2.0946亿美元": ("宜人金科", "2020Q1")},
        id="guidance-by-clause",
    ),
    pytest.param(  # two years joined by a dash, as many values as years: shared out in order
        "从营收看,⟦2017年|PERIOD⟧-⟦2021年|PERIOD⟧,⟦微众银行|ORG⟧⟦营业收入|METRIC⟧分别为⟦67.48亿元|VALUE⟧、⟦100.3亿元|VALUE⟧、"
        "⟦148.7亿元|VALUE⟧和⟦198.8亿元|VALUE⟧、⟦269.89亿元|VALUE⟧。",
        [("微众银行", "营业收入", "org_metric"), ("营业收入", "67.48亿元", "metric_value"),
         ("营业收入", "100.3亿元", "metric_value"), ("营业收入", "148.7亿元", "metric_value"),
         ("营业收入", "198.8亿元", "metric_value"), ("营业收入", "269.89亿元", "metric_value"),
         ("67.48亿元", "2017年", "value_period"), ("269.89亿元", "2021年", "value_period")],
        "2022-05-03",
        {"67.48亿元": ("微众银行", "2017FY"), "148.7亿元": ("微众银行", "2019FY"), "269.89亿元": ("微众银行", "2021FY")},
        id="year-pair-shared-in-order",
    ),
    pytest.param(  # a quarter without a year, far from an explicit year: the publication date decides
        "⟦2024年全年|PERIOD⟧,⟦众安在线|ORG⟧⟦保费收入|METRIC⟧⟦334亿元|VALUE⟧。\n"
        "⟦第三季|PERIOD⟧,公司⟦总保费|METRIC⟧⟦96亿元|VALUE⟧。",
        [("众安在线", "保费收入", "org_metric"), ("保费收入", "334亿元", "metric_value"),
         ("334亿元", "2024年全年", "value_period"), ("总保费", "96亿元", "metric_value"),
         ("96亿元", "第三季", "value_period")],
        "2025-12-03",
        {"334亿元": ("众安在线", "2024FY"), "96亿元": ("众安在线", "2025Q3")},
        id="quarter-from-the-date-not-a-distant-anchor",
    ),
    pytest.param(  # no publication date: 去年同期 and a value with no period follow the report the text is about
        "⟦微众银行|ORG⟧⟦2023年|PERIOD⟧⟦营业收入|METRIC⟧⟦393.6亿元|VALUE⟧。"
        "⟦去年同期|PERIOD⟧为⟦363.0亿元|VALUE⟧。⟦净利润|METRIC⟧⟦108.2亿元|VALUE⟧。",
        [("微众银行", "营业收入", "org_metric"), ("营业收入", "393.6亿元", "metric_value"),
         ("393.6亿元", "2023年", "value_period"), ("营业收入", "363.0亿元", "metric_value"),
         ("363.0亿元", "去年同期", "value_period"), ("净利润", "108.2亿元", "metric_value")],
        None,
        {"393.6亿元": ("微众银行", "2023FY"), "108.2亿元": ("微众银行", "2023FY")},
        id="undated-report-period",
    ),
    pytest.param(  # an alias statement groups two names into one organisation, which outweighs 腾讯 named twice
        "⟦马上消费金融股份有限公司|ORG⟧(以下简称“⟦马上消金|ORG⟧”)发布年报\n"
        "公司⟦2023年|PERIOD⟧⟦营业收入|METRIC⟧⟦154亿元|VALUE⟧。\n⟦腾讯|ORG⟧是合作方之一,⟦腾讯|ORG⟧也发布了年报。",
        [("营业收入", "154亿元", "metric_value"), ("154亿元", "2023年", "value_period")],
        "2024-03-20",
        {"154亿元": ("马上消费金融股份有限公司", "2023FY")},
        id="alias-statement-main-org",
    ),
    pytest.param(  # a cumulative figure counts a flow but is as of a date: 截至 a month means its last day
        "值得关注的是,这一增长高度依赖外部合作渠道。截至⟦2025年6月|PERIOD⟧,⟦哈银消费金融|ORG⟧"
        "⟦累计发放消费贷款|METRIC⟧突破⟦3300亿元|VALUE⟧,五年复合增长率达⟦2.1%|VALUE⟧。",
        [("哈银消费金融", "累计发放消费贷款", "org_metric"), ("累计发放消费贷款", "3300亿元", "metric_value"),
         ("3300亿元", "2025年6月", "value_period")],
        None,
        {"3300亿元": ("哈银消费金融", "2025-06-30")},
        id="cumulative-as-of-month-end",
    ),
    pytest.param(  # 勝預期 compares with the consensus: the quarter is the reported one, not a forecast's
        "小鵬汽車第二季業績\n⟦第二季|PERIOD⟧⟦小鵬汽車|ORG⟧⟦銷量收入|METRIC⟧按年升1.5倍至⟦168.84億元|VALUE⟧，"
        "略遜預期的169.34億元，⟦汽車毛利率|METRIC⟧亦增加7.9個百分點至⟦14.3%|VALUE⟧，勝預期的11.4%。",
        [("小鵬汽車", "銷量收入", "org_metric"), ("小鵬汽車", "汽車毛利率", "org_metric"),
         ("銷量收入", "168.84億元", "metric_value"), ("汽車毛利率", "14.3%", "metric_value"),
         ("168.84億元", "第二季", "value_period"), ("14.3%", "第二季", "value_period")],
        "2025-08-20",
        {"168.84億元": ("小鵬汽車", "2025Q2"), "14.3%": ("小鵬汽車", "2025Q2")},
        id="beat-consensus-is-no-forecast",
    ),
]


# Web articles of the train split (annotations/gold/web-*.jsonl), shortened.
CASES += [
    pytest.param(  # a bare year tagged before 半年报 is the report's half; 今年 follows it
        "⟦中国人保|ORG⟧上半年净利润178.5亿元\n8月26日,⟦中国人保|ORG⟧发布的⟦2022年|PERIOD⟧半年报显示,⟦今年上半年|PERIOD⟧,"
        "⟦中国人保|ORG⟧实现⟦保险业务收入|METRIC⟧⟦3826.23亿元|VALUE⟧。",
        [("中国人保#3", "保险业务收入", "org_metric"), ("保险业务收入", "3826.23亿元", "metric_value"),
         ("3826.23亿元", "今年上半年", "value_period")],
        None,
        {"3826.23亿元": ("中国人保", "2022H1")},
        id="bare-year-of-a-report",
    ),
    pytest.param(  # a dated article naming a report without its year, and no PERIOD at all
        "9家股份行三季报透视:5家不良率降\n⟦浦发银行|ORG⟧⟦营业收入|METRIC⟧⟦1322.8亿元|VALUE⟧;⟦不良率|METRIC⟧⟦1.29%|VALUE⟧。",
        [("浦发银行", "营业收入", "org_metric"), ("营业收入", "1322.8亿元", "metric_value"),
         ("不良率", "1.29%", "metric_value")],
        "2025-11-04",
        {"1322.8亿元": ("浦发银行", "2025Q1-Q3"), "1.29%": ("浦发银行", "2025-09-30")},
        id="report-named-without-a-year",
    ),
    pytest.param(  # no PERIOD entity: the first period word of a dated text
        "长三角6家上市城商行前三季度均实现营收和归母净利润双增长\n- ⟦江苏银行|ORG⟧⟦营收|METRIC⟧⟦671.83亿元|VALUE⟧。",
        [("江苏银行", "营收", "org_metric"), ("营收", "671.83亿元", "metric_value")],
        "2025-11-25",
        {"671.83亿元": ("江苏银行", "2025Q1-Q3")},
        id="untagged-period-word",
    ),
    pytest.param(  # an event's day (a disclosure cut-off) is not carried to the next sentence
        "截至⟦11月2日|PERIOD⟧,已有⟦160家|VALUE⟧⟦保险公司|METRIC⟧披露了偿付能力报告。"
        "其中,⟦平安产险|ORG⟧⟦保险业务收入|METRIC⟧⟦1.23万亿元|VALUE⟧。"
        "⟦2023年前三季度|PERIOD⟧⟦寿险公司|ORG⟧⟦净利润|METRIC⟧亏损合计超⟦200亿元|VALUE⟧。",
        [("保险公司", "160家", "metric_value"), ("160家", "11月2日", "value_period"),
         ("平安产险", "保险业务收入", "org_metric"), ("保险业务收入", "1.23万亿元", "metric_value"),
         ("寿险公司", "净利润", "org_metric"), ("净利润", "200亿元", "metric_value"),
         ("200亿元", "2023年前三季度", "value_period")],
        "2023-11-03",
        {"1.23万亿元": ("平安产险", "2023Q1-Q3")},
        id="event-day-not-carried",
    ),
    pytest.param(  # a list of periods, 分别, as many values: shared out in order
        "根据招股书,⟦蚂蚁集团|ORG⟧⟦2017年度|PERIOD⟧、⟦2018年度|PERIOD⟧、⟦2019年度|PERIOD⟧和⟦2020年1-6月|PERIOD⟧,"
        "公司分别实现⟦营业收入|METRIC⟧⟦653.96亿元|VALUE⟧、⟦857.22亿元|VALUE⟧、⟦1206.18亿元|VALUE⟧、⟦725.28亿元|VALUE⟧。",
        [("蚂蚁集团", "营业收入", "org_metric")] + [("营业收入", v, "metric_value") for v in
                                                  ("653.96亿元", "857.22亿元", "1206.18亿元", "725.28亿元")],
        None,
        {"653.96亿元": ("蚂蚁集团", "2017FY"), "1206.18亿元": ("蚂蚁集团", "2019FY"),
         "725.28亿元": ("蚂蚁集团", "2020H1")},
        id="period-list-shared-in-order",
    ),
    pytest.param(  # 从A增至B over a span of years: the first and the last year
        "⟦2021-2023年|PERIOD⟧,⟦马上消金|ORG⟧⟦信用减值损失|METRIC⟧从⟦28.48亿元|VALUE⟧增至⟦47.87亿元|VALUE⟧。",
        [("马上消金", "信用减值损失", "org_metric"), ("信用减值损失", "28.48亿元", "metric_value"),
         ("信用减值损失", "47.87亿元", "metric_value"), ("28.48亿元", "2021-2023年", "value_period"),
         ("47.87亿元", "2021-2023年", "value_period")],
        "2024-06-01",
        {"28.48亿元": ("马上消金", "2021FY"), "47.87亿元": ("马上消金", "2023FY")},
        id="from-to-over-a-span",
    ),
    pytest.param(  # a span of full years ending in part of a year (a research note's 2025H)
        "⟦2023-2025H|PERIOD⟧ ⟦远东宏信|ORG⟧⟦金融服务收入|METRIC⟧分别为 ⟦234|VALUE⟧、⟦217|VALUE⟧、⟦111 亿元|VALUE⟧,"
        "同比 ⟦-0.58%|VALUE⟧/⟦-7.10%|VALUE⟧/⟦+2.10%|VALUE⟧。",
        [("远东宏信", "金融服务收入", "org_metric")]
        + [("金融服务收入", v, "metric_value") for v in ("234", "217", "111 亿元")]
        + [("金融服务收入", v, "metric_change") for v in ("-0.58%", "-7.10%", "+2.10%")]
        + [(v, "2023-2025H", "value_period") for v in ("234", "217", "111 亿元", "-0.58%", "-7.10%", "+2.10%")],
        None,
        {"234": ("远东宏信", "2023FY"), "217": ("远东宏信", "2024FY"), "111 亿元": ("远东宏信", "2025H1"),
         "-0.58%": ("远东宏信", "2023FY"), "+2.10%": ("远东宏信", "2025H1")},
        id="year-span-ending-in-a-half",
    ),
    pytest.param(  # a year and a half joined by a dash, then 报告期各期 pointing back to them
        "⟦2017年|PERIOD⟧-⟦2020年上半年|PERIOD⟧(报告期各期),⟦京东白条|ORG⟧⟦年度活跃用户数|METRIC⟧分别为"
        "⟦2492.73万人|VALUE⟧、⟦3584.36万人|VALUE⟧、⟦5780.61万人|VALUE⟧和⟦5544.61万人|VALUE⟧。"
        "⟦报告期各期|PERIOD⟧,⟦京东金条|ORG⟧的⟦年度活跃用户数|METRIC⟧分别为⟦302.08万户|VALUE⟧、⟦677.31万户|VALUE⟧、"
        "⟦1520.57万户|VALUE⟧和⟦1424.17万户|VALUE⟧。",
        [("京东白条", "年度活跃用户数", "org_metric"), ("2492.73万人", "2017年", "value_period"),
         ("5544.61万人", "2020年上半年", "value_period")]
        + [("年度活跃用户数", v, "metric_value") for v in ("2492.73万人", "3584.36万人", "5780.61万人", "5544.61万人")]
        + [("京东金条", "年度活跃用户数#2", "org_metric")]
        + [("年度活跃用户数#2", v, "metric_value") for v in ("302.08万户", "677.31万户", "1520.57万户", "1424.17万户")]
        + [(v, "报告期各期", "value_period") for v in ("302.08万户", "677.31万户", "1520.57万户", "1424.17万户")],
        None,
        {"3584.36万人": ("京东白条", "2018FY"), "5544.61万人": ("京东白条", "2020H1"),
         "302.08万户": ("京东金条", "2017FY"), "1520.57万户": ("京东金条", "2019FY"),
         "1424.17万户": ("京东金条", "2020H1")},
        id="year-to-half-pair-and-back-reference",
    ),
    pytest.param(  # a year to a relative year (去年 of an article of 2024): the years between too
        "⟦天星|ORG⟧去年虧損金額略為有所擴大,該行⟦2021年|PERIOD⟧至⟦去年|PERIOD⟧分別錄得⟦2.44億元|VALUE⟧、⟦2億元|VALUE⟧及"
        "⟦2.08億元|VALUE⟧⟦虧損|METRIC⟧。",
        [("天星", "虧損", "org_metric")] + [("虧損", v, "metric_value") for v in ("2.44億元", "2億元", "2.08億元")],
        "2024-06-08",
        {"2.44億元": ("天星", "2021FY"), "2億元": ("天星", "2022FY"), "2.08億元": ("天星", "2023FY")},
        id="year-to-last-year-pair",
    ),
    pytest.param(  # a release's year-ago comparative never dates the sentences after it
        "⟦閱文|ORG⟧今日公布了截至⟦2024年12月31日止年度|PERIOD⟧的經審核綜合業績。\n"
        "– ⟦經營虧損|METRIC⟧為人民幣⟦3.361億元|VALUE⟧,主要受商譽減值虧損影響。⟦2023年|PERIOD⟧⟦經營盈利|METRIC⟧為人民幣⟦7.093億元|VALUE⟧。\n"
        "– ⟦每股基本虧損|METRIC⟧為人民幣⟦0.21元|VALUE⟧。",
        [("閱文", "經營虧損", "org_metric"), ("經營虧損", "3.361億元", "metric_value"),
         ("經營盈利", "7.093億元", "metric_value"), ("7.093億元", "2023年", "value_period"),
         ("每股基本虧損", "0.21元", "metric_value")],
        "2025-03-18",
        {"3.361億元": ("閱文", "2024FY"), "7.093億元": ("閱文", "2023FY"), "0.21元": ("閱文", "2024FY")},
        id="year-ago-comparative-not-carried",
    ),
    pytest.param(  # undated; the only year named is a year-ago base, so 二季度 is the year after it
        "财报显示,⟦二季度|PERIOD⟧⟦腾讯音乐|ORG⟧⟦营收|METRIC⟧同比增长⟦17.9%|VALUE⟧至⟦84.4 亿元|VALUE⟧,"
        "⟦ARPPU|METRIC⟧从 2024 年同期的 10.7 元增长至 ⟦11.7 元|VALUE⟧。",
        [("腾讯音乐", "营收", "org_metric"), ("营收", "17.9%", "metric_change"), ("营收", "84.4 亿元", "metric_value"),
         ("84.4 亿元", "二季度", "value_period"), ("ARPPU", "11.7 元", "metric_value")],
        None,
        {"84.4 亿元": ("腾讯音乐", "2025Q2"), "11.7 元": ("腾讯音乐", "2025Q2")},
        id="undated-year-ago-base-names-the-year-before",
    ),
    pytest.param(  # undated (stage 17, 長江基建): a listing year names no report; 去年 stays unresolved, not 1995
        "⟦長江基建集團|ORG⟧公布截至⟦去年|PERIOD⟧12月底止全年業績,⟦營業額|METRIC⟧⟦389.85億元|VALUE⟧。"
        "派息連年增長,標誌著長江基建自⟦1996年|PERIOD⟧上市28年來股息連年增長。",
        [("長江基建集團", "營業額", "org_metric"), ("營業額", "389.85億元", "metric_value")],
        None,
        {"389.85億元": ("長江基建集團", None)},
        id="undated-listing-year-is-no-anchor",
    ),
    pytest.param(  # undated, no PERIOD tagged: the latest period the text names with its year
        "2025年上半年信托公司盈利指标排名分析\n表1呈现了2025年上半年与2024年上半年53家信托公司核心盈利指标的对比,"
        "行业整体⟦营业收入|METRIC⟧同比降⟦1.98%|VALUE⟧。",
        [("营业收入", "1.98%", "metric_change")],
        None,
        {"1.98%": (None, "2025H1")},
        id="undated-untagged-latest-period-with-year",
    ),
    pytest.param(  # undated: 今年上半年 beside an explicit 2023年上半年 with other figures is a later year
        "⟦今年上半年|PERIOD⟧,⟦兴业消金|ORG⟧实现⟦营业收入|METRIC⟧⟦51.88亿元|VALUE⟧。历史数据显示,⟦2016年中期|PERIOD⟧至2023年中期,"
        "兴业消金的营收净利持续双增。其中,⟦2023年上半年|PERIOD⟧,⟦净利润|METRIC⟧为⟦12.64亿元|VALUE⟧。",
        [("兴业消金", "营业收入", "org_metric"), ("营业收入", "51.88亿元", "metric_value"),
         ("51.88亿元", "今年上半年", "value_period"), ("兴业消金", "净利润", "org_metric"),
         ("净利润", "12.64亿元", "metric_value"), ("12.64亿元", "2023年上半年", "value_period")],
        None,
        {"51.88亿元": ("兴业消金", "2024H1"), "12.64亿元": ("兴业消金", "2023H1")},
        id="undated-this-year-beside-the-same-period-named",
    ),
    pytest.param(  # ... not when the explicit period came first (a fresh undated page, 17家A股城商行一季度):
        # 今年一季度 restates 2025年一季度
        "据Wind数据计算,⟦2025年一季度|PERIOD⟧,⟦江苏银行|ORG⟧以⟦223.04亿元|VALUE⟧⟦营收|METRIC⟧领跑。\n"
        "从归母净利润看,⟦今年一季度|PERIOD⟧,⟦杭州银行|ORG⟧以⟦60.21亿元|VALUE⟧的⟦净利润|METRIC⟧领跑。",
        [("江苏银行", "营收", "org_metric"), ("营收", "223.04亿元", "metric_value"),
         ("223.04亿元", "2025年一季度", "value_period"),
         ("杭州银行", "净利润", "org_metric"), ("净利润", "60.21亿元", "metric_value"),
         ("60.21亿元", "今年一季度", "value_period")],
        None,
        {"223.04亿元": ("江苏银行", "2025Q1"), "60.21亿元": ("杭州银行", "2025Q1")},
        id="undated-this-year-after-the-same-period-named",
    ),
    pytest.param(  # a fresh page (RTHK, 2025-08-29): 減值貸款 are a Hong Kong bank's non-performing loans, a
        # balance at 6月底, not an impairment charge over the half
        "⟦中銀香港|ORG⟧⟦上半年|PERIOD⟧⟦盈利|METRIC⟧⟦221.5億元|VALUE⟧。\n截至⟦6月底|PERIOD⟧,⟦減值貸款比率|METRIC⟧⟦1.02%|VALUE⟧,"
        "⟦減值貸款餘額|METRIC⟧⟦174.44億元|VALUE⟧。",
        [("中銀香港", "盈利", "org_metric"), ("盈利", "221.5億元", "metric_value"), ("221.5億元", "上半年", "value_period"),
         ("減值貸款比率", "1.02%", "metric_value"), ("1.02%", "6月底", "value_period"),
         ("減值貸款餘額", "174.44億元", "metric_value"), ("174.44億元", "6月底", "value_period")],
        "2025-08-29",
        {"221.5億元": ("中銀香港", "2025H1"), "1.02%": ("中銀香港", "2025-06-30"),
         "174.44億元": ("中銀香港", "2025-06-30")},
        id="impaired-loans-are-a-balance",
    ),
    pytest.param(  # a value linked to a word that names no period (报告, tagged by the model) and to 上半年:
        # the one that resolves (a fresh page on 中国人寿, dated 2023-08-23 by its address)
        "⟦报告|PERIOD⟧显示,⟦中国人寿寿险公司|ORG⟧⟦上半年|PERIOD⟧⟦新业务价值|METRIC⟧达⟦308.64亿元|VALUE⟧。",
        [("中国人寿寿险公司", "新业务价值", "org_metric"), ("新业务价值", "308.64亿元", "metric_value"),
         ("308.64亿元", "报告", "value_period"), ("308.64亿元", "上半年", "value_period")],
        "2023-08-23",
        {"308.64亿元": ("中国人寿寿险公司", "2023H1")},
        id="a-period-that-resolves-beats-one-that-does-not",
    ),
    pytest.param(  # ... nor when the explicit period is in the same sentence (a fresh page on brokers' 业绩预告):
        # 申万宏源预计，今年上半年…；国泰海通预计2025年上半年… is one half
        "⟦申万宏源|ORG⟧预计,⟦今年上半年|PERIOD⟧实现⟦归属于上市公司股东的净利润|METRIC⟧为⟦41亿元—45亿元|VALUE⟧;"
        "⟦国泰海通|ORG⟧预计⟦2025年上半年|PERIOD⟧实现⟦归母净利润|METRIC⟧⟦152.83亿元至159.57亿元|VALUE⟧。",
        [("申万宏源", "归属于上市公司股东的净利润", "org_metric"), ("归属于上市公司股东的净利润", "41亿元—45亿元", "metric_value"),
         ("41亿元—45亿元", "今年上半年", "value_period"), ("国泰海通", "归母净利润", "org_metric"),
         ("归母净利润", "152.83亿元至159.57亿元", "metric_value"), ("152.83亿元至159.57亿元", "2025年上半年", "value_period")],
        None,
        {"41亿元—45亿元": ("申万宏源", "2025H1"), "152.83亿元至159.57亿元": ("国泰海通", "2025H1")},
        id="undated-this-year-beside-the-same-period-in-its-sentence",
    ),
    pytest.param(  # ... unless the text names that report: then 今年 is the report's year
        "⟦平安银行|ORG⟧发布了2025年半年度报告。报告显示,⟦今年上半年|PERIOD⟧,该集团实现⟦净利润|METRIC⟧⟦248.70亿元|VALUE⟧。"
        "同日,平安银行还发布了⟦2025年中期|PERIOD⟧利润分配方案公告,每10股派发现金股利人民币⟦2.36元|VALUE⟧。",
        [("平安银行", "净利润", "org_metric"), ("净利润", "248.70亿元", "metric_value"),
         ("248.70亿元", "今年上半年", "value_period")],
        None,
        {"248.70亿元": ("平安银行", "2025H1")},
        id="undated-this-year-of-the-report-named",
    ),
    pytest.param(  # Hong Kong news's 上季 is the quarter just reported
        "⟦美團|ORG⟧⟦上季|PERIOD⟧⟦收入|METRIC⟧⟦509.4億元|VALUE⟧人民幣。",
        [("美團", "收入", "org_metric"), ("收入", "509.4億元", "metric_value"), ("509.4億元", "上季", "value_period")],
        "2022-08-26",
        {"509.4億元": ("美團", "2022Q2")},
        id="hong-kong-last-quarter",
    ),
    pytest.param(  # an industry total belongs to no organisation, not to the article's main one
        "⟦中信证券|ORG⟧净利润居首\n⟦2022年|PERIOD⟧,43家上市券商合计实现⟦营业收入|METRIC⟧⟦4904.52亿元|VALUE⟧。"
        "⟦中信证券|ORG⟧⟦净利润|METRIC⟧⟦213.17亿元|VALUE⟧。",
        [("营业收入", "4904.52亿元", "metric_value"), ("4904.52亿元", "2022年", "value_period"),
         ("中信证券#2", "净利润", "org_metric"), ("净利润", "213.17亿元", "metric_value")],
        "2023-04-10",
        {"4904.52亿元": (None, "2022FY"), "213.17亿元": ("中信证券", "2022FY")},
        id="industry-total-has-no-owner",
    ),
    pytest.param(  # a list of organisations, 分别, as many values: the k-th value is the k-th's
        "从市值来看,⟦宁波银行|ORG⟧和⟦杭州银行|ORG⟧⟦总市值|METRIC⟧分别达到⟦1881.36亿元|VALUE⟧和⟦1191亿元|VALUE⟧。",
        [("宁波银行", "总市值", "org_metric"), ("杭州银行", "总市值", "org_metric"),
         ("总市值", "1881.36亿元", "metric_value"), ("总市值", "1191亿元", "metric_value")],
        "2022-08-06",
        {"1881.36亿元": ("宁波银行", None), "1191亿元": ("杭州银行", None)},
        id="organisation-list-shared-in-order",
    ),
    pytest.param(  # 依次为 shares a list out like 分别 (中国经济时报 on private banks, stage 16)
        "第二方阵则是⟦新网银行|ORG⟧、⟦中关村银行|ORG⟧等两家银行,其⟦资产规模|METRIC⟧依次为⟦848.20亿元|VALUE⟧、"
        "⟦615.17亿元|VALUE⟧。",
        [("新网银行", "资产规模", "org_metric"), ("中关村银行", "资产规模", "org_metric"),
         ("资产规模", "848.20亿元", "metric_value"), ("资产规模", "615.17亿元", "metric_value")],
        "2023-06-09",
        {"848.20亿元": ("新网银行", None), "615.17亿元": ("中关村银行", None)},
        id="organisation-list-shared-in-turn",
    ),
    pytest.param(  # an undated article's printed timestamp dates it
        "同程旅行上半年营收90.5亿元\n国际金融报· 2025-08-18 17:42\n⟦上半年|PERIOD⟧,⟦同程旅行|ORG⟧⟦营收|METRIC⟧⟦90.5亿元|VALUE⟧。",
        [("同程旅行", "营收", "org_metric"), ("营收", "90.5亿元", "metric_value"), ("90.5亿元", "上半年", "value_period")],
        None,
        {"90.5亿元": ("同程旅行", "2025H1")},
        id="dateline-timestamp",
    ),
    pytest.param(  # ownership and capital are about no reporting period: dated only by their own sentence
        "⟦北银消费金融有限公司|ORG⟧(简称“⟦北银消费金融|ORG⟧”)成立于2010年3月,总部位于北京,第一大股东是⟦北京银行|ORG⟧"
        "(⟦持股|METRIC⟧⟦35.29%|VALUE⟧)。\n截至⟦2025年6月末|PERIOD⟧,⟦北银消费金融|ORG⟧⟦注册资本|METRIC⟧达到⟦8.5亿元|VALUE⟧,"
        "⟦总资产|METRIC⟧达⟦154.2亿元|VALUE⟧。",
        [("北京银行", "持股", "org_metric"), ("持股", "35.29%", "metric_value"),
         ("北银消费金融#2", "注册资本", "org_metric"), ("注册资本", "8.5亿元", "metric_value"),
         ("8.5亿元", "2025年6月末", "value_period"), ("北银消费金融#2", "总资产", "org_metric"),
         ("总资产", "154.2亿元", "metric_value"), ("154.2亿元", "2025年6月末", "value_period")],
        None,
        {"35.29%": ("北京银行", None), "8.5亿元": ("北银消费金融", "2025-06-30"),
         "154.2亿元": ("北银消费金融", "2025-06-30")},
        id="ownership-undated",
    ),
    pytest.param(  # ... nor by the publication date
        "目前,⟦南银法巴消费金融|ORG⟧⟦注册资本|METRIC⟧⟦50亿元|VALUE⟧,⟦南京银行|ORG⟧⟦出资比例|METRIC⟧⟦66.92%|VALUE⟧,"
        "剩余股权由法国巴黎银行、法国巴黎银行个人金融集团持有。",
        [("南银法巴消费金融", "注册资本", "org_metric"), ("注册资本", "50亿元", "metric_value"),
         ("南京银行", "出资比例", "org_metric"), ("出资比例", "66.92%", "metric_value")],
        "2024-08-06",
        {"50亿元": ("南银法巴消费金融", None), "66.92%": ("南京银行", None)},
        id="capital-undated",
    ),
    pytest.param(  # an industry total reported by a regulator (银监会, its old name) has no owner
        "第一财经日报 11月26日的“金融租赁高峰会”上,⟦银监会|ORG⟧非银部副主任陈琼透露,我国金融租赁业无论结构还是总量都达到了"
        "历史最好水平,截至⟦2010年9月末|PERIOD⟧,⟦银监会|ORG⟧监管的⟦金融租赁公司的总数|METRIC⟧达到⟦17家|VALUE⟧,"
        "⟦资产总额|METRIC⟧达⟦2664亿元|VALUE⟧。 ⟦前三季度|PERIOD⟧,金融租赁公司实现⟦净利润|METRIC⟧⟦27亿元|VALUE⟧。",
        [("金融租赁公司的总数", "17家", "metric_value"), ("17家", "2010年9月末", "value_period"),
         ("资产总额", "2664亿元", "metric_value"), ("2664亿元", "2010年9月末", "value_period"),
         ("净利润", "27亿元", "metric_value"), ("27亿元", "前三季度", "value_period")],
        None,
        {"17家": (None, "2010-09-30"), "2664亿元": (None, "2010-09-30"), "27亿元": (None, "2010Q1-Q3")},
        id="regulator-old-name-reports-an-industry-total",
    ),
    pytest.param(  # an undated quarterly release: its title names the quarter; 上年同期 is a year before
        "⟦金融一账通|ORG⟧公布2025年第一季度未经审计财务业绩\n"
        "| • | ⟦持续经营业务收入|METRIC⟧1为人民币⟦3.68亿元|VALUE⟧,⟦上年同期|PERIOD⟧为人民币⟦7.23亿元|VALUE⟧。 |",
        [("金融一账通", "持续经营业务收入", "org_metric"), ("持续经营业务收入", "3.68亿元", "metric_value"),
         ("持续经营业务收入", "7.23亿元", "metric_value"), ("7.23亿元", "上年同期", "value_period")],
        None,
        {"3.68亿元": ("金融一账通", "2025Q1"), "7.23亿元": ("金融一账通", "2024Q1")},
        id="quarterly-release-named-in-the-title",
    ),
    pytest.param(  # a Hong Kong results announcement dates its year in Chinese numerals; a table aligned by
        # spaces names a year per column, and a 附注 column has no header: columns count from the right
        "⟦佐力科创小额贷款股份有限公司|ORG⟧\n(股份代号:6866)\n二零一六年年度业绩公告\n"
        "(除另有注明外,以人民币千元列示)\n二零一六年 二零一五年\n附注 人民币千元 人民币千元\n"
        "⟦利息收入|METRIC⟧ ⟦243,360|VALUE⟧ ⟦212,128|VALUE⟧\n"
        "⟦净利息收入|METRIC⟧ 2 ⟦219,221|VALUE⟧ ⟦203,951|VALUE⟧\n",
        [("佐力科创小额贷款股份有限公司", "利息收入", "org_metric"), ("利息收入", "243,360", "metric_value"),
         ("利息收入", "212,128", "metric_value"), ("净利息收入", "219,221", "metric_value"),
         ("净利息收入", "203,951", "metric_value")],
        None,
        {"243,360": ("佐力科创小额贷款股份有限公司", "2016FY"), "212,128": ("佐力科创小额贷款股份有限公司", "2015FY"),
         "219,221": ("佐力科创小额贷款股份有限公司", "2016FY"), "203,951": ("佐力科创小额贷款股份有限公司", "2015FY")},
        id="report-year-in-chinese-numerals",
    ),
    pytest.param(  # a results flash table with bars: 本报告期 / 上年同期, then 本报告期末 / 本报告期初 for balances
        "⟦上海浦东发展银行股份有限公司|ORG⟧\n2021年度业绩快报公告\n"
        "项目 | 本报告期 (未经审计) | 上年同期 (经审计) | 增减变动幅度(%) |\n"
        "⟦营业收入|METRIC⟧ | ⟦190,982|VALUE⟧ | ⟦196,384|VALUE⟧ | -2.75 |\n"
        "本报告期末 (未经审计) | 本报告期初 (经审计) | 增减变动幅度(%) | |\n"
        "⟦资产总额|METRIC⟧ | ⟦8,136,757|VALUE⟧ | ⟦7,950,218|VALUE⟧ | 2.35 |\n",
        [("营业收入", "190,982", "metric_value"), ("营业收入", "196,384", "metric_value"),
         ("资产总额", "8,136,757", "metric_value"), ("资产总额", "7,950,218", "metric_value")],
        None,
        {"190,982": ("上海浦东发展银行股份有限公司", "2021FY"), "196,384": ("上海浦东发展银行股份有限公司", "2020FY"),
         "8,136,757": ("上海浦东发展银行股份有限公司", "2021-12-31"),
         "7,950,218": ("上海浦东发展银行股份有限公司", "2020-12-31")},
        id="results-table-with-bars",
    ),
    pytest.param(  # a transcript's bullets are sentences; a comparison base (从/低于 2020年第一季度的) and a
        # period after the first value of a bullet (运营收入为X，2020年第一季度为Y) are not carried on
        "财务数据和关键指标变化 - ⟦2021年第一季度|PERIOD⟧⟦总收入|METRIC⟧为⟦5.157亿元|VALUE⟧人民币,低于"
        "⟦2020年第一季度|PERIOD⟧的⟦9.58亿元|VALUE⟧人民币 [15] - ⟦研发费用|METRIC⟧从⟦2020年第一季度|PERIOD⟧的"
        "⟦5470万元|VALUE⟧人民币降至⟦3920万元|VALUE⟧人民币 [18] - ⟦运营收入|METRIC⟧为⟦4.648亿元|VALUE⟧人民币,"
        "⟦2020年第一季度|PERIOD⟧为亏损⟦9.611亿元|VALUE⟧人民币 [18] - ⟦归属于趣店股东的净利润|METRIC⟧为"
        "⟦4.784亿元|VALUE⟧人民币",
        [("总收入", "5.157亿元", "metric_value"), ("总收入", "9.58亿元", "metric_value"),
         ("5.157亿元", "2021年第一季度", "value_period"), ("9.58亿元", "2020年第一季度", "value_period"),
         ("研发费用", "5470万元", "metric_value"), ("研发费用", "3920万元", "metric_value"),
         ("5470万元", "2020年第一季度#2", "value_period"), ("运营收入", "4.648亿元", "metric_value"),
         ("运营收入", "9.611亿元", "metric_value"), ("9.611亿元", "2020年第一季度#3", "value_period"),
         ("归属于趣店股东的净利润", "4.784亿元", "metric_value")],
        "2021-06-16",
        {"3920万元": (None, "2021Q1"), "4.648亿元": (None, "2021Q1"), "9.611亿元": (None, "2020Q1"),
         "4.784亿元": (None, "2021Q1")},
        id="transcript-bullets-and-comparison-bases",
    ),
    pytest.param(  # a Hong Kong release names the year it closes; a comparison year after a value is its own
        "香港2025年3月18日 /美通社/ — ⟦閱文集團|ORG⟧今日公布了截至2024年12月31日止年度的經審核綜合業績。\n"
        "- ⟦總收入|METRIC⟧同比增長15.8%至人民幣⟦81.211億元|VALUE⟧。\n"
        "– ⟦經營盈利|METRIC⟧為人民幣⟦9.854億元|VALUE⟧,⟦2023年|PERIOD⟧為人民幣⟦10.498億元|VALUE⟧。\n"
        "– ⟦每股基本盈利|METRIC⟧為人民幣⟦1.13元|VALUE⟧。",
        [("閱文集團", "總收入", "org_metric"), ("總收入", "81.211億元", "metric_value"),
         ("經營盈利", "9.854億元", "metric_value"), ("經營盈利", "10.498億元", "metric_value"),
         ("10.498億元", "2023年", "value_period"), ("每股基本盈利", "1.13元", "metric_value")],
        "2025-03-18",
        {"81.211億元": ("閱文集團", "2024FY"), "9.854億元": ("閱文集團", "2024FY"),
         "10.498億元": ("閱文集團", "2023FY"), "1.13元": ("閱文集團", "2024FY")},
        id="release-named-by-the-period-it-closes",
    ),
    pytest.param(  # a report named after an event's month: the figures after it are the report's
        "摘要:据公开信息披露,⟦2024年3月|PERIOD⟧,因未按规定报送大额交易报告,⟦亿联银行|ORG⟧被处以"
        "⟦罚款|METRIC⟧⟦758.34万元|VALUE⟧。\n日前,19家民营银行2024年年报已披露完毕。\n"
        "从资产规模来看,⟦微众银行|ORG⟧⟦资产规模|METRIC⟧居前,达⟦6517.76亿元|VALUE⟧。",
        [("亿联银行", "罚款", "org_metric"), ("罚款", "758.34万元", "metric_value"),
         ("758.34万元", "2024年3月", "value_period"), ("微众银行", "资产规模", "org_metric"),
         ("资产规模", "6517.76亿元", "metric_value")],
        "2025-05-16",
        {"6517.76亿元": ("微众银行", "2024-12-31")},
        id="report-named-after-an-event",
    ),
    pytest.param(  # a cue of a forecast in a later clause (差過分析員預期) leaves the period reported
        "⟦上半年|PERIOD⟧⟦友邦|ORG⟧⟦新業務價值|METRIC⟧⟦14.1億美元|VALUE⟧,以實質匯率計算,按年跌38%,"
        "差過分析員預期跌三成。",
        [("友邦", "新業務價值", "org_metric"), ("新業務價值", "14.1億美元", "metric_value"),
         ("14.1億美元", "上半年", "value_period")],
        "2020-08-20",
        {"14.1億美元": ("友邦", "2020H1")},
        id="forecast-cue-in-a-later-clause",
    ),
    pytest.param(  # the quarter a release names without a year (公布第三季業績), not the forecast's quarter
        "⟦蔚來|ORG⟧公布第三季業績,⟦淨虧損|METRIC⟧按年收窄31.2%至⟦34.8億元|VALUE⟧;⟦期內|PERIOD⟧⟦收入|METRIC⟧"
        "按年增長16.7%至⟦217.9億元|VALUE⟧。李斌表示,預計⟦第四季度|PERIOD⟧的⟦總交付量|METRIC⟧將介乎"
        "⟦12萬至12.5萬輛|VALUE⟧。",
        [("蔚來", "淨虧損", "org_metric"), ("淨虧損", "34.8億元", "metric_value"), ("收入", "217.9億元", "metric_value"),
         ("217.9億元", "期內", "value_period"), ("總交付量", "12萬至12.5萬輛", "metric_value"),
         ("12萬至12.5萬輛", "第四季度", "value_period")],
        "2025-11-25",
        {"34.8億元": ("蔚來", "2025Q3"), "217.9億元": ("蔚來", "2025Q3"), "12萬至12.5萬輛": ("蔚來", "2025Q4")},
        id="quarter-named-without-a-year",
    ),
    pytest.param(  # an industry figure: a market named as owner (新三板) is a source, and a sentence about
        # many companies together (57家信托公司) keeps its later clauses ownerless
        "⟦中诚信托|ORG⟧⟦营业收入|METRIC⟧⟦25.7亿元|VALUE⟧。\n⟦2024年|PERIOD⟧57家信托公司平均实现⟦营业收入|METRIC⟧"
        "⟦11.09亿元|VALUE⟧,较2023年减少2.19亿元;平均实现⟦利润总额|METRIC⟧⟦5.54亿元|VALUE⟧。\n"
        "大数据显示,⟦今年上半年|PERIOD⟧,⟦新三板|ORG⟧40家小贷公司共实现⟦营业收入|METRIC⟧⟦6.95亿元|VALUE⟧,同比下降16.19%。",
        [("中诚信托", "营业收入", "org_metric"), ("营业收入", "25.7亿元", "metric_value"),
         ("新三板", "营业收入#3", "org_metric"), ("营业收入#3", "6.95亿元", "metric_value"),
         ("6.95亿元", "今年上半年", "value_period"), ("营业收入#2", "11.09亿元", "metric_value"),
         ("11.09亿元", "2024年", "value_period"), ("利润总额", "5.54亿元", "metric_value")],
        "2025-05-19",
        {"25.7亿元": ("中诚信托", "2024FY"), "6.95亿元": (None, "2025H1"), "11.09亿元": (None, "2024FY"),
         "5.54亿元": (None, "2024FY")},
        id="industry-figures-have-no-owner",
    ),
    pytest.param(  # a short form (眾安) opening one longer name of the article (众安在线) is that organisation,
        # so the title's company, not a subsidiary named in one bullet, owns the unowned figures
        "⟦众安在线|ORG⟧(06060) - 2023 - 年度业绩\n公司业绩 - ⟦2023年度|PERIOD⟧⟦总保费|METRIC⟧为⟦29684639千元|VALUE⟧"
        "[5] - ⟦ZA Bank|ORG⟧⟦净收入|METRIC⟧增长42.9%至⟦4,078百万港元|VALUE⟧[7] - ⟦眾安|ORG⟧⟦2023年|PERIOD⟧实现"
        "⟦境内总保费|METRIC⟧⟦295.01亿元|VALUE⟧人民币[12]",
        [("总保费", "29684639千元", "metric_value"), ("29684639千元", "2023年度", "value_period"),
         ("ZA Bank", "净收入", "org_metric"), ("净收入", "4,078百万港元", "metric_value"),
         ("眾安", "境内总保费", "org_metric"), ("境内总保费", "295.01亿元", "metric_value"),
         ("295.01亿元", "2023年", "value_period")],
        "2024-03-26",
        {"29684639千元": ("众安在线", "2023FY"), "4,078百万港元": ("ZA Bank", "2023FY")},
        id="short-form-of-the-title-company",
    ),
    pytest.param(  # a list of owners, then 分别: only the values after 分别 are shared out (not 千亿元)
        "共有⟦中国人寿|ORG⟧、⟦平安人寿|ORG⟧、⟦太保寿险|ORG⟧3家险企⟦保险业务收入|METRIC⟧突破⟦千亿元|VALUE⟧,分别达到"
        "⟦5787.99亿元|VALUE⟧、⟦3862.52亿元|VALUE⟧、⟦2047.48亿元|VALUE⟧。",
        [("中国人寿", "保险业务收入", "org_metric"), ("平安人寿", "保险业务收入", "org_metric"),
         ("太保寿险", "保险业务收入", "org_metric"), ("保险业务收入", "千亿元", "metric_value"),
         ("保险业务收入", "5787.99亿元", "metric_value"), ("保险业务收入", "3862.52亿元", "metric_value"),
         ("保险业务收入", "2047.48亿元", "metric_value")],
        "2023-11-20",
        {"5787.99亿元": ("中国人寿", None), "3862.52亿元": ("平安人寿", None),
         "2047.48亿元": ("太保寿险", None)},
        id="listed-owners-share-the-values-after-the-cue",
    ),
    pytest.param(  # the owners listed after a threshold value share the values after 分別
        "上半年⟦凈利潤|METRIC⟧超過⟦1億元|VALUE⟧的還有⟦中郵消費金融|ORG⟧、⟦中銀消費金融|ORG⟧、⟦陽光消費金融|ORG⟧,"
        "分別為⟦1.91億元|VALUE⟧、⟦1.36億元|VALUE⟧、⟦1.32億元|VALUE⟧。",
        [("凈利潤", "1億元", "metric_value"), ("凈利潤", "1.91億元", "metric_value"),
         ("凈利潤", "1.36億元", "metric_value"), ("凈利潤", "1.32億元", "metric_value")],
        "2022-09-01",
        {"1.91億元": ("中郵消費金融", "2022H1"), "1.36億元": ("中銀消費金融", "2022H1"),
         "1.32億元": ("陽光消費金融", "2022H1")},
        id="owners-listed-after-a-threshold",
    ),
    pytest.param(  # customers in many industries (多行业客户) are not an industry aggregate; a kind of company is
        "⟦众安在线|ORG⟧科技输出业务持续拓展,成功助力全球多行业客户实现数字化转型,新签了⟦101家|VALUE⟧⟦保险产业链客户|METRIC⟧。\n"
        "其中,财产险公司⟦保险业务收入|METRIC⟧⟦1.23万亿元|VALUE⟧。",
        [("保险产业链客户", "101家", "metric_value"), ("保险业务收入", "1.23万亿元", "metric_value")],
        "2024-03-26",
        {"101家": ("众安在线", None), "1.23万亿元": (None, None)},
        id="industry-words-that-make-no-aggregate",
    ),
    pytest.param(  # a list's joint total, listed banks together and insurers in general belong to no one
        "从整体数据来看,2025年上半年⟦中国平安|ORG⟧、⟦中国人寿|ORG⟧以及⟦新华保险|ORG⟧共实现⟦归母净利润|METRIC⟧⟦1781.93亿元|VALUE⟧。"
        "⟦中国平安|ORG⟧⟦营收|METRIC⟧⟦5000.76亿元|VALUE⟧。\n"
        "数据显示,上市银行⟦前三季度|PERIOD⟧合计实现⟦营业收入|METRIC⟧超过⟦4.3万亿元|VALUE⟧。\n"
        "截至⟦二季度末|PERIOD⟧,保险公司⟦资金运用余额|METRIC⟧首次突破⟦36万亿元|VALUE⟧。",
        [("新华保险", "归母净利润", "org_metric"), ("归母净利润", "1781.93亿元", "metric_value"),
         ("中国平安#2", "营收", "org_metric"), ("营收", "5000.76亿元", "metric_value"),
         ("营业收入", "4.3万亿元", "metric_value"), ("4.3万亿元", "前三季度", "value_period"),
         ("资金运用余额", "36万亿元", "metric_value"), ("36万亿元", "二季度末", "value_period")],
        "2025-11-04",
        {"1781.93亿元": (None, "2025H1"), "5000.76亿元": ("中国平安", "2025H1"), "4.3万亿元": (None, "2025Q1-Q3"),
         "36万亿元": (None, "2025-06-30")},
        id="joint-totals-and-kinds-of-company",
    ),
    pytest.param(  # a counted class of organisations owns nothing; a sum of profits over the year is a flow
        "据金融虎网计算,截至⟦2024年年末|PERIOD⟧,31家⟦持牌消费金融公司|ORG⟧的⟦注册资本总和|METRIC⟧为⟦987.91亿元|VALUE⟧。"
        "其它29家消金公司的⟦利润累计总和|METRIC⟧约为⟦156亿元|VALUE⟧。",
        [("持牌消费金融公司", "注册资本总和", "org_metric"), ("注册资本总和", "987.91亿元", "metric_value"),
         ("987.91亿元", "2024年年末", "value_period"), ("利润累计总和", "156亿元", "metric_value")],
        "2025-05-06",
        {"987.91亿元": (None, "2024-12-31"), "156亿元": (None, "2024FY")},
        id="a-counted-class-of-organisations",
    ),
    pytest.param(  # a count written in Chinese numerals (六家) makes an aggregate subject as digits do
        "以⟦奇富科技|ORG⟧、⟦乐信|ORG⟧为代表的六家上市金融科技公司已全部交出⟦第三季度|PERIOD⟧的成绩单。\n"
        "营收方面,六家头部金融科技公司合计⟦总营收|METRIC⟧超⟦170亿元|VALUE⟧。⟦奇富科技|ORG⟧以⟦52.06亿元|VALUE⟧的⟦营收|METRIC⟧领跑。",
        [("总营收", "170亿元", "metric_value"), ("奇富科技#2", "营收", "org_metric"), ("营收", "52.06亿元", "metric_value")],
        "2025-12-01",
        {"170亿元": (None, "2025Q3"), "52.06亿元": ("奇富科技", "2025Q3")},
        id="a-count-in-chinese-numerals",
    ),
    pytest.param(  # a release's bracketed comparative is the same period in the year it names; 港幣 before 元
        "⟦恒基地產|ORG⟧集團截至⟦二零二五年六月三十日止六個月內|PERIOD⟧,⟦股東應佔基礎盈利|METRIC⟧為港幣⟦三十億四千八百萬元|VALUE⟧。"
        "⟦每股基礎盈利|METRIC⟧為港幣⟦0.63元|VALUE⟧（二零二四年：港幣⟦1.12元|VALUE⟧）。\n"
        "⟦2024年|PERIOD⟧⟦每股基本盈利|METRIC⟧上升20%至⟦48.38港仙|VALUE⟧（2023年：⟦40.33港仙|VALUE⟧）。",
        [("恒基地產", "股東應佔基礎盈利", "org_metric"), ("股東應佔基礎盈利", "三十億四千八百萬元", "metric_value"),
         ("三十億四千八百萬元", "二零二五年六月三十日止六個月內", "value_period"),
         ("每股基礎盈利", "0.63元", "metric_value"), ("每股基礎盈利", "1.12元", "metric_value"),
         ("每股基本盈利", "48.38港仙", "metric_value"), ("每股基本盈利", "40.33港仙", "metric_value"),
         ("48.38港仙", "2024年", "value_period")],
        "2025-08-21",
        {"三十億四千八百萬元": ("恒基地產", "2025H1"), "0.63元": ("恒基地產", "2025H1"), "1.12元": ("恒基地產", "2024H1"),
         "48.38港仙": ("恒基地產", "2024FY"), "40.33港仙": ("恒基地產", "2023FY")},
        id="bracketed-comparatives-of-a-release",
    ),
    pytest.param(  # a line naming one organisation heads the lines below it
        "⟦新大陆|ORG⟧旗下支付公司排名\n一、头部阵营\n1.⟦连连数字|ORG⟧(原连连支付)\n⟦交易量|METRIC⟧:⟦2.10万亿元|VALUE⟧"
        "(同比+43%)\n2.⟦拉卡拉|ORG⟧\n⟦交易量|METRIC⟧:⟦1.96万亿元|VALUE⟧(同比-9%)\n3.⟦国通星驿|ORG⟧(⟦新大陆|ORG⟧旗下)\n"
        "⟦交易量|METRIC⟧:⟦1.2万亿元|VALUE⟧",
        [("交易量", "2.10万亿元", "metric_value"), ("交易量#2", "1.96万亿元", "metric_value"),
         ("交易量#3", "1.2万亿元", "metric_value")],
        None,
        {"2.10万亿元": ("连连数字", None), "1.96万亿元": ("拉卡拉", None), "1.2万亿元": ("国通星驿", None)},
        id="organisation-headings",
    ),
    pytest.param(  # a period of one organisation's section does not carry past the next one's heading
        "根据⟦2025年上半年|PERIOD⟧已披露的公开数据\n3.⟦拉卡拉|ORG⟧\n⟦交易量|METRIC⟧:⟦1.96万亿元|VALUE⟧\n"
        "风险提示:⟦4月|PERIOD⟧⟦交易量|METRIC⟧环比下滑⟦9.2%|VALUE⟧。\n4.⟦国通星驿|ORG⟧(新大陆旗下)\n"
        "⟦交易量|METRIC⟧:⟦1.05万亿元|VALUE⟧(同比-2%)",
        [("交易量", "1.96万亿元", "metric_value"), ("交易量#2", "9.2%", "metric_change"),
         ("9.2%", "4月", "value_period"), ("交易量#3", "1.05万亿元", "metric_value")],
        None,
        {"1.96万亿元": ("拉卡拉", "2025H1"), "9.2%": ("拉卡拉", "2025-04"), "1.05万亿元": ("国通星驿", "2025H1")},
        id="no-period-carried-past-an-organisation-heading",
    ),
    pytest.param(  # a fiscal quarter, when the text says when the fiscal year ends, is the calendar one
        "⟦和信贷|ORG⟧公布了截至2018年9月30日的2019财年第二季度未经审计的财务业绩。公司财务年度为截至3月31日的12个月。\n"
        "⟦2019财年第二季度|PERIOD⟧平台⟦促成借款总额|METRIC⟧达⟦3,380万美元|VALUE⟧。",
        [("和信贷", "促成借款总额", "org_metric"), ("促成借款总额", "3,380万美元", "metric_value"),
         ("3,380万美元", "2019财年第二季度", "value_period")],
        None,
        {"3,380万美元": ("和信贷", "2018Q3")},
        id="fiscal-quarter-as-calendar-quarter",
    ),
    pytest.param(  # a period list whose last item opens with 截至, values linked only at its ends
        "此外,⟦2019年|PERIOD⟧、⟦2020年|PERIOD⟧、⟦2021年|PERIOD⟧以及截至⟦2022年上半年|PERIOD⟧的⟦30天+逾期率|METRIC⟧分别是"
        "⟦2.8%|VALUE⟧、⟦2.5%|VALUE⟧、⟦3.2%|VALUE⟧和⟦4.4%|VALUE⟧。",
        [("30天+逾期率", "2.8%", "metric_value"), ("30天+逾期率", "2.5%", "metric_value"),
         ("30天+逾期率", "3.2%", "metric_value"), ("30天+逾期率", "4.4%", "metric_value"),
         ("2.8%", "2019年", "value_period"), ("4.4%", "2022年上半年", "value_period")],
        "2022-10-01",
        {"2.8%": (None, "2019-12-31"), "2.5%": (None, "2020-12-31"), "3.2%": (None, "2021-12-31"),
         "4.4%": (None, "2022-06-30")},
        id="period-list-with-a-cut-off-word",
    ),
    pytest.param(  # 同期 is the sentence's main period's, not a comparison base's before it
        "⟦2025 年第三季度|PERIOD⟧⟦服务的借款人数|METRIC⟧为 ⟦1,335,978 人|VALUE⟧,较 ⟦2025 年第二季度|PERIOD⟧的 "
        "⟦1,637,912 人|VALUE⟧减少了 18%,较 ⟦2024 年同期|PERIOD⟧的 ⟦1,498,020 人|VALUE⟧减少了 11%。",
        [("服务的借款人数", "1,335,978 人", "metric_value"), ("服务的借款人数", "1,637,912 人", "metric_value"),
         ("服务的借款人数", "1,498,020 人", "metric_value"), ("1,335,978 人", "2025 年第三季度", "value_period"),
         ("1,637,912 人", "2025 年第二季度", "value_period"), ("1,498,020 人", "2024 年同期", "value_period")],
        None,
        {"1,335,978 人": (None, "2025Q3"), "1,637,912 人": (None, "2025Q2"), "1,498,020 人": (None, "2024Q3")},
        id="same-period-of-the-main-period",
    ),
    pytest.param(  # 期内 in an undated article names the report that 今年上半年 turned out to be
        "⟦维信金科|ORG⟧在中报中表示,⟦今年上半年|PERIOD⟧⟦营业收入|METRIC⟧⟦7.53亿元|VALUE⟧。\n"
        "数据显示,2021年是转型之年。⟦期内|PERIOD⟧,⟦交易总数目|METRIC⟧为⟦1.7百万宗|VALUE⟧。",
        [("维信金科", "营业收入", "org_metric"), ("营业收入", "7.53亿元", "metric_value"),
         ("7.53亿元", "今年上半年", "value_period"), ("交易总数目", "1.7百万宗", "metric_value"),
         ("1.7百万宗", "期内", "value_period")],
        None,
        {"7.53亿元": ("维信金科", "2021H1"), "1.7百万宗": ("维信金科", "2021H1")},
        id="within-the-period-of-a-report-found-late",
    ),
    pytest.param(  # the value a year-on-year change starts from is the same period a year earlier
        "⟦美團|ORG⟧公布截至6月底季度業績。⟦第二季度|PERIOD⟧,核心本地商業⟦分部收入|METRIC⟧按年增長7.7%至⟦653億元|VALUE⟧。"
        "⟦經營溢利|METRIC⟧由⟦152億元|VALUE⟧,按年下降⟦75.6%|VALUE⟧至⟦37億元|VALUE⟧。",
        [("美團", "分部收入", "org_metric"), ("分部收入", "653億元", "metric_value"),
         ("653億元", "第二季度", "value_period"), ("經營溢利", "152億元", "metric_value"),
         ("經營溢利", "75.6%", "metric_change"), ("經營溢利", "37億元", "metric_value")],
        "2025-08-27",
        {"653億元": ("美團", "2025Q2"), "152億元": ("美團", "2024Q2"), "75.6%": ("美團", "2025Q2"),
         "37億元": ("美團", "2025Q2")},
        id="year-on-year-change-starts-a-year-earlier",
    ),
    pytest.param(  # undated (web-19-02): 今年第三季度 beside 2023年第三季度 moves the article to 2024, and its
        # 今年前三季度 and 去年同期 with it
        "⟦今年第三季度|PERIOD⟧,⟦江苏银行|ORG⟧实现⟦营收|METRIC⟧⟦206亿元|VALUE⟧。\n"
        "⟦去年同期|PERIOD⟧,⟦江苏银行|ORG⟧录得⟦营收|METRIC⟧⟦198.35亿元|VALUE⟧。\n"
        "⟦今年前三季度|PERIOD⟧,⟦江苏银行|ORG⟧⟦各项贷款余额|METRIC⟧⟦2.09万亿元|VALUE⟧,较2023年末增长10.61%。\n"
        "⟦2023年第三季度|PERIOD⟧,⟦郑州银行|ORG⟧⟦营收|METRIC⟧下滑至⟦35.59亿元|VALUE⟧。",
        [("江苏银行", "营收", "org_metric"), ("营收", "206亿元", "metric_value"), ("206亿元", "今年第三季度", "value_period"),
         ("江苏银行#2", "营收#2", "org_metric"), ("营收#2", "198.35亿元", "metric_value"),
         ("198.35亿元", "去年同期", "value_period"), ("江苏银行#3", "各项贷款余额", "org_metric"),
         ("各项贷款余额", "2.09万亿元", "metric_value"), ("2.09万亿元", "今年前三季度", "value_period"),
         ("郑州银行", "营收#3", "org_metric"), ("营收#3", "35.59亿元", "metric_value"),
         ("35.59亿元", "2023年第三季度", "value_period")],
        None,
        {"206亿元": ("江苏银行", "2024Q3"), "198.35亿元": ("江苏银行", "2023Q3"),
         "2.09万亿元": ("江苏银行", "2024-09-30"), "35.59亿元": ("郑州银行", "2023Q3")},
        id="undated-this-year-after-an-explicit-year",
    ),
    pytest.param(  # 期内 after 首三季 (web-23-05): the period just spoken of, not the quarter reported later
        "⟦中行|ORG⟧公布,截至⟦今年9月底止首三季|PERIOD⟧⟦純利|METRIC⟧⟦1,757.63億元|VALUE⟧。\n"
        "⟦期內|PERIOD⟧,⟦營業收入|METRIC⟧錄⟦4,791.05億元|VALUE⟧。\n"
        "單計⟦第三季|PERIOD⟧,⟦純利|METRIC⟧⟦571.62億元|VALUE⟧。",
        [("中行", "純利", "org_metric"), ("純利", "1,757.63億元", "metric_value"),
         ("1,757.63億元", "今年9月底止首三季", "value_period"), ("營業收入", "4,791.05億元", "metric_value"),
         ("4,791.05億元", "期內", "value_period"), ("純利#2", "571.62億元", "metric_value"),
         ("571.62億元", "第三季", "value_period")],
        "2024-10-30",
        {"1,757.63億元": ("中行", "2024Q1-Q3"), "4,791.05億元": ("中行", "2024Q1-Q3"), "571.62億元": ("中行", "2024Q3")},
        id="within-the-period-just-spoken-of",
    ),
    pytest.param(  # 去年同期 beside 该季度 in its sentence (web-19-01): that quarter a year earlier
        "⟦2025年前三季度|PERIOD⟧,⟦成都银行|ORG⟧实现⟦营业收入|METRIC⟧⟦177.61亿元|VALUE⟧。\n"
        "⟦该季度|PERIOD⟧实现⟦营收|METRIC⟧⟦54.91亿元|VALUE⟧,而⟦去年同期|PERIOD⟧增速为⟦1.14%|VALUE⟧。",
        [("成都银行", "营业收入", "org_metric"), ("营业收入", "177.61亿元", "metric_value"),
         ("177.61亿元", "2025年前三季度", "value_period"), ("营收", "54.91亿元", "metric_value"),
         ("营收", "1.14%", "metric_change"), ("54.91亿元", "该季度", "value_period"),
         ("1.14%", "去年同期", "value_period")],
        "2025-10-30",
        {"177.61亿元": ("成都银行", "2025Q1-Q3"), "1.14%": ("成都银行", "2024Q3")},
        id="same-period-last-year-of-the-quarter-in-its-sentence",
    ),
    pytest.param(  # undated profit warnings beside 2020年上半年 (web-20-03): the report's own half, not the next
        "⟦2020年上半年|PERIOD⟧券商整体实现⟦净利润|METRIC⟧⟦831.47亿元|VALUE⟧。"
        "其中⟦第一创业|ORG⟧预计⟦上半年|PERIOD⟧⟦净利润|METRIC⟧⟦3.97亿元-4.39亿元|VALUE⟧。",
        [("净利润", "831.47亿元", "metric_value"), ("831.47亿元", "2020年上半年", "value_period"),
         ("第一创业", "净利润#2", "org_metric"), ("净利润#2", "3.97亿元-4.39亿元", "metric_value"),
         ("3.97亿元-4.39亿元", "上半年", "value_period")],
        None,
        {"3.97亿元-4.39亿元": ("第一创业", "2020H1")},
        id="undated-profit-warning-of-the-report-period",
    ),
    pytest.param(  # a run of months the format cannot say, broken down by the next sentence (web-20-01)
        "⟦2022年度|PERIOD⟧五大险企拟共⟦派发|METRIC⟧⟦781.93亿元|VALUE⟧。"
        "⟦前5个月|PERIOD⟧,五大上市险企合计实现⟦保费|METRIC⟧约⟦1.43万亿元|VALUE⟧。"
        "其中,⟦中国人寿|ORG⟧、⟦新华保险|ORG⟧各取得⟦保费收入|METRIC⟧⟦3986亿元|VALUE⟧、⟦882.2亿元|VALUE⟧。",
        [("派发", "781.93亿元", "metric_value"), ("781.93亿元", "2022年度", "value_period"),
         ("保费", "1.43万亿元", "metric_value"), ("1.43万亿元", "前5个月", "value_period"),
         ("中国人寿", "保费收入", "org_metric"), ("新华保险", "保费收入", "org_metric"),
         ("保费收入", "3986亿元", "metric_value"), ("保费收入", "882.2亿元", "metric_value")],
        None,
        {"1.43万亿元": (None, None), "3986亿元": ("中国人寿", None), "882.2亿元": ("新华保险", None)},
        id="months-run-broken-down",
    ),
    pytest.param(  # one value of a list of owners (web-20-00): the first one named; as many values share it out
        "⟦海通证券|ORG⟧、⟦国泰君安|ORG⟧其⟦归母净利润|METRIC⟧均超过⟦30亿元|VALUE⟧。"
        "⟦北京银行|ORG⟧⟦宁波银行|ORG⟧其⟦营收|METRIC⟧为⟦699.17亿元|VALUE⟧、⟦666.31亿元|VALUE⟧。",
        [("海通证券", "归母净利润", "org_metric"), ("国泰君安", "归母净利润", "org_metric"),
         ("归母净利润", "30亿元", "metric_value"), ("北京银行", "营收", "org_metric"), ("宁波银行", "营收", "org_metric"),
         ("营收", "699.17亿元", "metric_value"), ("营收", "666.31亿元", "metric_value")],
        "2025-05-04",
        {"30亿元": ("海通证券", None), "699.17亿元": ("北京银行", None), "666.31亿元": ("宁波银行", None)},
        id="list-of-owners",
    ),
]


def test_an_undated_page_is_dated_by_its_address():
    doc = marked_doc("隨著上市公司三季報披露收官,⟦中信證券|ORG⟧⟦前三季度|PERIOD⟧實現⟦營業收入|METRIC⟧⟦558.15億元|VALUE⟧。",
                     [("中信證券", "營業收入", "org_metric"), ("營業收入", "558.15億元", "metric_value"),
                      ("558.15億元", "前三季度", "value_period")],
                     source="http://www.xbjpep.com/html/2025-11/1007285.html")
    assert facts_by_value(doc) == {"558.15億元": ("中信證券", "2025Q1-Q3")}


@pytest.mark.parametrize("source, date", [
    ("http://www.xbjpep.com/html/2025-11/1007285.html", "2025-11-01"),
    ("http://gxwjnk.com/news/202009/128083.html", "2020-09-01"),
    ("http://chaguwang.cn/report/600837/202310310012.html", "2023-10-31"),
    # the day in a segment of its own, or a whole date closing the file name (fresh pages, 2026-12)
    ("https://hkcd.com/hkcdweb/content/2024/08/28/content_8654242.html", "2024-08-28"),
    ("https://news.rthk.hk/rthk/ch/component/k2/1820363-20250829.htm", "2025-08-29"),
    ("http://m.boke.042.cn/jiaodian/2023/0823/21879.html", "2023-08-23"),
    ("http://xyjb.ptxw.com/h5/html5/2023-07/03/content_141382_16282415.htm", "2023-07-03"),
    ("https://example.com/a/2024/08/1234.html", "2024-08-01"),
    ("https://new.qq.com/rain/a/20240912A03DGL00?suid=&media_id=", "2024-09-12"),
    ("https://tianfucaijing.com/finance/232465.html", None),
    ("https://reportify.cc/reports/1028629762790264832", None),
    ("http://kingsuperfood.com/news/detail-20230616-2680480.html", "2023-06-16"),  # stage 20: the day before a number
    # a MongoDB ObjectId starts with the Unix time it was made
    ("http://app.myzaker.com/news/article.php?pk=672a171c8e9f0946292c69ed", "2024-11-05"),
    ("https://finet.hk/newscenter/print_content/5f45046dbde0b33df474562a", "2020-08-25"),
    ("https://www.xuehua.us/a/652270abefc074f88e817a2a?lang=zh-tw", "2023-10-08"),
    # an MD5 (32 hex digits) is no date, nor a 24-digit hex string whose "time" is before 2009
    ("https://wanbiaoku.com./new/94cab1cc520a4e479ff09182c42c441d", None),
    ("https://example.com/a/0a2270abefc074f88e817a2a", None),
    (None, None),
])
def test_source_date(source, date):
    from caibao.facts import _source_date

    assert _source_date(source) == date


@pytest.mark.parametrize("marked, relations, date, expected", CASES)
def test_document_level_resolution(marked, relations, date, expected):
    got = facts_by_value(marked_doc(marked, relations, date))
    for value, want in expected.items():
        assert got[value] == want, value


def test_guidance_is_read_per_clause():
    case = next(c for c in CASES if c.id == "guidance-by-clause")
    doc = marked_doc(case.values[0], case.values[1])
    guidance = {f.value.text: f.guidance for f in build_facts(doc)}
    assert guidance == {"10.237亿元": False, "2.0946亿美元": True}


@pytest.mark.parametrize("name, key", [
    ("招联消费金融有限公司", "招联消金"), ("招联消金", "招联消金"), ("马上消费金融股份有限公司", "马上消金"),
    ("重庆农村商业银行", "重庆农商行"), ("兴业银行", "兴业银行"), ("平安银行股份有限公司", "平安银行"),
    ("招聯消費金融", "招联消金"), ("中國人壽", "中国人寿"),
])
def test_org_key(name, key):
    assert org_key(name) == key


@pytest.mark.parametrize("metric, balance", [
    ("总资产", True), ("资产总额", True), ("贷款余额", True), ("不良贷款率", True), ("拨备覆盖率", True),
    ("在贷余额", True), ("90天以上逾期率", True), ("核心一级资本充足率", True), ("累计注册用户数", True),
    ("实际资本", True), ("市场风险最低资本", True),  # an insurer's solvency capital at a quarter's end
    ("营业收入", False), ("净利润", False), ("资产减值损失", False), ("总资产收益率", False),
    ("新增贷款余额", False), ("促成借款额", False), ("保费收入", False),
    ("贷款账簿业务的未偿还借款人数量", True), ("服务的借款人数", False),
    ("发放贷款和垫款利息收入", False), ("累计发放消费贷款", True), ("股份付款储备", True), ("平均机龄", True),
    ("支行", True), ("总贷款额", False), ("利润累计总和", False), ("客户投诉量", False),
    # an average over the period is not a balance; one across organisations is
    ("平均贷款余额", True), ("平均注冊資本", True), ("平均不良率", True),
    # fresh pages (stages 10, 11): ratios, books and lines under other names
    ("總資本比率", True), ("資本適足率", True), ("貸存比率", True), ("逾放比", True), ("備抵呆帳覆蓋率", True),
    ("流动性比例", True), ("杠杆率", True), ("淨值", True), ("現金部位", True), ("出租率", True),
    ("融出资金", True), ("貨幣資金", True), ("公募规模", True), ("集合资金信托规模", True), ("代理人规模", True),
    ("税前净值报酬率", False),  # a Taiwan bank's ROE: a rate of return over the year
    # fresh pages (stage 14): a broker's leverage, funds borrowed, a bond yield, a per-share book value
    ("杠杆倍数", True), ("市场融入资金", True), ("10年期国债收益率", True), ("股东应占每股资产净值", True),
    ("小微信贷业务贷款月均余额", False), ("每日平均客戶資產", False),  # averages over the period
    ("放款余额", True), ("活存比", True), ("存放比", True),  # a Taiwan bank's loan book and deposit mix (stage 15)
])
def test_balance_metrics(metric, balance):
    assert is_balance(metric) is balance


@pytest.mark.parametrize("metric", ["每月活跃用户的平均数", "加权平均年化利率", "平均月付费用户", "营业收入"])
def test_averages_over_a_period_are_flows(metric):
    assert is_flow(metric) and not is_balance(metric)


def test_a_year_opening_a_clause_dates_the_figures_after_it():
    """中證協表示,2022年,證券公司持續…。全行業…實作營業收入3949.73億元: the year the earlier sentence opens
    with, not the report (2023年) the article is about; a year opener of the report's own year adds nothing."""
    doc = marked_doc("近日,⟦中國證券業協會|ORG⟧公布了2023年證券行業經營數據。145家證券公司⟦2023年度|PERIOD⟧實作"
                     "⟦營業收入|METRIC⟧⟦4059.02億元|VALUE⟧。\n在公布2022年經營情況時,中證協表示,2022年,證券公司持續夯實"
                     "資本實力。全行業140家證券公司實作⟦營業收入|METRIC⟧⟦3949.73億元|VALUE⟧。",
                     [("營業收入", "4059.02億元", "metric_value"), ("4059.02億元", "2023年度", "value_period"),
                      ("營業收入#2", "3949.73億元", "metric_value")])
    periods = {f.value.text: f.period.normalized for f in build_facts(doc)}
    assert periods == {"4059.02億元": "2023FY", "3949.73億元": "2022FY"}


def test_an_industry_association_reporting_a_total_does_not_own_it():
    """中證協表示,截至2023年12月31日,145家證券公司總資產為11.83萬億元: the association (by its short name,
    as 中证协, 中期协, 中保协, 中基协 are written) reports an industry total; it is not the owner."""
    doc = marked_doc("資本實力方面,⟦中證協|ORG⟧表示,截至⟦2023年12月31日|PERIOD⟧,145家證券公司⟦總資產|METRIC⟧為"
                     "⟦11.83萬億元|VALUE⟧。",
                     [("中證協", "總資產", "org_metric"), ("總資產", "11.83萬億元", "metric_value"),
                      ("11.83萬億元", "2023年12月31日", "value_period")])
    assert facts_by_value(doc) == {"11.83萬億元": (None, "2023-12-31")}


def test_a_regulator_owning_a_fact_is_never_the_main_org():
    doc = marked_doc("⟦央行|ORG⟧⟦累计注销牌照|METRIC⟧⟦102张|VALUE⟧。⟦央行|ORG⟧发布。⟦连连数字|ORG⟧⟦收入|METRIC⟧⟦13亿元|VALUE⟧。\n"
                     "⟦市占率|METRIC⟧为⟦0.6%|VALUE⟧。",
                     [("央行", "累计注销牌照", "org_metric"), ("累计注销牌照", "102张", "metric_value"),
                      ("连连数字", "收入", "org_metric"), ("收入", "13亿元", "metric_value"),
                      ("市占率", "0.6%", "metric_value")])
    assert facts_by_value(doc)["0.6%"][0] == "连连数字"
    assert facts_by_value(doc)["102张"][0] == "央行"  # its own relation still counts


def test_org_groups_do_not_merge_a_list():
    doc = marked_doc("⟦招联消金|ORG⟧、⟦兴业消金|ORG⟧(⟦兴业银行|ORG⟧旗下)", [])
    assert len(set(org_groups(doc).values())) == 3


def test_a_currency_before_the_value_names_its_unit():
    doc = marked_doc("⟦恒基地產|ORG⟧⟦每股基礎盈利|METRIC⟧為港幣⟦0.63元|VALUE⟧,⟦營業額|METRIC⟧為人民幣⟦20億元|VALUE⟧。",
                     [("每股基礎盈利", "0.63元", "metric_value"), ("營業額", "20億元", "metric_value")], "2025-08-21")
    units = {f.value.text: f.value.unit for f in build_facts(doc)}
    assert units == {"0.63元": "HKD", "20億元": "CNY"}


@pytest.mark.parametrize("marked, relations, units", [
    pytest.param(  # a declaration after the first amount rules it and the ones after (保誠, 香港01)
        "⟦保誠|ORG⟧（2378）公布中期業績，⟦新業務利潤|METRIC⟧⟦12.6億元|VALUE⟧（美元‧下同），按年增加12%，"
        "⟦調整後稅前營業利潤|METRIC⟧⟦16.4億元|VALUE⟧。",
        [("新業務利潤", "12.6億元", "metric_value"), ("調整後稅前營業利潤", "16.4億元", "metric_value")],
        {"12.6億元": "USD", "16.4億元": "USD"}, id="declared-usd"),
    pytest.param(  # 人民幣（下同） in a Hong Kong article: renminbi, the market style does not apply (美團)
        "⟦美團|ORG⟧（3690）公佈季度業績，期內⟦經調整溢利|METRIC⟧錄得⟦14.9億元|VALUE⟧人民幣（下同），按年減少89%。"
        "集團⟦總收入|METRIC⟧⟦918.4億元|VALUE⟧，按年增加12%。",
        [("經調整溢利", "14.9億元", "metric_value"), ("總收入", "918.4億元", "metric_value")],
        {"14.9億元": "CNY", "918.4億元": "CNY"}, id="declared-rmb"),
    pytest.param(  # a Hong Kong article without a declaration: 億元 are Hong Kong dollars (港交所, 香港01)
        "⟦港交所|ORG⟧（0388）公布第三季業績，⟦股東應佔溢利|METRIC⟧為⟦49億元|VALUE⟧，按年增加56%。"
        "⟦收入及其他收益|METRIC⟧為⟦77.75億元|VALUE⟧，按年增加45%。",
        [("股東應佔溢利", "49億元", "metric_value"), ("收入及其他收益", "77.75億元", "metric_value")],
        {"49億元": "HKD", "77.75億元": "HKD"}, id="hong-kong-style"),
    pytest.param(  # a mainland article on a Hong Kong listed bank (同比, not 按年): renminbi (徽商银行)
        "近日,⟦徽商银行|ORG⟧(03698)发布2024年度报告。⟦2024年|PERIOD⟧,⟦徽商银行|ORG⟧实现⟦营业收入|METRIC⟧"
        "⟦371.3亿元|VALUE⟧,同比增长2.1%。",
        [("徽商银行#2", "营业收入", "org_metric"), ("营业收入", "371.3亿元", "metric_value")],
        {"371.3亿元": "CNY"}, id="mainland-style"),
    pytest.param(  # Taiwan: a 4-digit code and 年減/自結 (中租-KY, ETtoday)
        "⟦中租-KY|ORG⟧（5871）公告自結業績，⟦11月|PERIOD⟧⟦自結合併營收|METRIC⟧為⟦78.1億元|VALUE⟧，年減5%。",
        [("自結合併營收", "78.1億元", "metric_value")], {"78.1億元": "TWD"}, id="taiwan-style"),
    pytest.param(  # Canadian dollars declared, and the cents after them (宏利金融, 香港01, a fresh page)
        "⟦宏利金融|ORG⟧ （0945） 公布第二季度業績。⟦新造業務價值|METRIC⟧按年增長20%至⟦8.5億元|VALUE⟧（加元‧下同)，"
        "按年增加。派息⟦每股|METRIC⟧⟦44仙|VALUE⟧，按年增10%。",
        [("新造業務價值", "8.5億元", "metric_value"), ("每股", "44仙", "metric_value")],
        {"8.5億元": "CAD", "44仙": "CAD"}, id="declared-cad-and-its-cents"),
    pytest.param(  # 人民币 before the amount in a Hong Kong-listed company's release (金山软件, a fresh page)
        "⟦金山软件|ORG⟧(03888.HK)公布业绩。来自娱乐软件的⟦收益|METRIC⟧为人民币⟦640.9百万元|VALUE⟧,按年减少6%。"
        "⟦毛利|METRIC⟧按年减少6%至人民币⟦840.4百万元|VALUE⟧。",
        [("收益", "640.9百万元", "metric_value"), ("毛利", "840.4百万元", "metric_value")],
        {"640.9百万元": "CNY", "840.4百万元": "CNY"}, id="renminbi-named-before-the-amount"),
    pytest.param(  # Taiwan without a code or a dateline: 臺灣 and 月減/年增 (berich.com.tw, a fresh page)
        "臺灣證券交易所統計,全體證券商⟦稅後純益|METRIC⟧仍達⟦75.07億元|VALUE⟧,僅月減4.6%,年增359.1%。",
        [("稅後純益", "75.07億元", "metric_value")], {"75.07億元": "TWD"}, id="taiwan-named"),
    pytest.param(  # Taiwan: a Taipei dateline and its 金控 (鉅亨網, a fresh page)
        "鉅亨網記者 台北 2025-10-13\n13 家金控 9 月⟦稅後純益|METRIC⟧合計約 ⟦690 億元|VALUE⟧。",
        [("稅後純益", "690 億元", "metric_value")], {"690 億元": "TWD"}, id="taiwan-dateline"),
])
def test_an_article_declares_or_implies_the_currency_of_its_yuan(marked, relations, units):
    assert {f.value.text: f.value.unit for f in build_facts(marked_doc(marked, relations, "2025-08-27"))} == units


def test_a_hong_kong_address_is_hong_kong_style():
    # RTHK (a fresh page): no stock code, but a .hk address and 按年
    doc = marked_doc("⟦中銀香港|ORG⟧上半年⟦盈利|METRIC⟧⟦221.5億元|VALUE⟧,按年升10.5%。淨息差按年收窄。",
                     [("盈利", "221.5億元", "metric_value")],
                     source="https://news.rthk.hk/rthk/ch/component/k2/1820363-20250829.htm")
    assert [f.value.unit for f in build_facts(doc)] == ["HKD"]


def test_a_cumulative_flow_over_a_span_of_months_is_that_span():
    """累计 makes a balance (累计放贷规模突破3300亿元 since the company began) unless its sentence names a
    span of months from the year's start: then the figure sums that span (中国证券报 on the futures industry)."""
    doc = marked_doc("⟦今年1-6月|PERIOD⟧,全国期货公司⟦累计净利润|METRIC⟧⟦38.44亿元|VALUE⟧,同比下降22.87%。"
                     "截至⟦2025年6月|PERIOD⟧,⟦哈银消费金融|ORG⟧⟦累计发放消费贷款|METRIC⟧突破⟦3300亿元|VALUE⟧。",
                     [("累计净利润", "38.44亿元", "metric_value"), ("38.44亿元", "今年1-6月", "value_period"),
                      ("哈银消费金融", "累计发放消费贷款", "org_metric"), ("累计发放消费贷款", "3300亿元", "metric_value"),
                      ("3300亿元", "2025年6月", "value_period")], "2024-08-01")
    periods = {f.value.text: f.period.normalized for f in build_facts(doc)}
    assert periods == {"38.44亿元": "2024H1", "3300亿元": "2025-06-30"}


@pytest.mark.parametrize("text, value, period", [
    # an undated roundup of insurers' solvency reports: the fourth quarter's gives the whole year
    ("近日,非上市寿险公司接连披露2024年第四季度偿付能力报告,60家公司合计实现⟦保险业务收入|METRIC⟧⟦1.13万亿元|VALUE⟧。",
     "1.13万亿元", "2024FY"),
    # an annual report named in traditional characters (信美人壽相互, 眾惠財產相互)
    ("⟦信美人壽相互|ORG⟧接連發布2023年年報。據披露,⟦信美人壽相互|ORG⟧⟦報告期|PERIOD⟧內達成⟦原保險保費收入|METRIC⟧"
     "⟦90.84億元|VALUE⟧。", "90.84億元", "2023FY"),
])
def test_a_report_named_in_an_undated_article_dates_it(text, value, period):
    metric = MARK.findall(text)
    metric_name = next(s for s, label in metric if label == "METRIC")
    period_names = [s for s, label in metric if label == "PERIOD"]
    relations = [(metric_name, value, "metric_value")] + [(value, p, "value_period") for p in period_names]
    facts = {f.value.text: f.period.normalized if f.period else None for f in build_facts(marked_doc(text, relations))}
    assert facts[value] == period


def test_a_part_of_a_year_beats_the_year_it_is_in():
    """⟦2025年⟧陆金所⟦第一季度⟧新增贷款: both periods link the value; the quarter is the more specific."""
    doc = marked_doc("⟦2025年|PERIOD⟧⟦陆金所|ORG⟧⟦第一季度|PERIOD⟧⟦新增贷款|METRIC⟧⟦573亿元|VALUE⟧。⟦2022年|PERIOD⟧,"
                     "公司⟦全年|PERIOD⟧⟦营收|METRIC⟧⟦90亿元|VALUE⟧。",
                     [("陆金所", "新增贷款", "org_metric"), ("新增贷款", "573亿元", "metric_value"),
                      ("573亿元", "2025年", "value_period"), ("573亿元", "第一季度", "value_period"),
                      ("营收", "90亿元", "metric_value"), ("90亿元", "2022年", "value_period"),
                      ("90亿元", "全年", "value_period")])
    assert {f.value.text: f.period.normalized for f in build_facts(doc)} == {"573亿元": "2025Q1", "90亿元": "2022FY"}


def test_a_table_declares_the_unit_of_its_bare_numbers():
    doc = marked_doc(
        "2021年度业绩快报公告\n一、2021年度本集团主要财务数据和指标\n单位: 人民币 百万元\n"
        "项目 | 本报告期 (未经审计) | 上年同期 (经审计) | 增减变动幅度(%) |\n"
        "⟦营业收入|METRIC⟧ | ⟦190,982|VALUE⟧ | ⟦196,384|VALUE⟧ | -2.75 |\n"
        "⟦基本每股收益(元/股)|METRIC⟧ | ⟦1.62|VALUE⟧ | ⟦1.88|VALUE⟧ | -13.83 |\n",
        [("营业收入", "190,982", "metric_value"), ("营业收入", "196,384", "metric_value"),
         ("基本每股收益(元/股)", "1.62", "metric_value"), ("基本每股收益(元/股)", "1.88", "metric_value")])
    got = {f.value.text: (f.value.number, f.value.unit) for f in build_facts(doc)}
    assert got["190,982"] == (190_982_000_000, "CNY") and got["196,384"] == (196_384_000_000, "CNY")
    # a per-share figure is not in the table's millions: its row name says yuan (元/股)
    assert got["1.62"] == (1.62, "CNY")


@pytest.mark.parametrize("text, periods", [
    ("2022-2024年", ["2022FY", "2023FY", "2024FY"]),
    ("25-27 年", ["2025FY", "2026FY", "2027FY"]),
    ("2024 - 2027E", ["2024FY", "2025FY", "2026FY", "2027FY"]),
    ("2017 年至 2019 年末", ["2017FY", "2018FY", "2019FY"]),
    ("2023-2025H", ["2023FY", "2024FY", "2025H1"]),
    ("2019-2022H1", ["2019FY", "2020FY", "2021FY", "2022H1"]),
    ("2019-2022年前三季度", ["2019FY", "2020FY", "2021FY", "2022Q1-Q3"]),
    ("2019-2022年上半年", ["2019FY", "2020FY", "2021FY", "2022H1"]),
    ("2023-05-20", None),
    ("2020年1-6月", None),
])
def test_a_span_of_years_shares_out_full_years_then_its_end(text, periods):
    assert facts_mod._span_periods(text) == periods


def test_a_page_of_two_articles_has_a_main_organisation_per_article():
    """A page joining two articles (web-12-13): the second article's figures are its own main organisation's."""
    doc = marked_doc(
        "⟦百度|ORG⟧20251119\n2025-11-20 10:16\n⟦百度|ORG⟧AI云业务保持强劲增长,⟦订阅收入|METRIC⟧同比增长⟦128%|VALUE⟧。\n"
        "⟦腾讯音乐|ORG⟧Q3财报:业绩增长亮眼\n观察者网· 2025-11-13 23:32\n"
        "财务业绩 - ⟦第三季度|PERIOD⟧⟦总营收|METRIC⟧为人民币⟦84.6亿元|VALUE⟧,同比增长20.6% [1]",
        [("订阅收入", "128%", "metric_change"), ("总营收", "84.6亿元", "metric_value"),
         ("84.6亿元", "第三季度", "value_period")],
        "2025-11-20")
    assert facts_by_value(doc)["128%"][0] == "百度"
    assert facts_by_value(doc)["84.6亿元"] == ("腾讯音乐", "2025Q3")


@pytest.mark.parametrize("text, titles", [
    ("同程旅行上半年营收90.5亿元\n国际金融报· 2025-08-18 17:42\n财务表现\n同程旅行:上半年实现经调整净利润15.6亿元\n"
     "证券时报网· 2025-08-18 17:35\n财务表现", ["同程旅行上半年营收90.5亿元", "同程旅行:上半年实现经调整净利润15.6亿元"]),
    ("百度20251119\n2025-11-20 10:16\n摘要", ["百度20251119"]),  # one article: its dateline under the title
    ("招商银行发布2024年年报。\n截至2024-12-31，总资产12万亿元。", ["招商银行发布2024年年报。"]),  # a date in a sentence
])
def test_article_starts(text, titles):
    from caibao.facts import article_starts

    starts = article_starts(text)
    assert [text[a : text.find("\n", a)] for a in starts] == titles


def test_an_industry_roundup_without_an_organisation_in_its_title_has_no_main_one():
    """券商APP活跃度创年内新高 (web-06-05): industry figures are no one organisation's, though one broker is
    named twice; an article whose title names none but one organisation leads clearly still has it."""
    roundup = marked_doc(
        "行情拉升 券商APP活跃度创年内新高\n- 证券服务应用8月⟦月活跃用户|METRIC⟧达⟦1.73亿|VALUE⟧ [1]\n"
        "- ⟦华泰证券|ORG⟧涨乐财富通⟦月活|METRIC⟧⟦1139万|VALUE⟧ [1]\n- ⟦国泰君安|ORG⟧君弘⟦月活|METRIC⟧⟦1052万|VALUE⟧\n"
        "- ⟦华泰证券|ORG⟧AI功能上线",
        [("月活跃用户", "1.73亿", "metric_value"), ("华泰证券", "月活", "org_metric"), ("月活", "1139万", "metric_value"),
         ("国泰君安", "月活#2", "org_metric"), ("月活#2", "1052万", "metric_value")], "2025-09-20")
    facts = facts_by_value(roundup)
    assert facts["1.73亿"][0] is None and facts["1139万"][0] == "华泰证券" and facts["1052万"][0] == "国泰君安"
    led = marked_doc(
        "半年净利罕见大跳水\n今年上半年,⟦兴业消金|ORG⟧实现⟦营业收入|METRIC⟧⟦51.88亿元|VALUE⟧。⟦兴业消金|ORG⟧在经营方面屡现违规,"
        "⟦中银消金|ORG⟧亏损。\n这是一份较为糟糕的成绩单,⟦净利润|METRIC⟧⟦2.77亿元|VALUE⟧。",
        [("兴业消金", "营业收入", "org_metric"), ("营业收入", "51.88亿元", "metric_value"),
         ("净利润", "2.77亿元", "metric_value")], "2024-08-20")
    assert facts_by_value(led)["2.77亿元"][0] == "兴业消金"


def test_a_forecast_cue_in_another_cell_is_another_columns():
    """A table flattened into one line (web-08-09): 預測明年股息率 heads the column of 5.3厘, not the short
    selling figures that follow in the next row's cells."""
    doc = marked_doc(
        "高息股組合名單:股份│預測明年⟦股息率|METRIC⟧建設銀行(00939.HK) +0.020 (+0.248%) 沽空 $5.12億; "
        "比率 30.237% │⟦5.3厘|VALUE⟧⟦滙豐控股|ORG⟧(00005.HK) 0.000 (0.000%) ⟦沽空|METRIC⟧ ⟦$6.90億|VALUE⟧; 比率 25.780% │5.3厘",
        [("滙豐控股", "沽空", "org_metric"), ("沽空", "$6.90億", "metric_value"), ("股息率", "5.3厘", "metric_value")],
        "2023-11-20")
    guidance = {f.value.text: f.guidance for f in build_facts(doc)}
    assert guidance == {"$6.90億": False, "5.3厘": True}


def test_a_forecast_span_holds_the_last_reported_year():
    """2024 - 2027E in a note of 2025-04-30 (web-06-09): 2024 is reported, 2025-2027 forecast."""
    doc = marked_doc(
        "- ⟦2024 - 2027E|PERIOD⟧⟦营业收入|METRIC⟧分别为⟦211.29亿|VALUE⟧、⟦242.13亿|VALUE⟧、⟦263.20亿|VALUE⟧、⟦290.22亿元|VALUE⟧,"
        "收入同比增长率分别为 ⟦- 9.10%|VALUE⟧、⟦14.59%|VALUE⟧、⟦8.71%|VALUE⟧、⟦10.26%|VALUE⟧ [8]",
        [("营业收入", v, "metric_value") for v in ("211.29亿", "242.13亿", "263.20亿", "290.22亿元")]
        + [("营业收入", v, "metric_change") for v in ("- 9.10%", "14.59%", "8.71%", "10.26%")]
        + [(v, "2024 - 2027E", "value_period") for v in ("211.29亿", "242.13亿", "263.20亿", "290.22亿元",
                                                         "- 9.10%", "14.59%", "8.71%", "10.26%")],
        "2025-04-30")
    got = {f.value.text: (f.period.normalized, f.guidance) for f in build_facts(doc)}
    assert got["211.29亿"] == ("2024FY", False) and got["242.13亿"] == ("2025FY", True)
    assert got["- 9.10%"] == ("2024FY", False) and got["10.26%"] == ("2027FY", True)


def test_a_results_flash_table_names_units_in_its_headers_and_row_names():
    """A 业绩快报 (web-03-05): 增减变动幅度(%) makes its column percentages, also under a header without the
    row names' cell; a row named 不良贷款率(%) or 基本每股收益(元/股) gives its numbers that unit."""
    doc = marked_doc(
        "⟦浦发银行|ORG⟧2021年度业绩快报公告\n单位: 人民币 百万元\n项目 | 本报告期 (未经审计) | 上年同期 (经审计) | 增减变动幅度(%) |\n"
        "⟦营业收入|METRIC⟧ | ⟦190,982|VALUE⟧ | 196,384 | ⟦-2.75|VALUE⟧ |\n"
        "⟦基本每股收益(元/股)|METRIC⟧ | ⟦1.62|VALUE⟧ | 1.88 | -13.83 |\n"
        "本报告期末 (未经审计) | 本报告期初 (经审计) | 增减变动幅度(%) | |\n"
        "⟦资产总额|METRIC⟧ | 8,136,757 | 7,950,218 | ⟦2.35|VALUE⟧ |\n"
        "⟦不良贷款率(%)|METRIC⟧ | ⟦1.61|VALUE⟧ | 1.73 | 下降0.12个百分点 |",
        [("浦发银行", "营业收入", "org_metric"), ("营业收入", "190,982", "metric_value"),
         ("营业收入", "-2.75", "metric_change"), ("基本每股收益(元/股)", "1.62", "metric_value"),
         ("资产总额", "2.35", "metric_change"), ("不良贷款率(%)", "1.61", "metric_value")],
        "2022-01-28")
    units = {f.value.text: (f.value.number, f.value.unit) for f in build_facts(doc)}
    assert units == {"190,982": (190_982_000_000, "CNY"), "-2.75": (-2.75, "%"), "1.62": (1.62, "CNY"),
                     "2.35": (2.35, "%"), "1.61": (1.61, "%")}


def test_a_sentence_opening_with_gong_si_is_the_last_subject_named():
    """公司 opening a sentence (web-13-10): the organisation that last opened a sentence or clause of the
    paragraph, though it owns no other fact and another company leads the article."""
    doc = marked_doc(
        "券商三季报:⟦东方财富|ORG⟧净利润增长\n在率先披露三季报的券商中,⟦东方财富|ORG⟧⟦净利润|METRIC⟧增长⟦5%|VALUE⟧。\n"
        "财务数据显示,⟦财达证券|ORG⟧前三季度营收和净利润双双下滑。公司前三季度实现⟦营业收入|METRIC⟧⟦14.35亿元|VALUE⟧。",
        [("东方财富", "净利润", "org_metric"), ("净利润", "5%", "metric_change"), ("营业收入", "14.35亿元", "metric_value")],
        "2022-10-28")
    assert facts_by_value(doc)["14.35亿元"][0] == "财达证券"


def test_a_growth_rate_over_many_years_has_no_period():
    """近三年复合增长率为124.36% (web-02-12): a span of years the period format cannot say (the guide: null)."""
    doc = marked_doc(
        "⟦报告期各期|PERIOD⟧,⟦京东金条|ORG⟧的⟦年度活跃用户数|METRIC⟧分别为⟦302.08万户|VALUE⟧和⟦1424.17万户|VALUE⟧,"
        "近三年复合增长率为⟦124.36%|VALUE⟧;⟦2019年|PERIOD⟧⟦营业收入|METRIC⟧⟦50亿元|VALUE⟧。",
        [("京东金条", "年度活跃用户数", "org_metric"), ("年度活跃用户数", "302.08万户", "metric_value"),
         ("年度活跃用户数", "1424.17万户", "metric_value"), ("年度活跃用户数", "124.36%", "metric_change"),
         ("营业收入", "50亿元", "metric_value"), ("50亿元", "2019年", "value_period")],
        "2020-09-12")
    facts = facts_by_value(doc)
    assert facts["124.36%"][1] is None and facts["50亿元"][1] == "2019FY"


@pytest.mark.parametrize("doc_id, values", [
    # undated 业绩预告 beside the article's 2020年上半年: the report's own half, not 2021H1
    ("web-20-03", ["3.97亿元-4.39亿元", "2.75亿元-2.85亿元", "90-110%"]),
    # the title's organisation (Block) over a product that owns a few facts (Cash App)
    ("web-21-01", ["27.55 亿美元", "102.43 亿美元", "4500 万美元"]),
])
def test_fifth_round_articles_agree_with_their_hand_checked_facts(doc_id, values):
    from pathlib import Path

    from caibao.annotations import read_documents
    from caibao.evaluate import read_fact_gold

    root = Path(__file__).resolve().parents[1] / "annotations"
    batch = doc_id.rsplit("-", 1)[0]
    doc = next(d for d in read_documents(root / "gold" / f"{batch}.jsonl") if d.id == doc_id)
    gold = {f["value"]["text"]: (f["org"], f["period"]) for f in read_fact_gold(root / "facts")[doc_id]["facts"]}
    built = facts_by_value(doc)
    for v in values:
        assert built[v] == gold[v], v


def test_a_title_naming_its_subject_by_stock_code_beats_a_subsidiary_owning_more_facts():
    # a fresh research note (中财网, 2025-09-03): Avolon owns four facts, 渤海租赁 is the note's subject
    doc = marked_doc(
        "⟦渤海租赁|ORG⟧(000415)2025H1业绩点评:⟦渤海租赁|ORG⟧营收同比高增\n"
        "⟦2025 年上半年|PERIOD⟧,公司⟦营业收入|METRIC⟧为⟦284.6 亿元|VALUE⟧。\n"
        "⟦Avolon|ORG⟧⟦机队规模|METRIC⟧为⟦1076 架|VALUE⟧,⟦Avolon|ORG⟧⟦自有飞机|METRIC⟧⟦599 架|VALUE⟧,"
        "⟦管理飞机|METRIC⟧⟦35 架|VALUE⟧,⟦订单飞机|METRIC⟧⟦442 架|VALUE⟧。",
        [("营业收入", "284.6 亿元", "metric_value"), ("284.6 亿元", "2025 年上半年", "value_period"),
         ("Avolon", "机队规模", "org_metric"), ("机队规模", "1076 架", "metric_value"),
         ("Avolon#2", "自有飞机", "org_metric"), ("自有飞机", "599 架", "metric_value"),
         ("Avolon#2", "管理飞机", "org_metric"), ("管理飞机", "35 架", "metric_value"),
         ("Avolon#2", "订单飞机", "org_metric"), ("订单飞机", "442 架", "metric_value")],
        "2025-09-03")
    facts = facts_by_value(doc)
    assert facts["284.6 亿元"] == ("渤海租赁", "2025H1") and facts["599 架"][0] == "Avolon"


def test_an_organisation_in_the_page_title_leads_a_text_flattened_into_one_line():
    # a fresh research note (reportify): one line of bullets, its title apart in meta.title
    doc = marked_doc(
        "投资评级 - 维持买入评级 核心观点 - ⟦苏农银行|ORG⟧业绩稳健 - 险资增持,⟦弘康人寿|ORG⟧新进⟦持股|METRIC⟧⟦4.95%|VALUE⟧ "
        "- ⟦1H25|PERIOD⟧⟦营收|METRIC⟧⟦22.8亿元|VALUE⟧(+0.2%)",
        [("弘康人寿", "持股", "org_metric"), ("持股", "4.95%", "metric_value"),
         ("营收", "22.8亿元", "metric_value"), ("22.8亿元", "1H25", "value_period")])
    doc.meta["title"] = "投资评级 - 维持买入评级 核心观点 - 苏农银行2025年中报业绩稳健"
    assert facts_by_value(doc)["22.8亿元"] == ("苏农银行", "2025H1")


def test_a_balance_of_a_year_ending_in_march_is_at_that_year_end():
    # 富石金融 (a fresh page): 截至2024年3月31日止年度 … 2024年应收账款为124,078千港元
    doc = marked_doc("财务数据 - 截至2024年3月31日止年度,⟦收益|METRIC⟧为⟦25,401千港元|VALUE⟧ - "
                     "⟦2024年|PERIOD⟧⟦应收账款|METRIC⟧为⟦124,078千港元|VALUE⟧,⟦2023年|PERIOD⟧为⟦240,224千港元|VALUE⟧",
                     [("收益", "25,401千港元", "metric_value"), ("应收账款", "124,078千港元", "metric_value"),
                      ("124,078千港元", "2024年", "value_period"), ("应收账款", "240,224千港元", "metric_value"),
                      ("240,224千港元", "2023年", "value_period")], "2024-06-28")
    periods = {f.value.text: f.period.normalized if f.period else None for f in build_facts(doc)}
    assert periods["124,078千港元"] == "2024-03-31" and periods["240,224千港元"] == "2023-03-31"


def test_the_year_under_review_of_an_interim_article_is_its_half():
    # 東亞銀行 (hk01, a fresh page): 上半年業績… 該行指出年內淨利息收入按年減少10.7%至73.44億元
    doc = marked_doc("⟦東亞|ORG⟧⟦上半年|PERIOD⟧⟦歸屬股東溢利|METRIC⟧⟦24.07億元|VALUE⟧。\n"
                     "該行指出⟦年內|PERIOD⟧⟦淨利息收入|METRIC⟧按年減少10.7%至⟦73.44億元|VALUE⟧。",
                     [("東亞", "歸屬股東溢利", "org_metric"), ("歸屬股東溢利", "24.07億元", "metric_value"),
                      ("24.07億元", "上半年", "value_period"), ("淨利息收入", "73.44億元", "metric_value"),
                      ("73.44億元", "年內", "value_period")], "2025-08-21")
    assert facts_by_value(doc) == {"24.07億元": ("東亞", "2025H1"), "73.44億元": ("東亞", "2025H1")}


def test_a_year_on_year_change_after_its_year_ago_base_is_of_the_period_after_it():
    # 歡聚 (PR Newswire, a fresh page): the base in one clause, the change in the next; 成都银行 (web-19-01):
    # 去年同期增速为1.14% is the base period's own growth
    doc = marked_doc("⟦2025年第三季度|PERIOD⟧，⟦經營利潤|METRIC⟧為⟦2000萬美元|VALUE⟧，⟦2024年同期|PERIOD⟧⟦經營利潤|METRIC⟧為"
                     "⟦1600萬美元|VALUE⟧，同比增長⟦19.1%|VALUE⟧。⟦營收|METRIC⟧同比下降2.92%,而⟦去年同期|PERIOD⟧增速為⟦1.14%|VALUE⟧。",
                     [("經營利潤", "2000萬美元", "metric_value"), ("2000萬美元", "2025年第三季度", "value_period"),
                      ("經營利潤#2", "1600萬美元", "metric_value"), ("1600萬美元", "2024年同期", "value_period"),
                      ("經營利潤#2", "19.1%", "metric_change"), ("19.1%", "2024年同期", "value_period"),
                      ("營收", "1.14%", "metric_change"), ("1.14%", "去年同期", "value_period")], "2025-11-20")
    periods = {f.value.text: f.period.normalized for f in build_facts(doc)}
    assert periods == {"2000萬美元": "2025Q3", "1600萬美元": "2024Q3", "19.1%": "2025Q3", "1.14%": "2024Q3"}


def test_a_day_that_ends_no_month_is_not_the_report_nor_the_period_in_force():
    # 信也科技 (财中社, 2025-08-22, a fresh page): complaints counted 截至2025年8月22日; 期内 is the quarter
    doc = marked_doc("据黑猫投诉平台数据显示,截至⟦2025年8月22日|PERIOD⟧,与拍拍贷相关的⟦投诉|METRIC⟧达⟦70907条|VALUE⟧。\n"
                     "8月20日,⟦信也科技|ORG⟧发布2025年二季报。⟦期内|PERIOD⟧,⟦营业收入|METRIC⟧⟦35.78亿元|VALUE⟧。",
                     [("投诉", "70907条", "metric_value"), ("70907条", "2025年8月22日", "value_period"),
                      ("信也科技", "营业收入", "org_metric"), ("营业收入", "35.78亿元", "metric_value"),
                      ("35.78亿元", "期内", "value_period")], "2025-08-22")
    assert facts_by_value(doc)["35.78亿元"] == ("信也科技", "2025Q2")


def test_a_flow_is_of_its_report_not_of_the_day_it_was_announced():
    # 富途 (a fresh page): 11月1日，富途控股公布第三季度业绩… the revenue is the quarter's
    doc = marked_doc("⟦富途控股|ORG⟧公布⟦2022年第三季度|PERIOD⟧业绩。\n⟦11月1日|PERIOD⟧,⟦富途控股|ORG⟧⟦总营收|METRIC⟧"
                     "⟦24.5亿港元|VALUE⟧。",
                     [("富途控股#2", "总营收", "org_metric"), ("总营收", "24.5亿港元", "metric_value"),
                      ("24.5亿港元", "11月1日", "value_period")], "2022-11-02")
    assert facts_by_value(doc)["24.5亿港元"] == ("富途控股", "2022Q3")


def test_a_clause_summing_up_its_year_beats_the_month_named_before_it():
    # 兆豐金 (ETtoday, a fresh page): 去年12月稅後淨利31.05億元，累計全年稅後淨利350.96億元
    doc = marked_doc("⟦兆豐金|ORG⟧⟦去年12月|PERIOD⟧⟦稅後淨利|METRIC⟧⟦31.05億元|VALUE⟧，累計全年⟦稅後淨利|METRIC⟧⟦350.96億元|VALUE⟧。",
                     [("兆豐金", "稅後淨利", "org_metric"), ("稅後淨利", "31.05億元", "metric_value"),
                      ("31.05億元", "去年12月", "value_period"), ("稅後淨利#2", "350.96億元", "metric_value"),
                      ("350.96億元", "去年12月", "value_period")], "2026-01-09")
    periods = {f.value.text: f.period.normalized for f in build_facts(doc)}
    assert periods == {"31.05億元": "2025-12", "350.96億元": "2025FY"}


def test_a_space_separated_table_names_units_in_its_headers_and_row_names():
    """青岛银行's quarter analysis (stage 10, a fresh page): a row named 营业收入(亿元) and a column headed
    2025Q1末余额(亿元) give their bare numbers 亿元; a header of period names (2025年Q1) is no data row."""
    doc = marked_doc(
        "⟦青岛银行|ORG⟧2025年一季度财报深度分析\n指标 ⟦2025年Q1|PERIOD⟧ 同比变化 行业排名\n"
        "⟦营业收入|METRIC⟧(亿元) ⟦40.47|VALUE⟧ ⟦+9.69%|VALUE⟧ 42家银行第2名\n"
        "项目 2025Q1末余额(亿元) 同比增速 较上年末变化\n⟦资产总额|METRIC⟧ ⟦7,131|VALUE⟧ +14.46% +3.36%",
        [("青岛银行", "营业收入", "org_metric"), ("营业收入", "40.47", "metric_value"),
         ("营业收入", "+9.69%", "metric_change"), ("资产总额", "7,131", "metric_value")])
    units = {f.value.text: (f.value.number, f.value.unit) for f in build_facts(doc)}
    assert units == {"40.47": (4_047_000_000, "CNY"), "+9.69%": (9.69, "%"), "7,131": (713_100_000_000, "CNY")}


@pytest.mark.parametrize("marked, relations, units", [
    pytest.param(  # 同比, not 按年, but Hong Kong's way of writing its dollars (長和, 匯港通訊, stage 10)
        "<匯港通訊> ⟦長和|ORG⟧(00001)發表2024年全年業績,去年⟦收益總額|METRIC⟧⟦4766.8億元|VALUE⟧,同比升3%。"
        "較2023年增加2%,為1063.4億港元。",
        [("收益總額", "4766.8億元", "metric_value")], {"4766.8億元": "HKD"}, id="hong-kong-dollars-written-so"),
    pytest.param(  # a hedge between the currency word and the amount (小米, HK01, stage 10)
        "⟦小米|ORG⟧今年以來,⟦股票回購金額|METRIC⟧達港幣約⟦15.4億元|VALUE⟧。",
        [("股票回購金額", "15.4億元", "metric_value")], {"15.4億元": "HKD"}, id="hedged-currency"),
])
def test_hong_kong_dollars_without_an_explicit_style(marked, relations, units):
    assert {f.value.text: f.value.unit for f in build_facts(marked_doc(marked, relations))} == units


def test_renminbi_after_the_amount_beats_the_hong_kong_style():
    """腾讯(00700.HK) in a Hong Kong-style roundup (stage 12): 一百九十九亿元人民币 is renminbi."""
    doc = marked_doc("⟦腾讯|ORG⟧(00700.HK)中期多赚四成,⟦纯利|METRIC⟧增至⟦一百九十九亿元|VALUE⟧人民币。单计第二季,纯利按年增加四成七,"
                     "⟦营业额|METRIC⟧按年升五成二。", [("纯利", "一百九十九亿元", "metric_value")])
    assert [f.value.unit for f in build_facts(doc)] == ["CNY"]


def test_a_taiwan_address_or_dateline_is_taiwan_style():
    """凱基金 on Yahoo 奇摩 (stage 12): a tw. address, 今（2）日 and 年增 make bare 億元 Taiwan dollars."""
    doc = marked_doc("凱基金控今（2）日舉行法說會。⟦凱基銀行|ORG⟧今年前10月⟦稅後純益|METRIC⟧⟦58.95億元|VALUE⟧、年增25.1%。",
                     [("稅後純益", "58.95億元", "metric_value")], source="https://tw.news.yahoo.com/131438373.html")
    assert [f.value.unit for f in build_facts(doc)] == ["TWD"]


@pytest.mark.parametrize("marked, relations, period", [
    # 長和(00001)發表2024年全年業績 (stage 10, the model tagged no PERIOD there): 去年 is 2024
    ("⟦長和|ORG⟧(00001)發表2024年全年業績,⟦去年|PERIOD⟧⟦收益總額|METRIC⟧⟦4766.8億元|VALUE⟧,同比升3%。",
     [("收益總額", "4766.8億元", "metric_value"), ("4766.8億元", "去年", "value_period")], "2024FY"),
    # 斗魚發布2025年第一季度財報 (stage 15, no PERIOD tagged there): 本季度 is 2025Q1
    ("5月20日,⟦斗魚|ORG⟧發布2025年第一季度財報。⟦本季度|PERIOD⟧斗魚⟦總收入|METRIC⟧⟦9.47億元|VALUE⟧。",
     [("總收入", "9.47億元", "metric_value"), ("9.47億元", "本季度", "value_period")], "2025Q1"),
])
def test_a_results_release_names_the_report_of_an_undated_article(marked, relations, period):
    assert [f.period.normalized for f in build_facts(marked_doc(marked, relations))] == [period]


def test_a_broker_quoted_for_its_research_owns_none_of_the_figures():
    """智通財經 on 中金's note (stage 10, a fresh page): the rated company owns the figures, and 公司
    after the broker's sentence is that company."""
    doc = marked_doc(
        "⟦中金|ORG⟧發布研究報告稱,維持⟦遠東宏信|ORG⟧(03360)“跑贏行業”評級。"
        "公司1H22⟦收入|METRIC⟧同比+9.5%至⟦177.2億元|VALUE⟧。",
        [("收入", "177.2億元", "metric_value")])
    assert facts_by_value(doc)["177.2億元"][0] == "遠東宏信"


@pytest.mark.parametrize("marked, relations, expected", [
    pytest.param(  # 大新银行's year (星島, stage 10): a ratio's from-value with no 按年 is a year earlier
        "⟦大新银行|ORG⟧公布⟦2018年|PERIOD⟧全年业绩。⟦成本对收入比率|METRIC⟧由⟦49%|VALUE⟧改善至⟦47.1%|VALUE⟧。",
        [("成本对收入比率", "49%", "metric_value"), ("成本对收入比率", "47.1%", "metric_value")],
        {"49%": "2017FY", "47.1%": "2018FY"}, id="ratio"),
    pytest.param(  # a balance's from-value may be the year's start: it keeps the report's end without a cue
        "⟦大新银行|ORG⟧公布⟦2018年|PERIOD⟧全年业绩。⟦总资产|METRIC⟧由⟦2300亿元|VALUE⟧增至⟦2400亿元|VALUE⟧。",
        [("总资产", "2300亿元", "metric_value"), ("总资产", "2400亿元", "metric_value")],
        {"2300亿元": "2018-12-31", "2400亿元": "2018-12-31"}, id="balance"),
])
def test_a_from_value_of_a_period_is_a_year_earlier(marked, relations, expected):
    assert {f.value.text: f.period.normalized for f in build_facts(marked_doc(marked, relations))} == expected


def test_an_undated_article_opening_with_its_year_reports_on_that_year():
    """浙江网商银行 (stage 11, undated): 2024年 opens the article; 2023年 is only a comparison base."""
    doc = marked_doc("2024年,⟦浙江网商银行|ORG⟧展现了数字普惠金融的复杂图景。⟦全年|PERIOD⟧实现⟦营业收入|METRIC⟧⟦213.14亿元|VALUE⟧,"
                     "同比增长13.71%,增速较⟦2023年|PERIOD⟧的⟦19.49%|VALUE⟧有所放缓。",
                     [("营业收入", "213.14亿元", "metric_value"), ("213.14亿元", "全年", "value_period"),
                      ("营业收入", "19.49%", "metric_change"), ("19.49%", "2023年", "value_period")])
    assert {f.value.text: f.period.normalized for f in build_facts(doc)} == {"213.14亿元": "2024FY", "19.49%": "2023FY"}


def test_a_named_report_beats_a_quarter_ending_the_same_day():
    """维信金科 (stage 11): its 2022年中期业绩 is the report, though 2022年Q2's ratios end the same day."""
    doc = marked_doc("⟦维信金科|ORG⟧发布2022年中期业绩公告。截至⟦2022年6月30日|PERIOD⟧,⟦维信金科|ORG⟧录得⟦总营收|METRIC⟧"
                     "⟦15.83亿元|VALUE⟧。⟦逾期率|METRIC⟧下降至⟦2022年Q2|PERIOD⟧的⟦2.07%|VALUE⟧。",
                     [("维信金科#2", "总营收", "org_metric"), ("总营收", "15.83亿元", "metric_value"),
                      ("15.83亿元", "2022年6月30日", "value_period"),
                      ("逾期率", "2.07%", "metric_value"), ("2.07%", "2022年Q2", "value_period")], "2022-08-25")
    assert facts_by_value(doc)["15.83亿元"][-1] == "2022H1"


def test_a_year_past_every_year_written_names_no_report():
    """阳光保险 (stage 11, undated): 主力产品 30 年 IRR was read as 2030 and made the report 2030FY."""
    doc = marked_doc("⟦阳光保险|ORG⟧用 2024 年的成绩单给出答案:⟦寿险新单保费|METRIC⟧⟦+18.6%|VALUE⟧。"
                     "主力产品 ⟦30 年|PERIOD⟧ ⟦IRR|METRIC⟧ ⟦2.8%|VALUE⟧。",
                     [("寿险新单保费", "+18.6%", "metric_change"),
                      ("IRR", "2.8%", "metric_value"), ("2.8%", "30 年", "value_period")])
    assert facts_by_value(doc)["+18.6%"] == ("阳光保险", None)


def test_a_listed_exchange_reports_its_own_results():
    """港交所(00388) (大紀元, stage 11): an exchange is a data source, but not when the article introduces it
    with its stock code as the company whose results it reports."""
    doc = marked_doc("⟦港交所|ORG⟧(00388)昨日公布中期業績。⟦上半年|PERIOD⟧⟦盈利|METRIC⟧按年下跌27%至⟦48.36億元|VALUE⟧。",
                     [("盈利", "48.36億元", "metric_value"), ("48.36億元", "上半年", "value_period")], "2022-08-18")
    assert facts_by_value(doc)["48.36億元"] == ("港交所", "2022H1")


def test_a_brokers_valuation_year_names_no_report():
    """满帮集团 in a broker's note (stage 13, undated): 基于2026年…20倍市盈率进行估值 is a forecast year; the
    note reports on 2025年第三季度, so a later bare 第三季度 is 2025Q3."""
    doc = marked_doc("⟦满帮集团|ORG⟧基于⟦2026年|PERIOD⟧⟦Non-GAAP净利润|METRIC⟧⟦20倍|VALUE⟧市盈率进行估值。"
                     "⟦2025年第三季度|PERIOD⟧⟦总收入|METRIC⟧为⟦33.6亿元|VALUE⟧。⟦第三季度|PERIOD⟧⟦毛利率|METRIC⟧为⟦52.2%|VALUE⟧。",
                     [("Non-GAAP净利润", "20倍", "metric_value"), ("20倍", "2026年", "value_period"),
                      ("总收入", "33.6亿元", "metric_value"), ("33.6亿元", "2025年第三季度", "value_period"),
                      ("毛利率", "52.2%", "metric_value"), ("52.2%", "第三季度", "value_period")])
    assert facts_by_value(doc)["52.2%"][1] == "2025Q3"


@pytest.mark.parametrize("opening, expected", [
    # 北京银行 (stage 13): broken down by quarter, the three values are the three quarters
    ("分季度来看,⟦2025年前三个季度中|PERIOD⟧,", ["2025Q1", "2025Q2", "2025Q3"]),
    # a roundup of three banks over the same span keeps it (no word breaking it down by quarter)
    ("⟦2025年前三季度|PERIOD⟧,", ["2025Q1-Q3"] * 3),
])
def test_first_quarters_broken_down_by_quarter_share_out_in_order(opening, expected):
    doc = marked_doc(opening + "北京银行分别实现⟦营业收入|METRIC⟧⟦171.27亿元|VALUE⟧、⟦190.91亿元|VALUE⟧、⟦153.7亿元|VALUE⟧。",
                     [("营业收入", v, "metric_value") for v in ("171.27亿元", "190.91亿元", "153.7亿元")]
                     + [(v, "2025年前三个季度中" if "个" in opening else "2025年前三季度", "value_period")
                        for v in ("171.27亿元", "190.91亿元", "153.7亿元")], "2025-10-31")
    assert [f.period.normalized for f in build_facts(doc)] == expected


def test_a_quarter_named_by_its_last_month_names_the_report():
    """名創集團 (stage 13): 公佈2023年9月季度未經審計的財務業績, with a fiscal quarter and no calendar one tagged."""
    doc = marked_doc("名創集團公佈2023年9月季度未經審計的財務業績。\n截至⟦2023年9月30日的2024財年第一季度|PERIOD⟧的財務亮點\n"
                     "·⟦收入|METRIC⟧為人民幣⟦37.912億元|VALUE⟧,同比增長36.7%。",
                     [("收入", "37.912億元", "metric_value")], "2023-11-21")
    assert [f.period.normalized for f in build_facts(doc)] == ["2023Q3"]


def test_a_fiscal_year_ended_in_june_is_the_report_its_year_words_and_balances_read():
    # 新鴻基地產 (hk01, a fresh page of stage 11, 2025-09-04): 公布截至6月底全年業績 is the year to June 2025,
    # whose 全年/年內 flows are 2025FY (not the calendar 2024 nor the half year to 6月底) and whose
    # balances are at its end
    doc = marked_doc("新鴻基地產（0016）公布⟦截至6月底|PERIOD⟧全年業績。⟦期內|PERIOD⟧，集團⟦全年|PERIOD⟧⟦收入|METRIC⟧為"
                     "⟦797.2億元|VALUE⟧。⟦年內|PERIOD⟧⟦物業銷售溢利|METRIC⟧為⟦82.9億元|VALUE⟧。"
                     "⟦截至6月30日|PERIOD⟧，⟦土地儲備|METRIC⟧約為⟦5,740萬平方呎|VALUE⟧。",
                     [("收入", "797.2億元", "metric_value"), ("797.2億元", "全年", "value_period"),
                      ("物業銷售溢利", "82.9億元", "metric_value"), ("82.9億元", "年內", "value_period"),
                      ("土地儲備", "5,740萬平方呎", "metric_value"), ("5,740萬平方呎", "截至6月30日", "value_period")],
                     "2025-09-04")
    periods = {f.value.text: f.period.normalized for f in build_facts(doc)}
    assert periods == {"797.2億元": "2025FY", "82.9億元": "2025FY", "5,740萬平方呎": "2025-06-30"}


@pytest.mark.parametrize("sentence, date, report", [
    ("新世界发展公布,截至6月底止,全年股东应占亏损逾163亿港元", "2025-10-03", "2025FY"),      # stage 13
    ("公布截至6月底全年業績", "2025-06-20", "2024FY"),      # before the year ended: the one before
    ("截至2024年3月31日止年度業績", None, "2024FY"),
    ("截至2024年12月31日止年度業績", "2025-03-20", None),   # the calendar year: no fiscal year
    ("截至6月底，集團的淨負債比率為58.1%", "2025-10-03", None),  # a balance's date, no year named
])
def test_a_fiscal_year_report_is_named_by_the_year_it_ends_in(sentence, date, report):
    from caibao.facts import _fiscal_year_ended, _fiscal_year_report

    assert _fiscal_year_report(_fiscal_year_ended(sentence), date) == report


def test_a_taiwan_monthly_report_tells_the_single_month_from_the_year_so_far():
    # 玉山金 (a fresh page of stage 6, 2026-03): 2月單月 is February; 累計 after it sums January and
    # February, a run of months the format cannot say; 全年 after 12月單月 is the year (元大金, stage 9)
    doc = marked_doc("⟦玉山金|ORG⟧⟦2月單月|PERIOD⟧⟦稅後純益|METRIC⟧⟦30.2億元|VALUE⟧，累計⟦稅後盈餘|METRIC⟧⟦70.4億元|VALUE⟧。"
                     "⟦元大金|ORG⟧⟦去年12月單月|PERIOD⟧⟦稅後純益|METRIC⟧⟦31.8億元|VALUE⟧，全年稅後純益365.2億元，"
                     "⟦每股稅後盈餘|METRIC⟧⟦2.74元|VALUE⟧。",
                     [("玉山金", "稅後純益", "org_metric"), ("稅後純益", "30.2億元", "metric_value"),
                      ("30.2億元", "2月單月", "value_period"), ("稅後盈餘", "70.4億元", "metric_value"),
                      ("70.4億元", "2月單月", "value_period"), ("元大金", "稅後純益#2", "org_metric"),
                      ("稅後純益#2", "31.8億元", "metric_value"), ("31.8億元", "去年12月單月", "value_period"),
                      ("每股稅後盈餘", "2.74元", "metric_value"), ("2.74元", "去年12月單月", "value_period")],
                     "2026-03-10")
    periods = {f.value.text: f.period.normalized if f.period else None for f in build_facts(doc)}
    assert periods == {"30.2億元": "2026-02", "70.4億元": None, "31.8億元": "2025-12", "2.74元": "2025FY"}


@pytest.mark.parametrize("marked, relations, source, units", [
    # 太古 on hk01 (stage 15): a stock code followed by its share class, 按年 twice, a bare 億元
    ("⟦太古|ORG⟧（0019 A股，0087 B股）公布中期業績，⟦股東應佔溢利|METRIC⟧⟦8.15億元|VALUE⟧，按年跌79%，基本溢利按年跌2%。",
     [("股東應佔溢利", "8.15億元", "metric_value")], None, ["HKD"]),
    # 創興銀行 on hk01 (stage 15): no stock code, a Hong Kong outlet's address
    ("⟦創興銀行|ORG⟧公佈中期業績,⟦屬股本擁有人溢利|METRIC⟧⟦12.39億元|VALUE⟧,按年增62.26%。淨利息收入按年增30.5%。",
     [("屬股本擁有人溢利", "12.39億元", "metric_value")], "https://www.hk01.com/財經快訊/945936/", ["HKD"]),
    # 香港保監局 (stage 15): a bare $ in a Hong Kong article is Hong Kong dollars
    ("香港保險業按年升6.9%,按年跌15.8%。一般保險業務的⟦毛保費|METRIC⟧為⟦$405億|VALUE⟧。",
     [("毛保費", "$405億", "metric_value")], "https://hkinsu.com/support/finance/14078.html/zh-tw", ["HKD"]),
    # 台中银 on chinatimes' simplified page (stage 15): Taiwan dollars
    ("⟦台中银|ORG⟧第三季⟦税后净利|METRIC⟧⟦12.9亿元|VALUE⟧,季增达12.6%、年增达17.73%。",
     [("税后净利", "12.9亿元", "metric_value")], "https://www.chinatimes.com/cn/realtimenews/20211122003066-260410",
     ["TWD"]),
    # the insurance regulator's own release (stage 16): a .hk address makes its bare $ Hong Kong dollars
    ("保险业监管局公布2023年上半年香港保险业的临时统计数字,期内⟦毛保费总额|METRIC⟧达到⟦$2,957亿|VALUE⟧。",
     [("毛保费总额", "$2,957亿", "metric_value")], "https://www.ia.org.hk//sc_chi/infocenter/press_releases/20230831.html",
     ["HKD"]),
    # 工商時報 on 台產 (stage 16): a .tw address and 稅後純益
    ("⟦台產|ORG⟧前三季⟦稅後純益|METRIC⟧⟦6.22億元|VALUE⟧,每股稅後純益1.72元。",
     [("稅後純益", "6.22億元", "metric_value")], "https://readers.ctee.com.tw/cm/20221108/a11aa11/1212978/share", ["TWD"]),
    # 壽險公會's statistics (stage 17): a Republic-calendar date is Taiwan's
    ("依據壽險公會統計資料顯示:民國 114 年 1~8 月壽險業⟦總保費收入|METRIC⟧達⟦1,558,747 百萬元|VALUE⟧。",
     [("總保費收入", "1,558,747 百萬元", "metric_value")], None, ["TWD"]),
    # 六大壽險 (bg3.co, stage 18): Taiwan's stock market and its 億
    ("8月臺股及美股都是上漲,⟦國壽|ORG⟧1到8月⟦稅後獲利|METRIC⟧則達⟦944.9億元|VALUE⟧。",
     [("稅後獲利", "944.9億元", "metric_value")], "https://bg3.co/a/qian-ba-yue-da-3191yi.html", ["TWD"]),
])
def test_hong_kong_and_taiwan_outlets_style_their_currency(marked, relations, source, units):
    doc = marked_doc(marked, relations, source=source)
    assert [f.value.unit for f in build_facts(doc)] == units


def test_the_publisher_of_an_industrys_figures_owns_none_of_them():
    """壽險公會 (自由時報, stage 15): the model linked the association to the industry's premiums."""
    doc = marked_doc("⟦壽險公會|ORG⟧公布2026年1月壽險業⟦保費收入|METRIC⟧為⟦3134.91億元|VALUE⟧。",
                     [("壽險公會", "保費收入", "org_metric"), ("保費收入", "3134.91億元", "metric_value")], "2026-02-20")
    assert [f.org for f in build_facts(doc)] == [None]


def test_an_undated_year_is_not_moved_when_a_later_sentence_restates_its_figures():
    """香港保監局's 今年首三季 (stage 15, undated): 在2018年首三季 repeats 405億, so 今年 is 2018, not 2019;
    without a repeated figure the later explicit year still moves it (the fifth round's rule)."""
    relations = [("毛保費", "405億元", "metric_value"), ("405億元", "今年首三季", "value_period")]
    restated = marked_doc("⟦今年首三季|PERIOD⟧一般保險業務的⟦毛保費|METRIC⟧增加7.1%至⟦405億元|VALUE⟧。"
                          "在⟦2018年首三季|PERIOD⟧,一般保險業務的毛保費為$405億。", relations)
    assert [f.period.normalized for f in build_facts(restated)] == ["2018Q1-Q3"]
    moved = marked_doc("⟦今年首三季|PERIOD⟧一般保險業務的⟦毛保費|METRIC⟧增加7.1%至⟦405億元|VALUE⟧。"
                       "在⟦2018年首三季|PERIOD⟧,一般保險業務的毛保費為$380億。", relations)
    assert [f.period.normalized for f in build_facts(moved)] == ["2019Q1-Q3"]


def test_a_traditional_from_value_is_the_year_ago_one():
    """心動公司 (itiger, stage 15): 毛利率從67.4%提升至73.1% in a half-year release, written 從, not 从."""
    doc = marked_doc("⟦心動公司|ORG⟧⟦2025年上半年|PERIOD⟧⟦收益|METRIC⟧⟦30.2億元|VALUE⟧。⟦毛利率|METRIC⟧從⟦67.4%|VALUE⟧提升至"
                     "⟦73.1%|VALUE⟧。",
                     [("心動公司", "收益", "org_metric"), ("收益", "30.2億元", "metric_value"),
                      ("30.2億元", "2025年上半年", "value_period"), ("毛利率", "67.4%", "metric_value"),
                      ("毛利率", "73.1%", "metric_value")])
    periods = {k: p for k, (_, p) in facts_by_value(doc).items()}
    assert periods == {"30.2億元": "2025H1", "67.4%": "2024H1", "73.1%": "2025H1"}


def test_a_results_table_reads_its_change_column_and_the_units_under_its_header():
    """高阳科技's annual results (金投网, stage 17): 二零一六年 二零一五年 变动 over 千港元 千港元 +/(-); a change
    column's figure is the latest year's; 每股港元 under a later header is the per-share block's unit. The
    untitled announcement's subject is the company introduced with its stock code, not its note in brackets."""
    doc = marked_doc("截至二零一六年十二月三十一日止年度之業績公佈\n⟦高阳科技(中国)有限公司|ORG⟧* (於⟦百慕达注册成立之有限公司|ORG⟧) "
                     "(股份代号:818)\n二零一六年 二零一五年 变动\n千港元 千港元 +/(-)\n⟦收入|METRIC⟧ ⟦1,921,237|VALUE⟧ "
                     "⟦1,376,846|VALUE⟧ ⟦+40%|VALUE⟧\n每股港元 每股港元 变动 +/(-)\n⟦基本每股盈利|METRIC⟧ ⟦0.102|VALUE⟧ "
                     "⟦0.066|VALUE⟧ ⟦+55%|VALUE⟧",
                     [("收入", "1,921,237", "metric_value"), ("收入", "1,376,846", "metric_value"),
                      ("收入", "+40%", "metric_change"), ("基本每股盈利", "0.102", "metric_value"),
                      ("基本每股盈利", "0.066", "metric_value"), ("基本每股盈利", "+55%", "metric_change")],
                     source="https://hkstock.cngold.org/gsgg/c13426.htm")
    got = {f.value.text: (f.org.text if f.org else None, f.value.number, f.value.unit, f.period.normalized)
           for f in build_facts(doc)}
    owner = "高阳科技(中国)有限公司"
    assert got == {"1,921,237": (owner, 1_921_237_000, "HKD", "2016FY"), "1,376,846": (owner, 1_376_846_000, "HKD", "2015FY"),
                   "+40%": (owner, 40.0, "%", "2016FY"), "0.102": (owner, 0.102, "HKD", "2016FY"),
                   "0.066": (owner, 0.066, "HKD", "2015FY"), "+55%": (owner, 55.0, "%", "2016FY")}


def test_a_currency_style_written_as_one_list_is_refused_on_load():
    """currency_styles holds groups of patterns (any group whose patterns all match); the older one-list
    form would be read character by character, so loading names the key instead."""
    from caibao.facts import _currency_styles

    styles = _currency_styles({"HKD": [["按年", "港幣"], ["\\.hk/"]]})
    assert [[p.pattern for p in group] for group in styles["HKD"]] == [["按年", "港幣"], ["\\.hk/"]]
    with pytest.raises(ValueError, match="currency_styles.HKD"):
        _currency_styles({"HKD": ["按年", "港幣"]})


@pytest.mark.parametrize("marked, relations, source, expected", [
    pytest.param(  # hk.finance.yahoo.com, undated: 億元 beside Hong Kong's insurance regulator are HKD; 今年首季
        # is the 2017年首季 the first sentence names untagged, not the year after the later sentence naming it
        "港保險業首季毛保費共1,220億元\n⟦保險業監理處|ORG⟧今日公布2017年首季香港保險業臨時統計數字。香港保險業在"
        "⟦今年首季|PERIOD⟧的⟦毛保費總額|METRIC⟧為⟦1,220億元|VALUE⟧。⟦2017年首季|PERIOD⟧長期業務的⟦新造保單保費|METRIC⟧"
        "上升13.4%至⟦438億元|VALUE⟧。",
        [("毛保費總額", "1,220億元", "metric_value"), ("1,220億元", "今年首季", "value_period"),
         ("新造保單保費", "438億元", "metric_value"), ("438億元", "2017年首季", "value_period")],
        "https://hk.finance.yahoo.com/news/abc-074000354.html",
        {"1,220億元": (None, "2017Q1", "HKD", 1.22e11), "438億元": (None, "2017Q1", "HKD", 4.38e10)},
        id="hong-kong-regulator-release"),
    pytest.param(  # a Hong Kong-listed lender's results: 所有金额均以人民币元(「人民币元」)为单位
        "⟦泉州汇鑫小额贷款股份有限公司|ORG⟧ (股份代号:1577) 2016年年度业绩公告\n损益及其他综合收益表\n"
        "(除另有说明外,所有金额均以人民币元(「人民币元」)为单位)\n⟦2016年|PERIOD⟧ ⟦2015年|PERIOD⟧\n"
        "⟦利息收入|METRIC⟧ ⟦143,693,086|VALUE⟧ ⟦135,881,740|VALUE⟧\n",
        [("泉州汇鑫小额贷款股份有限公司", "利息收入", "org_metric"), ("利息收入", "143,693,086", "metric_value"),
         ("利息收入", "135,881,740", "metric_value")],
        None,
        {"143,693,086": ("泉州汇鑫小额贷款股份有限公司", "2016FY", "CNY", 143693086.0),
         "135,881,740": ("泉州汇鑫小额贷款股份有限公司", "2015FY", "CNY", 135881740.0)},
        id="table-declared-in-yuan"),
    pytest.param(  # the energy bureau publishes national totals (no owner); 5月份 is a month of the address's
        # year; 分產業看 after 1~5月 breaks the run down, so its figures stay null too
        "6月14日,⟦國家能源局|ORG⟧發布5月份全社會用電量等數據。\n⟦5月份|PERIOD⟧,⟦全社會用電量|METRIC⟧⟦7222億千瓦時|VALUE⟧。\n"
        "⟦1~5月|PERIOD⟧,⟦全社會用電量|METRIC⟧累計⟦35325億千瓦時|VALUE⟧。分產業看,⟦第一產業用電量|METRIC⟧⟦456億千瓦時|VALUE⟧。",
        [("全社會用電量", "7222億千瓦時", "metric_value"), ("7222億千瓦時", "5月份", "value_period"),
         ("全社會用電量#2", "35325億千瓦時", "metric_value"), ("35325億千瓦時", "1~5月", "value_period"),
         ("第一產業用電量", "456億千瓦時", "metric_value")],
        "http://kingsuperfood.com/news/detail-20230616-2680480.html",
        {"7222億千瓦時": (None, "2023-05", "千瓦時", 7.222e11), "35325億千瓦時": (None, None, "千瓦時", 3.5325e12),
         "456億千瓦時": (None, None, "千瓦時", 4.56e10)},
        id="energy-bureau-run-of-months"),
    pytest.param(  # stage 21 (六福集團, a year to March): the header names two years, the units line a change
        # column too; a base in brackets (2021年:…) is the fiscal year ending at the same day a year before
        "⟦六福集團|ORG⟧(00590.HK)公布 截至2022年3月31日止年度全年業績公告\n截至3月31日止年度\n"
        "⟦2022|PERIOD⟧ ⟦2021|PERIOD⟧\n千港元 千港元 按年變化\n⟦收入|METRIC⟧ ⟦11,737,803|VALUE⟧ ⟦8,861,335|VALUE⟧ ⟦+32.5%|VALUE⟧\n"
        "本集團於回顧年度的⟦經營溢利|METRIC⟧增加32.1%至⟦1,643,224,000港元|VALUE⟧(⟦2021年|PERIOD⟧:⟦1,244,113,000港元|VALUE⟧)。",
        [("六福集團", "收入", "org_metric"), ("收入", "11,737,803", "metric_value"), ("收入", "8,861,335", "metric_value"),
         ("收入", "+32.5%", "metric_change"), ("六福集團", "經營溢利", "org_metric"),
         ("經營溢利", "1,643,224,000港元", "metric_value"), ("經營溢利", "1,244,113,000港元", "metric_value"),
         ("1,244,113,000港元", "2021年", "value_period")],
        None,
        {"11,737,803": ("六福集團", "2022FY", "HKD", 1.1737803e10), "8,861,335": ("六福集團", "2021FY", "HKD", 8.861335e9),
         "+32.5%": ("六福集團", "2022FY", "%", 32.5), "1,643,224,000港元": ("六福集團", "2022FY", "HKD", 1.643224e9),
         "1,244,113,000港元": ("六福集團", "2021FY", "HKD", 1.244113e9)},
        id="hong-kong-results-table-with-a-change-column"),
    pytest.param(  # stage 21 (a broker note, its first line taken as the title): the company that disclosed its
        # report is the article's, however often its fund subsidiary is named after
        "事件:10/30,⟦兴业证券|ORG⟧披露三季度报,业绩略低于预期。⟦9M24|PERIOD⟧ 公司实现⟦营收|METRIC⟧⟦88.1 亿元|VALUE⟧。\n"
        "⟦兴证全球基金|ORG⟧坚持以主动管理为核心。⟦兴证全球基金|ORG⟧⟦管理费收入|METRIC⟧⟦16.2 亿元|VALUE⟧,"
        "⟦兴证全球基金|ORG⟧⟦权益基金规模|METRIC⟧⟦1428.4 亿元|VALUE⟧。",
        [("营收", "88.1 亿元", "metric_value"), ("88.1 亿元", "9M24", "value_period"),
         ("兴证全球基金#2", "管理费收入", "org_metric"), ("管理费收入", "16.2 亿元", "metric_value"),
         ("兴证全球基金#3", "权益基金规模", "org_metric"), ("权益基金规模", "1428.4 亿元", "metric_value")],
        None,
        {"88.1 亿元": ("兴业证券", "2024Q1-Q3", "CNY", 8.81e9), "16.2 亿元": ("兴证全球基金", "2024Q1-Q3", "CNY", 1.62e9),
         "1428.4 亿元": ("兴证全球基金", "2024-09-30", "CNY", 1.4284e11)},
        id="the-company-disclosing-its-report"),
    pytest.param(  # stage 22: the day of the disclosure between the name and its verb; a publisher that
        # 強調 (stresses) a class's figures owns none of them
        "事件:⟦电魂网络|ORG⟧8月31日发布22年半年报。⟦22H1|PERIOD⟧公司实现⟦营收|METRIC⟧⟦4.33亿元|VALUE⟧。\n"
        "⟦电魂互动|ORG⟧上线新游戏。⟦电魂互动|ORG⟧⟦研发费用|METRIC⟧⟦0.98亿元|VALUE⟧,⟦电魂互动|ORG⟧⟦销售费用|METRIC⟧⟦0.63亿元|VALUE⟧。\n"
        "不過,⟦證交所|ORG⟧強調,本國上市公司上半年⟦營收|METRIC⟧⟦13.35兆元|VALUE⟧。",
        [("营收", "4.33亿元", "metric_value"), ("4.33亿元", "22H1", "value_period"),
         ("电魂互动#2", "研发费用", "org_metric"), ("研发费用", "0.98亿元", "metric_value"),
         ("电魂互动#3", "销售费用", "org_metric"), ("销售费用", "0.63亿元", "metric_value"),
         ("證交所", "營收", "org_metric"), ("營收", "13.35兆元", "metric_value")],
        None,
        {"4.33亿元": ("电魂网络", "2022H1", "CNY", 4.33e8), "0.98亿元": ("电魂互动", "2022H1", "CNY", 9.8e7),
         "0.63亿元": ("电魂互动", "2022H1", "CNY", 6.3e7), "13.35兆元": (None, "2022H1", "CNY", 1.335e13)},
        id="a-dated-disclosure-and-a-publisher-stressing"),
])
def test_fresh_pages_of_stages_20_to_22(marked, relations, source, expected):
    """Fresh pages of stages 20-22: org, period, unit and number as the checks have them."""
    facts = build_facts(marked_doc(marked, relations, source=source))
    assert {f.value.text: (f.org.text if f.org else None, f.period.normalized if f.period else None, f.value.unit,
                           f.value.number) for f in facts} == expected
