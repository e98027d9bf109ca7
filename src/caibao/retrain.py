"""The review loop's retraining chain as one call (`caibao retrain`, and serve-ml's webhook).

pull the finished reviews (optional) -> train the full model -> write the
distillation transfer set (only when the distilled config names one) -> train
the distilled model from the *new* full run -> score both on the test split and
the held-out organisations (end to end against the hand-checked facts when
there are some), next to the scores recorded for the bundled models -> with
``bundle``, install both as the bundled models (:mod:`caibao.bundle`).

Each step's failure is a :class:`RetrainError` naming the step. Nothing is
installed unless every step succeeded: the new bundles are built and scored
beside the old ones and swapped in together at the very end. The scores are
those of the models as they are bundled (int8 weights), so they compare with
the recorded ones.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from caibao import journal
from caibao.config import ExperimentConfig, load_config
from caibao.gold import write_transfer_set
from caibao.io import InputError, atomic_dir
from caibao.persistence import bundled_model_path

log = logging.getLogger(__name__)

# The bundled models the chain retrains (caibao.persistence.BUNDLED_MODELS), in training order.
FULL, DISTILLED = "full", "distilled"
# Where `caibao ingest` reads the raw corpus (README): the transfer set's source.
CORPUS_DIR = Path("data/corpus")
# The hand-checked facts live beside the gold folder (annotations/gold, annotations/facts).
FACTS_BESIDE_GOLD = "facts"
# The splits scored, and the F1 columns of the table (micro F1 of caibao.evaluate).
SCORED_SPLITS = ("test", "heldout")
SCORE_COLUMNS = ("entity", "relation", "fact", "end to end")


class RetrainError(RuntimeError):
    """One step of the chain failed: ``step: reason`` (one line; further lines in ``details``)."""

    def __init__(self, step: str, reason: str):
        first, *rest = str(reason).strip().splitlines() or [""]
        super().__init__(f"{step}: {first}")
        self.step, self.details = step, rest


@dataclass
class ScoreRow:
    """One model on one split: the new model's F1s and those recorded for the bundled one (None: none)."""

    model: str
    split: str
    new: dict[str, float | None]
    bundled: dict[str, float | None] | None


@dataclass
class RetrainReport:
    pull: object | None = None  # the caibao.review.PullReport of the pull, if there was one
    runs: dict[str, Path] = field(default_factory=dict)  # model -> its trained run (the config's output_dir)
    rows: list[ScoreRow] = field(default_factory=list)
    installed: dict[str, Path] = field(default_factory=dict)  # model -> bundled folder (with bundle=True)
    seconds: float = 0.0


@contextmanager
def step(name: str) -> Iterator[None]:
    """Any failure inside becomes a :class:`RetrainError` naming the step (the traceback goes to the debug log)."""
    try:
        yield
    except RetrainError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure of a step ends as one line naming it
        log.debug("step %s failed", name, exc_info=True)
        ours = isinstance(exc, ValueError | RuntimeError) and str(exc)  # InputError, ReviewError: written for users
        raise RetrainError(name, str(exc) if ours else f"{type(exc).__name__}: {exc}") from exc


def retrain(full_config: Path | str, distilled_config: Path | str | None = None, *,
            gold: Path | str = Path("annotations/gold"), splits: Path | str = Path("annotations/splits.json"),
            facts: Path | str | None = None, pull: Callable[[], object] | None = None, bundle: bool = False,
            targets: dict[str, Path] | None = None, corpus: Path | str = CORPUS_DIR, progress: bool = True,
            say: Callable[[str], None] = print) -> RetrainReport:
    """Run the chain (module docstring); ``say`` gets one line per event.

    ``gold``/``splits`` replace the configs' ``data.gold``/``data.splits``, so the pull,
    both trainings and the scores see one gold set; ``facts``: the hand-checked facts
    (default: ``facts`` beside the gold folder, if it exists); ``pull``: called first
    (e.g. ``caibao.review.pull`` bound to a project), its report's conflicts are listed
    and the chain goes on; ``targets``: model -> bundled folder (default: the package's).
    Raises :class:`caibao.io.InputError` for a bad config, before anything runs, and
    :class:`RetrainError` for a failed step.
    """
    started = time.time()
    configs = load_configs(full_config, distilled_config, gold, splits)
    targets = targets or {name: bundled_model_path(name) for name in configs}
    facts = Path(gold).parent / FACTS_BESIDE_GOLD if facts is None else facts
    report = RetrainReport()
    # One chain at a time per full run folder: a webhook's run and a hand-started one
    # would otherwise train into the same output_dir together.
    lock = journal.named_lock("retrain:" + os.path.realpath(configs[FULL].output_dir))
    with step("wait for another retraining"):
        journal.acquire(lock, f"the retraining into {configs[FULL].output_dir}")
    try:
        if pull is not None:
            report.pull = _pull(pull, say)
        for name, cfg in configs.items():
            if cfg.distill is not None and cfg.distill.transfer:
                with step("transfer set"):
                    say("transfer set: " + write_transfer_set(cfg.distill.transfer, corpus, gold, splits))
            report.runs[name] = _train(name, cfg, progress, say)
        report.rows, report.installed = _score_and_install(report.runs, targets, (gold, splits, facts), bundle, say)
    finally:
        lock.release()
    report.seconds = round(time.time() - started, 1)
    return report


def load_configs(full_config: Path | str, distilled_config: Path | str | None, gold: Path | str,
                 splits: Path | str) -> dict[str, ExperimentConfig]:
    """Both configs on the given gold set; the distilled one's ``training.init_from`` and
    ``distill.teacher``, where they name the bundled full model, point at the new full run."""
    data = {"data.gold": str(gold), "data.splits": str(splits)}
    configs = {FULL: load_config(full_config, data)}
    if distilled_config is None:
        return configs
    new_full = configs[FULL].output_dir
    as_written = load_config(distilled_config)
    overrides = dict(data)
    if as_written.training.init_from == FULL:
        overrides["training.init_from"] = new_full
    if as_written.distill is not None and as_written.distill.teacher == FULL:
        overrides["distill.teacher"] = new_full
    configs[DISTILLED] = load_config(distilled_config, overrides)
    if Path(configs[DISTILLED].output_dir).resolve() == Path(new_full).resolve():
        raise InputError(distilled_config, f"output_dir {new_full} is the full config's too: "
                                           "the distilled run would overwrite the full one")
    return configs


def _pull(pull: Callable[[], object], say: Callable[[str], None]):
    with step("pull"):
        report = pull()
    say(f"pull: {len(report.merged_new)} new and {len(report.merged_replaced)} replaced documents merged, "
        f"{len(report.conflicts)} conflicts")
    for warning in report.warnings:
        say(f"pull: warning: {warning}")
    for conflict in report.conflicts:
        say(f"pull: conflict, not merged (the retraining goes on without it): {conflict}")
    return report


def _train(name: str, cfg: ExperimentConfig, progress: bool, say: Callable[[str], None]) -> Path:
    from caibao.train import train

    start = f", starting from {cfg.training.init_from}" if cfg.training.init_from else ""
    teacher = f", teacher {cfg.distill.teacher}" if cfg.distill is not None else ""
    say(f"train {name}: config {cfg.name} -> {cfg.output_dir}{start}{teacher}")
    with step(f"train {name}"):
        metrics = train(cfg, progress=progress)
    best = [h["epoch"] for h in metrics["history"] if h.get("best")]
    say(f"train {name}: done in {metrics['train_seconds']} s, best epoch {best[-1] if best else None}")
    return Path(cfg.output_dir)


def _score_and_install(runs: dict[str, Path], targets: dict[str, Path], data_paths: tuple, install: bool,
                       say: Callable[[str], None]) -> tuple[list[ScoreRow], dict[str, Path]]:
    """Stage each run as it would be bundled, score it, and (``install``) swap all in together at the end."""
    from caibao import bundle

    with step("evaluate"):
        data = bundle.load_eval_set(*data_paths)
        baseline = bundle.baseline_scores(data) if install else None
    rows = []
    # The atomic_dir swaps run when the block ends without an error: all bundles or none.
    with step("bundle" if install else "evaluate"), ExitStack() as stack:
        for name, run in runs.items():
            recorded = bundle.recorded_metrics(targets[name])
            folder = atomic_dir(targets[name]) if install else tempfile.TemporaryDirectory(prefix="caibao-retrain-")
            folder = Path(stack.enter_context(folder))
            say(f"evaluate {name}: {len(data.test)} test and {len(data.heldout)} held-out documents")
            with step(f"evaluate {name}"):
                started = time.time()
                bundle.stage(run, folder)
                scores = bundle.score_model(folder, data)
            if install:
                with step(f"bundle {name}"):
                    bundle.write_metrics(folder, run, scores, baseline, time.time() - started)
            rows += score_rows(name, scores, recorded)
    return rows, ({name: Path(targets[name]) for name in runs} if install else {})


def f1s(scores: dict) -> dict[str, float | None]:
    """The micro F1s of one split's scores (``caibao evaluate --json`` shape), by :data:`SCORE_COLUMNS`."""
    e2e = scores.get("end_to_end")
    return {**{k: scores[k]["micro"]["f1"] for k in ("entity", "relation", "fact")},
            "end to end": e2e["micro"]["f1"] if e2e else None}


def score_rows(model: str, scores: dict, recorded: dict | None) -> list[ScoreRow]:
    rows = []
    for split in SCORED_SPLITS:
        if scores.get(split) is None:
            continue
        old = (recorded or {}).get(split)
        rows.append(ScoreRow(model, split, f1s(scores[split]), f1s(old) if old else None))
    return rows


def format_scores(rows: list[ScoreRow]) -> str:
    """A plain-text table: per model and split, the new F1s above the bundled model's recorded ones."""
    lines = [("model", "split", "F1", *SCORE_COLUMNS)]
    for r in rows:
        for which, values in (("new", r.new), ("bundled", r.bundled)):
            cells = [f"{values[c]:.4f}" if values and values.get(c) is not None else "-" for c in SCORE_COLUMNS]
            lines.append((r.model, r.split, which, *cells))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)
