"""Organisation identity (caibao.identity): alias statements from real sentences, name keys, tickers,
the curated registry and its validation, resolution to canonical ids."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from caibao.identity import (NAME_ID_PREFIX, OrgIndex, Registry, canonical_ticker, find_tickers, learn_aliases,
                             name_key)
from caibao.io import InputError

ROOT = Path(__file__).resolve().parents[1]

# (document it comes from, sentence, expected (name, alias, relation) statements, in text order)
ALIAS_CASES = [
    ("seed-002-0000", "中国领先的知名金融科技平台——奇富科技（原名“360数科”，NASQ：QFIN；3660.HK）发布了2022年全年业绩报告。",
     [("奇富科技", "NASDAQ:QFIN", "ticker"), ("奇富科技", "3660.HK", "ticker"), ("奇富科技", "360数科", "former_name")]),
    ("seed-002-0186", "信贷科技平台奇富科技（原360数科；纳斯达克：QFIN；港交所：3660）发布2022年四季度及2022年全年未经审计财务业绩",
     [("奇富科技", "NASDAQ:QFIN", "ticker"), ("奇富科技", "3660.HK", "ticker"), ("奇富科技", "360数科", "former_name")]),
    ("seed-002-0037", "11月14日，据港交所披露，360数码科技股份有限公司（NASDAQ:QFIN，简称“360数科”）通过上市聆讯。",
     [("360数码科技股份有限公司", "NASDAQ:QFIN", "ticker"), ("360数码科技股份有限公司", "360数科", "short_name")]),
    ("seed-002-0053", "3月14日360金融（360数科曾用名）", [("360金融", "360数科", "former_name_of")]),
    ("seed-002-0079", "于2018年登陆美股市场。360数科原名为360金融，", [("360数科", "360金融", "former_name")]),
    ("seed-002-0019", "2月14日，360数科宣布公司品牌更名为奇富科技，在品牌更名的同时亦宣布公司将全面聚焦金融科技战略",
     [("360数科", "奇富科技", "renamed")]),
    ("web-02-03", "2019年9月宜人金科从“宜人贷”正式更名为“宜人金科”,但是在经过了一系列的动作之后",
     [("宜人贷", "宜人金科", "renamed")]),
    ("web-01-08", "也因此,苏宁消费金融更名为南银法巴消费金融,同时由电商系消费金融机构", [("苏宁消费金融", "南银法巴消费金融", "renamed")]),
    ("web-01-00", "曾位列消费金融行业头部梯队的招联消费金融股份有限公司(以下简称“招联金融”),交出了一份极具警示意味的年度成绩单。",
     [("招联消费金融股份有限公司", "招联金融", "short_name")]),
    ("seed-002-0048", "被执行人为汉富（北京）资本管理有限公司（简称“汉富资本”）", [("汉富（北京）资本管理有限公司", "汉富资本", "short_name")]),
    ("web-09-10", "、丰田汽车金融(中国)有限公司(下称“丰田金融”)", [("丰田汽车金融(中国)有限公司", "丰田金融", "short_name")]),
    ("web-11-06", "8月25日晚间,蚂蚁科技股份有限公司(以下简称蚂蚁集团)发布", [("蚂蚁科技股份有限公司", "蚂蚁集团", "short_name")]),
    ("web-07-06", "3月13日,平安健康医疗科技有限公司(股票简称“平安好医生”,1833.HK,以下简称“平安健康”或“公司”)公布2022年业绩",
     [("平安健康医疗科技有限公司", "1833.HK", "ticker"), ("平安健康医疗科技有限公司", "平安好医生", "short_name"),
      ("平安健康医疗科技有限公司", "平安健康", "short_name")]),
    ("web-05-05", "8月26日,中国人民保险集团股份有限公司(中国人保,601319.SH;1339.HK)发布的2022年半年报显示",
     [("中国人民保险集团股份有限公司", "601319.SH", "ticker"), ("中国人民保险集团股份有限公司", "1339.HK", "ticker"),
      ("中国人民保险集团股份有限公司", "中国人保", "short_name")]),
    ("web-07-13", "國內電商三巨頭(阿里巴巴(BABA.US/09988.HK)、京東(JD.US/09618.HK)、拼多多(PDD.US))",
     [("阿里巴巴", "US:BABA", "ticker"), ("阿里巴巴", "9988.HK", "ticker"), ("京東", "US:JD", "ticker"),
      ("京東", "9618.HK", "ticker"), ("拼多多", "US:PDD", "ticker")]),
    ("web-12-05", "11月17日,微博(NASDAQ:WB,HKEX:9898)发布的第三季度财报显示",
     [("微博", "NASDAQ:WB", "ticker"), ("微博", "9898.HK", "ticker")]),
    ("web-02-07", "$乐信(NASDAQ|LX)$ $宜人智科(NYSE|YRD)$ 不过", [("乐信", "NASDAQ:LX", "ticker"), ("宜人智科", "NYSE:YRD", "ticker")]),
    ("web-02-05", "宜人智科有限公司 (NYSE: YRD) (\"宜人智科\"或\"公司\"), 是一家领先的金融科技公司",
     [("宜人智科有限公司", "NYSE:YRD", "ticker")]),  # the short name is the name itself; 公司 says nothing
    ("seed-002-0090", "格隆汇11月14日丨360数科(QFIN.US)盘前涨逾3%，报15.02美元。", [("360数科", "US:QFIN", "ticker")]),
    ("web-05-15", "比率 13.592% | 增持 | 61元中国人保(01339.HK) -0.090 (-1.406%) 沽", [("中国人保", "1339.HK", "ticker")]),
    ("web-08-09", "沽空 $5.99億; 比率 10.580% │6.3厘工商銀行(01398.HK) -0.060", [("工商銀行", "1398.HK", "ticker")]),
    ("web-07-07", "5月15日,在香港上市的腾讯控股(07000.HK)发布其2019年一季度业绩", [("腾讯控股", "7000.HK", "ticker")]),
    ("seed-002-0014", "富瑞亦对线上娱乐行业前景变得更加乐观，将腾讯音乐(TME.US)美股目标价上调至10.4美元",
     [("腾讯音乐", "US:TME", "ticker")]),
    ("web-11-13", "中国深圳—(美通社)—中国领先的金融服务业技术即服务提供商金融壹账通科技有限公司(“一账通”或“公司”)"
                  "(纽约证券交易所代码:OCFT,香港交易所代码:6638)今天公布",
     [("金融壹账通科技有限公司", "一账通", "short_name"), ("金融壹账通科技有限公司", "NYSE:OCFT", "ticker"),
      ("金融壹账通科技有限公司", "6638.HK", "ticker")]),
    ("web-02-00", "据官网资料显示,萨摩耶金服(全称“深圳萨摩耶互联网金融服务有限公司”)成立于2015年5月",
     [("萨摩耶金服", "深圳萨摩耶互联网金融服务有限公司", "full_name")]),
    ("web-10-14", "苏农银行(603323.SH)和张家港行(002839.SZ)", [("苏农银行", "603323.SH", "ticker"), ("张家港行", "002839.SZ", "ticker")]),
    ("web-07-12", "1.连连数字(原连连支付) 交易量:2.10万亿元", [("连连数字", "连连支付", "former_name")]),
]

# Sentences that state no alias (an amount in brackets, a generic short name, a name linked to itself).
NO_ALIAS_CASES = [
    ("seed-000-0000", "业绩报告显示，全年促成借款额2138亿元(人民币，下同)，同比增长21%；"),
    ("web-09-05", "2017年4月,公司更名为五矿资本股份有限公司,转型成为以信托、租赁为主的金融控股平台"),
    ("web-13-06", "岁末年初,国信证券股份有限公司(以下简称:国信证券)公告"),
    ("web-10-01", "兰州银行股份有限公司(以下简称“兰州银行”“本行”)"),
    ("web-03-14", "资产总额(2514.20亿元)"),
    # a list of founders, not a former name
    ("web-08-07", "长安汽金前身为庆铃汽车(集团)有限公司、重庆渝富资本运营集团有限公司、重庆农村商业银行股份有限公司于2005年共同出资"),
    ("web-03-08", "它的前身是1993年在宁波成立的浙江商业银行"),
]


@pytest.mark.parametrize("doc_id, sentence, expected", ALIAS_CASES, ids=[c[0] for c in ALIAS_CASES])
def test_alias_statements_of_real_sentences(doc_id, sentence, expected):
    assert [(s.name, s.alias, s.relation) for s in learn_aliases(sentence)] == expected


@pytest.mark.parametrize("doc_id, sentence", NO_ALIAS_CASES, ids=[c[0] for c in NO_ALIAS_CASES])
def test_sentences_without_alias_statements(doc_id, sentence):
    assert learn_aliases(sentence) == []


def test_statement_offsets_point_into_the_text():
    text = "前言。" + ALIAS_CASES[0][1]
    for s in learn_aliases(text):
        assert s.name in text[s.start : s.end] or s.relation == "ticker"


@pytest.mark.parametrize("name, key", [
    ("招联消费金融股份有限公司", "招联消金"),
    ("招聯消費金融", "招联消金"),  # Traditional script
    ("招联消金", "招联消金"),
    ("北银消费金融有限公司", "北银消金"),
    ("360数科-S", "360数科"),  # Hong Kong listing marker
    ("３６０数科", "360数科"),  # full-width digits
    ("宜人智科有限公司 ", "宜人智科"),
    ("长安汽车金融有限公司", "长安汽金"),
    ("ZA Bank", "zabank"),
    ("“微众银行”", "微众银行"),
])
def test_name_keys(name, key):
    assert name_key(name) == key


@pytest.mark.parametrize("text, tickers", [
    ("NASDAQ:QFIN", ["NASDAQ:QFIN"]), ("Nasdaq: QFIN", ["NASDAQ:QFIN"]), ("纳斯达克：QFIN", ["NASDAQ:QFIN"]),
    ("NASQ：QFIN", ["NASDAQ:QFIN"]), ("QFIN.O", ["NASDAQ:QFIN"]), ("NYSE: YRD", ["NYSE:YRD"]),
    ("港交所：3660", ["3660.HK"]), ("03660.HK", ["3660.HK"]), ("03660.hk", ["3660.HK"]), ("00700.HK", ["0700.HK"]),
    ("01336-HK", ["1336.HK"]), ("601360.SH", ["601360.SH"]), ("002966.SZ", ["002966.SZ"]),
    ("HKEX:9898", ["9898.HK"]), ("股份代號:0772.HK", ["0772.HK"]),
    ("2514.20亿元", []), ("3660", []),
])
def test_tickers_as_written(text, tickers):
    assert [t for t, _, _ in find_tickers(text)] == tickers


@pytest.mark.parametrize("written, canonical", [("NASDAQ:QFIN", "NASDAQ:QFIN"), ("03660.HK", "3660.HK"),
                                                ("700.HK", "0700.HK"), ("601360.sh", "601360.SH")])
def test_registry_tickers_are_canonicalised(written, canonical):
    assert canonical_ticker(written) == canonical


def test_a_malformed_registry_ticker_is_refused():
    with pytest.raises(ValueError, match="not a ticker"):
        canonical_ticker("QFIN")


# --- the bundled registry ---------------------------------------------------------------------


def _train_dev_texts() -> str:
    splits = json.loads((ROOT / "annotations" / "splits.json").read_text("utf-8"))
    allowed = set(splits["train"]) | set(splits["dev"])
    texts = []
    for path in sorted((ROOT / "annotations" / "gold").glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            doc = json.loads(line)
            if doc["id"] in allowed:
                texts.append(doc["text"])
    return "\n".join(texts)


def test_every_registry_name_is_read_in_a_train_or_dev_document():
    """The registry is built from train/dev only: no held-out organisation can leak into it."""
    from caibao.identity import plain_text

    corpus = plain_text(_train_dev_texts())
    registry = Registry.load()
    assert len(registry.organisations) >= 30
    for org in registry.organisations.values():
        assert org.source.startswith("train "), org.id
        for name in [org.name, *org.aliases, *org.former_names]:
            assert plain_text(name) in corpus, (org.id, name)


def test_no_held_out_organisation_is_in_the_registry():
    splits = json.loads((ROOT / "annotations" / "splits.json").read_text("utf-8"))
    held_out = set(splits["heldout"])
    registry = Registry.load()
    sources = " ".join(org.source for org in registry.organisations.values())
    assert not any(doc_id in sources for doc_id in held_out)


@pytest.mark.parametrize("name, org_id", [
    ("360数科", "qifu-technology"), ("360数科-S", "qifu-technology"), ("奇富科技股份有限公司", "qifu-technology"),
    ("360金融", "qifu-technology"), ("NASDAQ:QFIN", "qifu-technology"), ("3660.HK", "qifu-technology"),
    ("招聯消費金融", "zhaolian-consumer-finance"), ("招联消金", "zhaolian-consumer-finance"),
    ("宜人贷", "yiren-digital"), ("蚂蚁金服", "ant-group"), ("Qudian", "qudian"),
])
def test_registry_finds_names_in_any_form(name, org_id):
    assert Registry.load().find(name).id == org_id


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "orgs.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_user_registry_adds_organisations(tmp_path):
    path = _write(tmp_path, "organisations:\n  - id: shuidi\n    name: 某某科技\n    aliases: [某某科技集团]\n"
                            "    tickers: [NYSE:ABCD]\n    source: my notes\n")
    registry = Registry.load([path])
    assert registry.find("某某科技集团").id == "shuidi"
    assert registry.find("NYSE:ABCD").id == "shuidi"
    assert registry.find("360数科").id == "qifu-technology"  # the bundled entries stay


def test_a_user_entry_with_a_bundled_id_replaces_it(tmp_path):
    path = _write(tmp_path, "organisations:\n  - id: lexin\n    name: 乐信集团\n    aliases: [乐信]\n    source: mine\n")
    assert Registry.load([path]).find("乐信").name == "乐信集团"


@pytest.mark.parametrize("text, message", [
    ("organisations:\n  - id: x1\n    name: 甲\n", "orgs.yaml: organisation 1 (x1): source: Field required"),
    ("organisations:\n  - id: Bad Id\n    name: 甲\n    source: s\n", "organisation 1 (Bad Id): id: String should match"),
    ("organisations:\n  - id: a\n    name: 甲\n    source: s\n    tickers: [QFIN]\n", "organisation 1 (a): tickers"),
    ("organisations:\n  - id: a\n    name: 甲\n    source: s\n    colour: red\n", "organisation 1 (a): colour: Extra"),
    ("organisations:\n  - id: a\n    name: 乐信\n    source: s\n", "organisation a: name or ticker '乐信' already belongs to lexin"),
    ("organisations: [\n", "not valid YAML"),
    ("- just a list\n", "expected a mapping with a list `organisations:`"),
])
def test_registry_errors_are_one_line_naming_file_and_entry(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        Registry.load([path])
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_missing_registry_file_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        Registry.load([tmp_path / "nope.yaml"])


# --- resolution ---------------------------------------------------------------------------------


def test_statements_lead_names_to_the_registry_and_to_each_other():
    sentences = [ALIAS_CASES[2][1], "据介绍，360数码科技股份有限公司去年营收增长。", ALIAS_CASES[9][1]]
    index = OrgIndex.build(Registry.load(), [s for t in sentences for s in learn_aliases(t)])
    assert index.resolve("360数码科技股份有限公司").id == "qifu-technology"
    learned = index.resolve("汉富资本")
    assert (learned.id, learned.how) == (NAME_ID_PREFIX + "汉富资本", "learned")  # the group's shortest name
    assert index.resolve("汉富（北京）资本管理有限公司").id == learned.id


def test_a_ticker_links_an_unknown_name_to_the_registry():
    index = OrgIndex.build(Registry.load(), learn_aliases("奇富数科（NASDAQ:QFIN）发布公告"))
    found = index.resolve("奇富数科")
    assert (found.id, found.how) == ("qifu-technology", "alias")


def test_unknown_names_keep_a_stable_id_from_their_normalised_name():
    index = OrgIndex.build(Registry.load())
    ids = {index.resolve(n).id for n in ["長銀五八消費金融有限公司", "长银五八消费金融", "长银五八消金"]}
    assert ids == {NAME_ID_PREFIX + "长银五八消金"}


def test_unknown_ids_are_the_same_in_another_process():
    code = ("from caibao.identity import OrgIndex, Registry; "
            "print(OrgIndex.build(Registry.load()).resolve('長銀五八消費金融有限公司').id)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout.strip()
    assert out == NAME_ID_PREFIX + "长银五八消金"
