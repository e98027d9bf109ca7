"""Distributed runs: the Ray engine against the local one, and DDP training on two CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from caibao.outputs import done_ids

pytestmark = pytest.mark.slow  # a local Ray, a DDP process group

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("ray.data", reason="the ray extra is not installed")


# --- inputs: real documents of every input kind, and bad ones ----------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(folder with a documents JSONL, a .txt, an .html, an empty and a non-UTF-8 file; the JSONL alone)."""
    from caibao.annotations import write_documents
    from caibao.corpus import ingest

    docs, _ = ingest([ROOT / "data" / "corpus"])
    zh = sorted((d for d in docs if d.meta["lang"] == "zh" and "duplicate_of" not in d.meta
                 and 150 < len(d.text) < 500), key=lambda d: d.id)
    english = next(d for d in docs if d.meta["lang"] != "zh")
    assert len(zh) >= 6
    folder = tmp_path_factory.mktemp("inputs")
    write_documents(zh[:4] + [english.model_copy(update={"text": english.text[:300]})], folder / "docs.jsonl")
    (folder / "note.txt").write_text(zh[4].text, "utf-8")
    (folder / "page.html").write_text("<html><body>" + "".join(f"<p>{line}</p>" for line in zh[5].text.split("\n"))
                                      + "</body></html>", "utf-8")
    (folder / "empty.txt").write_text("", "utf-8")
    (folder / "cp1252.txt").write_bytes("Résumé: revenue grew 21% to €11.4 billion.".encode("cp1252"))
    return folder


@pytest.fixture(scope="module")
def local_run(inputs, tiny_model_dir, tmp_path_factory):
    """The local engine's output on the inputs: (facts lines, error objects, done ids, report)."""
    from caibao.extract import run_batch

    out = tmp_path_factory.mktemp("local") / "facts.jsonl"
    report = run_batch([str(inputs)], out, model_path=str(tiny_model_dir), progress=False)
    return _read(out, out.with_name(out.name + ".errors.jsonl")) + (report,)


def _read(facts: Path, errors: Path):
    lines = sorted(facts.read_text("utf-8").splitlines())
    errs = sorted((json.loads(line) for line in errors.read_text("utf-8").splitlines()), key=lambda e: e["doc_id"])
    done = sorted(done_ids(facts.with_name(facts.name.removesuffix(".facts.jsonl") + ".done")))
    return lines, errs, done


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray with 2 CPUs, started as the engine starts it (loopback only, no dashboard)."""
    from caibao.distributed import start_local_ray

    ray = start_local_ray(num_cpus=2)
    yield ray
    ray.shutdown()


# --- the Ray engine ---------------------------------------------------------------------------


def test_ray_engine_gives_the_local_engines_facts_and_errors(ray_local, inputs, local_run, tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from caibao.cli import app

    assert ray_local.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    local_facts, local_errors, local_done, local_report = local_run
    assert local_facts and local_report.documents == 6
    out = tmp_path / "facts.jsonl"
    result = CliRunner().invoke(app, ["extract", str(inputs), "--out", str(out), "--model", str(tiny_model_dir),
                                      "--engine", "ray", "--num-workers", "2", "--no-progress"])
    assert result.exit_code == 1, result.output  # some documents failed (listed in the errors file)
    facts, errors, done = _read(out, out.with_name("facts.jsonl.errors.jsonl"))
    assert facts == local_facts  # the same Fact JSON lines, order aside
    assert errors == local_errors and done == local_done
    # The bad documents are reported; every other document made it.
    reasons = {Path(e["doc_id"]).name: e["error"] for e in errors}
    assert reasons["empty.txt"] == "empty document"
    assert reasons["cp1252.txt"].startswith("not valid UTF-8")
    assert any("no Chinese text" in r for r in reasons.values())
    assert len(errors) == 3 and len(done) == 6 + 3
    assert not list(tmp_path.glob("*.partial.jsonl"))


def test_ray_engine_resume_skips_done_documents_parquet_shards(ray_local, inputs, local_run, tiny_model_dir,
                                                               tmp_path):
    import pyarrow.parquet as pq

    from caibao.distributed import run_ray_batch
    from caibao.extract import FACT_COLUMNS, run_batch

    local_facts, local_errors, _, _ = local_run
    out = tmp_path / "facts.parquet"
    # A first run (the engines share the .done format) does the JSONL's documents; --resume does the rest.
    first = run_batch([str(inputs / "docs.jsonl")], out, model_path=str(tiny_model_dir), fmt="parquet",
                      progress=False)
    assert first.documents == 4 and first.errors == 1 and out.is_file()
    second = run_ray_batch([str(inputs)], out, model_path=str(tiny_model_dir), fmt="parquet", resume=True,
                           num_workers=2, progress=False)
    assert second.skipped == 5  # the JSONL's four documents and its English one
    assert second.documents == 2 and second.errors == 2
    facts, errors, done = _read(out.with_name(out.name + ".facts.jsonl"), out.with_name(out.name + ".errors.jsonl"))
    assert facts == local_facts and errors == local_errors and len(done) == 9
    assert out.is_dir() and sorted(p.name for p in out.iterdir())[0] == "part-00000.parquet"
    table = pq.read_table(out)
    assert table.column_names == FACT_COLUMNS and table.num_rows == len(local_facts)


def test_a_failing_document_becomes_an_error_row_and_spares_the_others():
    from caibao.distributed import process_documents
    from caibao.schema import Document

    from caibao.extract import Extractor

    class Flaky(Extractor):
        """The real batch/one-by-one failure handling, around a model that fails on one document."""

        def __init__(self):
            super().__init__(loaded=None)

        def extract_documents(self, docs, batch_size=16):
            if any("故障" in d.text for d in docs):
                raise RuntimeError("kaboom")
            return [[] for _ in docs]

    docs = [Document(id="a", text="乐信全年营收100亿元"), Document(id="b", text="这一篇会出故障"),
            Document(id="c", text=""), Document(id="d", text="信也科技净利润增长")]
    rows = process_documents(Flaky(), docs, batch_size=4, max_chars=1000)
    assert [r["doc_id"] for r in rows] == ["a", "b", "c", "d"]
    assert [r["error"] for r in rows] == ["", "model failure: RuntimeError: kaboom", "empty document", ""]


def test_device_view_predicts_like_the_model(inputs, tiny_model_dir):
    # The plumbing of the GPU path (encoder behind an adapter, heads copied), run on the CPU.
    from caibao.distributed import EncoderOnDevice, _view, device_view
    from caibao.extract import Extractor, read_inputs

    extractor = Extractor.load(tiny_model_dir)
    docs = [i.doc for i in read_inputs([str(inputs / "docs.jsonl")])][:2]
    expected = extractor.extract_documents(docs)
    model = extractor.loaded.model
    assert device_view(model, "cpu") is model
    view = _view(model, "cpu")
    assert isinstance(view.encoder, EncoderOnDevice) and view.encoder.inner is model.encoder
    assert view.token_head is not model.token_head and model.encoder is view.encoder.inner
    extractor.loaded.model = view
    assert extractor.extract_documents(docs) == expected


# --- DDP training -----------------------------------------------------------------------------


DDP_SCRIPT = r'''
import hashlib, json, sys
from pathlib import Path

import caibao.train as T
from accelerate import PartialState
from caibao.annotations import read_gold
from caibao.config import load_config
from caibao.persistence import trainable_state

root, encoder, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
built = {}
build_model = T.build_model

def keep(*args, **kwargs):  # the model each process trains (DDP updates it in place)
    model, tokenizer = build_model(*args, **kwargs)
    built["model"], built["initial"] = model, {k: v.clone() for k, v in trainable_state(model).items()}
    return model, tokenizer

T.build_model = keep
gold = read_gold(root / "annotations" / "gold")
docs = sorted((d for d in gold if d.entities and d.relations and 150 < len(d.text) < 320), key=lambda d: d.id)[:4]
cfg = load_config(root / "configs" / "tiny.yaml", {"output_dir": str(out / "run"), "model.max_length": 128,
                                                 "training.batch_size": 2, "training.max_steps": 4})
metrics = T.train(cfg, encoder_path=encoder, splits={"train": docs, "dev": docs[:1], "test": []}, progress=False)
state = PartialState()
final = trainable_state(built["model"])
digest = hashlib.sha256()
for name in sorted(final):
    digest.update(name.encode())
    digest.update(final[name].cpu().numpy().tobytes())
changed = any(not final[k].equal(built["initial"][k]) for k in final)
(out / f"rank-{state.process_index}.json").write_text(json.dumps(
    {"world": state.num_processes, "sha256": digest.hexdigest(), "changed": changed, "metrics": metrics}))
'''


def test_ddp_training_on_two_cpu_processes_keeps_the_replicas_equal(tiny_encoder_dir, tmp_path):
    from caibao.train import shard_order

    assert shard_order(list(range(7)), 0, 2) != shard_order(list(range(7)), 1, 2)  # each rank its own data
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT, "utf-8")
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"  # gloo on loopback
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(ROOT), str(tiny_encoder_dir), str(tmp_path)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["changed"] and ranks[0]["sha256"] == ranks[1]["sha256"]  # trained, and in sync
    assert ranks[0]["metrics"]["history"] == ranks[1]["metrics"]["history"]
    assert ranks[0]["metrics"]["processes"] == 2 and ranks[0]["metrics"]["history"][-1]["step"] == 4
    # Only the main process evaluated and wrote: one log line per epoch, a model and a checkpoint.
    run = tmp_path / "run"
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert log == ranks[0]["metrics"]["history"] and "dev" in log[0]
    assert (run / "caibao_model.safetensors").exists() and (run / "checkpoint" / "state.pt").exists()
