"""The fact store and `caibao facts`, on real gold articles that report the same figures.

The facts come from the fact builder over the gold spans of six train documents (no model): the
store path from `caibao extract --format store` on is the one users run.

* 奇富科技's 2022 revenue, 165.54亿元, in seed-002-0000 (奇富科技（原名“360数科”…）) and seed-002-0011
  (360数科-S(03660.HK)): two names, one organisation, one figure;
* 兴业消费金融's 2022H1 revenue, 47.64億元, in web-01-15 (Traditional script) and web-14-02;
* a real conflict: 蚂蚁集团's 2017 net profit is 69.5亿元 in web-07-02 (the attributable figure, called
  净利润) and 82.05亿元 in web-11-06 (which gives 69.51亿元 as 归属于母公司股东的净利润).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from caibao.annotations import read_gold
from caibao.cli import app
from caibao.extract import run_batch
from caibao.facts import build_facts
from caibao.store import FACTS_FILE, ORGANISATIONS_FILE, read_store

ROOT = Path(__file__).resolve().parents[1]
DOC_IDS = ["seed-002-0000", "seed-002-0011", "web-07-02", "web-11-06", "web-01-15", "web-14-02"]


@pytest.fixture(scope="module")
def gold_docs():
    docs = {d.id: d for p in sorted((ROOT / "annotations" / "gold").glob("*.jsonl")) for d in read_gold(p)
            if d.id in DOC_IDS}
    assert sorted(docs) == sorted(DOC_IDS)
    return docs


class GoldExtractor:
    """Stands in for the model: the facts the fact builder makes of each document's gold spans."""

    def __init__(self, docs):
        self.docs = docs

    def extract_or_errors(self, docs, batch_size=16):
        return [build_facts(self.docs[d.id]) for d in docs]


@pytest.fixture(scope="module")
def inputs(gold_docs, tmp_path_factory):
    path = tmp_path_factory.mktemp("inputs") / "docs.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for doc_id in DOC_IDS:
            d = gold_docs[doc_id]
            meta = {k: d.meta.get(k) for k in ("source", "date", "title")}
            fh.write(json.dumps({"id": d.id, "text": d.text, "meta": meta}, ensure_ascii=False) + "\n")
    return path


@pytest.fixture(scope="module")
def store(gold_docs, inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "facts.store"
    report = run_batch([str(inputs)], out, extractor=GoldExtractor(gold_docs), fmt="store", progress=False)
    assert report.exit_code == 0 and report.documents == len(DOC_IDS)
    return out


def facts(*args: str):
    return CliRunner().invoke(app, ["facts", *map(str, args)])


def test_the_store_is_a_folder_of_parquet_files_with_provenance(store, gold_docs):
    assert (store / FACTS_FILE).is_file() and (store / ORGANISATIONS_FILE).is_file()
    assert store.with_name(store.name + ".facts.jsonl").is_file()  # kept for --resume
    rows, orgs = read_store(store)
    assert len(rows) == sum(len(build_facts(gold_docs[i])) for i in DOC_IDS)
    row = next(r for r in rows if r["doc_id"] == "web-01-15" and r["value_text"] == "47.64億元")
    assert (row["org_id"], row["metric_key"], row["period"], row["date"]) == (
        "cib-consumer-finance", "revenue", "2022H1", "2022-09-01")
    assert row["source"].startswith("http://qjsbw.com.cn/")
    assert gold_docs["web-01-15"].text[row["value_start"] : row["value_end"]] == "47.64億元"
    qifu = next(o for o in orgs if o["org_id"] == "qifu-technology")
    assert {"奇富科技", "360数科", "360数科-S"} <= set(qifu["names"])
    assert any(s["alias"] == "NASDAQ:QFIN" and s["doc_id"] == "seed-002-0000" for s in json.loads(qifu["statements"]))


def test_two_names_of_one_organisation_report_one_figure(store):
    result = facts(store, "--org", "360数科", "--metric", "revenue", "--period", "2022FY")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if "165.54亿元" in x)
    assert line.startswith("奇富科技 [qifu-technology]  revenue  2022FY  level  CNY")
    assert line.endswith("2 articles: seed-002-0000, seed-002-0011")


@pytest.mark.parametrize("org", ["奇富科技", "qifu-technology", "NASDAQ:QFIN", "QFIN", "3660.HK", "360数科-S",
                                 "奇富科技股份有限公司"])
def test_any_name_or_ticker_finds_the_organisation(store, org):
    result = facts(store, "--org", org, "--metric", "revenue", "--period", "2022FY", "--min-articles", "2")
    assert result.exit_code == 0, result.output
    assert "165.54亿元" in result.stdout


def test_traditional_and_simplified_articles_report_one_figure(store):
    result = facts(store, "--org", "興業消金", "--metric", "营收", "--period", "2022H1", "--json")
    assert result.exit_code == 0, result.output
    [figure] = [json.loads(x) for x in result.stdout.splitlines() if json.loads(x)["kind"] == "level"]
    assert figure["org_id"] == "cib-consumer-finance" and figure["number"] == pytest.approx(4.764e9)
    assert sorted(s["doc_id"] for s in figure["sources"]) == ["web-01-15", "web-14-02"]


def test_a_real_conflict_is_listed_with_both_sources(store):
    result = facts(store, "--org", "蚂蚁集团", "--metric", "net_profit", "--period", "2017", "--conflicts")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "conflict: 蚂蚁集团 [ant-group]  net_profit  2017FY  level  CNY"
    assert lines[1].startswith("  69.5亿元 = 6.95e+09  web-07-02@532 (https://tech.123.com.cn/")
    assert lines[2].startswith("  82.05亿元 = 8.205e+09  web-11-06@260 (https://haomeiwen.com/")
    # web-11-06's attributable figure agrees with web-07-02's "净利润" but is another key: not merged
    attributable = facts(store, "--org", "蚂蚁集团", "--metric", "net_profit[attributable]", "--period", "2017FY")
    assert "69.51亿元" in attributable.stdout and "web-07-02" not in attributable.stdout


def test_the_same_figure_in_the_same_articles_is_no_conflict(store):
    result = facts(store, "--org", "蚂蚁集团", "--metric", "revenue", "--conflicts")
    assert result.exit_code == 1  # four revenues, each the same in both articles
    grouped = facts(store, "--org", "蚂蚁集团", "--metric", "revenue", "--min-articles", "2")
    assert len(grouped.stdout.splitlines()) == 4


def test_approximate_values_make_no_conflict(store):
    # 招聯消費金融's 2022H1 net profit, 19.37億元 in two articles, beside bounds the builder gives it from
    # web-01-15 (凈利潤超過…億元): a bound is no second figure (the rule: tests/test_agreement.py). The
    # title's 兩家消金機構凈利超10億元 is two companies' (an aggregate subject), not 招聯's alone.
    args = ["--org", "招联消费金融", "--metric", "net_profit", "--period", "2022H1", "--conflicts", "--within-article"]
    assert facts(store, *args).exit_code == 1
    grouped = facts(store, "--org", "招联消费金融", "--metric", "net_profit", "--period", "2022H1").stdout
    assert "19.37億元 = 1.937e+09  2 articles: web-01-15, web-14-02" in grouped


def test_within_article_conflicts_only_when_asked(store):
    between = facts(store, "--org", "招联消费金融", "--conflicts").stdout
    within = facts(store, "--org", "招联消费金融", "--conflicts", "--within-article").stdout
    assert len(within.splitlines()) >= len(between.splitlines())


def test_nothing_matching_exits_1(store):
    assert facts(store, "--org", "没有这家公司").exit_code == 1
    assert facts(store, "--org", "奇富科技", "--period", "1999").exit_code == 1


def test_a_folder_that_is_not_a_store_is_one_error_line(tmp_path):
    result = facts(tmp_path)
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:") and "not a fact store" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert facts(tmp_path / "missing").exit_code == 2


def test_extract_format_store_from_the_command_line(gold_docs, inputs, tmp_path, monkeypatch):
    from caibao import extract

    monkeypatch.setattr(extract.Extractor, "load", classmethod(lambda cls, *a, **k: GoldExtractor(gold_docs)))
    registry = tmp_path / "mine.yaml"
    registry.write_text("organisations:\n  - id: zhaolian\n    name: 招联\n    aliases: [招联消费金融, 招联金融]\n"
                        "    source: my notes\n", encoding="utf-8")
    # the bundled entry for 招联 is replaced only if it has the same id; here a name clash is an error
    out = tmp_path / "store"
    result = CliRunner().invoke(app, ["extract", str(inputs), "--out", str(out), "--format", "store",
                                      "--registry", str(registry), "--no-progress"])
    assert result.exit_code == 2 and "already belongs to zhaolian-consumer-finance" in result.output
    assert not out.exists()  # refused before the run
    registry.write_text("organisations:\n  - id: zhaolian-consumer-finance\n    name: 招联金融\n"
                        "    aliases: [招联消费金融]\n    source: my notes\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["extract", str(inputs), "--out", str(out), "--format", "store",
                                      "--registry", str(registry), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows, _ = read_store(out)
    assert {r["org_name"] for r in rows if r["org_id"] == "zhaolian-consumer-finance"} == {"招联金融"}
    # --resume of a finished run gives the same store
    before = sorted(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows)
    result = CliRunner().invoke(app, ["extract", str(inputs), "--out", str(out), "--format", "store",
                                      "--registry", str(registry), "--resume", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert sorted(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in read_store(out)[0]) == before


@pytest.mark.parametrize("args, message", [
    (["--format", "store", "--engine", "ray"], "--format store runs with --engine local only"),
    (["--registry", "x.yaml"], "--registry is for --format store"),
    (["--format", "sqlite"], "unknown --format 'sqlite'"),
])
def test_extract_store_usage_errors(inputs, tmp_path, args, message):
    result = CliRunner().invoke(app, ["extract", str(inputs), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2 and message in result.output


def test_a_failed_store_write_leaves_the_old_store(store, tmp_path, monkeypatch):
    import shutil

    from caibao import store as store_module

    copy = tmp_path / "copy.store"
    shutil.copytree(store, copy)
    before = (copy / FACTS_FILE).read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("pyarrow.parquet.write_table", broken)
    with pytest.raises(OSError):
        store_module.write_store(copy, [], [])
    assert (copy / FACTS_FILE).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.store"]  # no temporary folder left


def test_every_format_is_a_registered_writer():
    from caibao.outputs import WRITERS, registered_writer

    assert set(WRITERS) == {"jsonl", "csv", "parquet", "store"}
    assert all(registered_writer(name).name == name for name in WRITERS)
    assert registered_writer("store").engines == ("local",)  # aliases are learned over the whole run
    with pytest.raises(ValueError, match="unknown format 'sqlite'"):
        registered_writer("sqlite")
