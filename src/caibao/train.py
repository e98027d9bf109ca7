"""Training: gold JSONL -> tokenised windows -> joint NER + relation training -> model directory.

Read top to bottom like ``run_ner.py``: load config and data, tokenise and
align labels, build relation candidates, train with a dev evaluation after
each epoch, keep the best checkpoint, write metrics and a log. ``--resume``
continues from the last finished epoch.

Under ``accelerate launch`` (or torchrun) it trains data-parallel (DDP): every
process takes its share of each epoch's shuffled windows, gradients are
averaged by DDP, and only the main process evaluates, saves and writes logs
and checkpoints. Run plainly, it is one process on the CPU as always.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from caibao.annotations import read_gold
from caibao.augment import read_gazetteer, swap_some
from caibao.config import DistillConfig, ExperimentConfig
from caibao.evaluate import score, strip_annotations
from caibao.io import InputError, atomic_write_text
from caibao.featurize import (
    Featurizer,
    candidate_pairs,
    char_to_token,
    span_tokens,
    token_tags,
    window_batch,
    windows,
)
from caibao.model import build_model, CaibaoModel, class_mask, LoadedModel, predict_documents
from caibao.persistence import resolve_model_path, save_model, trainable_state
from caibao.schema import Document

log = logging.getLogger(__name__)


# --- data ------------------------------------------------------------------------------


def load_splits(cfg: ExperimentConfig) -> dict[str, list[Document]]:
    docs = {d.id: d for d in read_gold(cfg.data.gold)}
    splits_path = Path(cfg.data.splits)
    try:
        splits = json.loads(splits_path.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(splits_path, "no splits file (run `caibao split`)") from None
    out = {}
    for name in (cfg.data.train_split, cfg.data.dev_split, cfg.data.test_split):
        ids = splits.get(name, [])
        missing = [i for i in ids if i not in docs]
        if missing:
            raise InputError(splits_path, f"split {name!r} names documents not in {cfg.data.gold}: {missing[:3]}")
        out[name] = [docs[i] for i in ids]
    if cfg.data.max_train_documents:
        out[cfg.data.train_split] = out[cfg.data.train_split][: cfg.data.max_train_documents]
    return out


@dataclass
class WindowExample:
    ids: list[int]
    tags: list[int]
    pairs: list[list[int]]  # pair_rows without the batch index filled in
    pair_labels: list[int]
    pair_classes: list[list[int]]


def build_examples(docs: list[Document], tokenizer, cfg: ExperimentConfig) -> list[WindowExample]:
    """Windows of every document, with token tags and relation candidates inside the window."""
    featurizer = Featurizer.of(tokenizer, cfg)
    examples = []
    for doc in docs:
        enc, wins = featurizer.encode(doc.text)
        if not enc.ids:
            continue
        tags = token_tags(doc, enc, featurizer.labels)
        c2t = char_to_token(enc, len(doc.text))
        ent_tok = [span_tokens(c2t, e.start, e.end) for e in doc.entities]
        gold_rel = {(r.head, r.tail): featurizer.labels.rel2id[r.label] for r in doc.relations}
        per_window = [WindowExample(enc.ids[s:e], tags[s:e], [], [], []) for s, e in wins]
        for w, c, row in featurizer.window_pairs(candidate_pairs(doc.text, doc.entities, labels=featurizer.labels),
                                                doc.entities, ent_tok, wins):
            ex = per_window[w]
            ex.pairs.append(row)
            ex.pair_labels.append(gold_rel.get((doc.entities[c.head].id, doc.entities[c.tail].id), 0))
            ex.pair_classes.append(c.classes)
        examples.extend(per_window)
    return examples


def sample_pairs(ex: WindowExample, ratio: float | None, rng: random.Random) -> list[int]:
    """Indices of the pairs to train on: all positives, and up to ratio x as many negatives (at least 2)."""
    pos = [i for i, y in enumerate(ex.pair_labels) if y != 0]
    neg = [i for i, y in enumerate(ex.pair_labels) if y == 0]
    if ratio is not None:
        keep = max(2, int(round(ratio * len(pos))))
        if len(neg) > keep:
            neg = rng.sample(neg, keep)
    return sorted(pos + neg)


def collate(batch: list[WindowExample], tokenizer, ratio: float | None, rng: random.Random):
    ids, mask = window_batch([ex.ids for ex in batch], tokenizer)
    labels = torch.full(ids.shape, -100, dtype=torch.long)
    rows, rel_labels, rel_classes = [], [], []
    for b, ex in enumerate(batch):
        labels[b, 1 : 1 + len(ex.tags)] = torch.tensor(ex.tags)
        for i in sample_pairs(ex, ratio, rng):
            rows.append([b] + ex.pairs[i][1:])
            rel_labels.append(ex.pair_labels[i])
            rel_classes.append(ex.pair_classes[i])
    pairs = torch.tensor(rows, dtype=torch.long) if rows else torch.zeros((0, 8), dtype=torch.long)
    return ids, mask, labels, pairs, torch.tensor(rel_labels, dtype=torch.long), rel_classes


# --- training ----------------------------------------------------------------------------


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def loss_on_batch(model: CaibaoModel, batch, relation_weight: float) -> torch.Tensor:
    ids, mask, labels, pairs, rel_labels, rel_classes = batch
    # One call of the module (its forward), so that DDP's gradient hooks see it.
    logits, rel_logits = model(ids, mask, pairs)
    loss = nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=-100)
    if len(rel_labels):
        rel_logits = rel_logits + class_mask(rel_classes, rel_logits.device, rel_logits.size(-1))
        loss = loss + relation_weight * nn.functional.cross_entropy(rel_logits, rel_labels)
    return loss


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """temperature^2 * KL(teacher || student) over the last axis, averaged over rows.

    Masked classes (-inf in both) are set to a large negative number first, so
    that they contribute 0 instead of NaN.
    """
    if student.numel() == 0:
        return student.sum()
    s = torch.nan_to_num(student, neginf=-1e4) / temperature
    t = torch.nan_to_num(teacher, neginf=-1e4) / temperature
    kl = nn.functional.kl_div(s.log_softmax(-1), t.log_softmax(-1), log_target=True, reduction="none").sum(-1)
    return temperature**2 * kl.mean()


def distill_loss_on_batch(model: CaibaoModel, teacher: CaibaoModel, batch, t_hidden: torch.Tensor,
                          relation_weight: float, d: DistillConfig) -> torch.Tensor:
    """(1 - alpha) * the gold loss + alpha * the KD loss on the same tokens and pairs
    (+ hidden_weight * the MSE of the last hidden states).

    ``t_hidden``: the teacher's last hidden states for this batch (eval mode, so
    computed once per window: :func:`teacher_hidden_states`).
    """
    ids, mask, labels, pairs, rel_labels, rel_classes = batch
    # One call of the module (its forward), so that DDP's gradient hooks see it.
    logits, rel_logits, hidden = model(ids, mask, pairs, return_hidden=True)
    with torch.no_grad():
        t_logits = teacher.token_logits(t_hidden)
        t_rel = teacher.pair_logits(t_hidden, pairs)
    real = labels.view(-1) != -100  # the document's tokens: not [CLS], [SEP] or padding
    gold = nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=-100)
    soft = kd_loss(logits.view(-1, logits.size(-1))[real], t_logits.view(-1, t_logits.size(-1))[real], d.temperature)
    if len(rel_labels):
        cmask = class_mask(rel_classes, rel_logits.device, rel_logits.size(-1))
        rel_logits, t_rel = rel_logits + cmask, t_rel + cmask
        gold = gold + relation_weight * nn.functional.cross_entropy(rel_logits, rel_labels)
        soft = soft + relation_weight * kd_loss(rel_logits, t_rel, d.temperature)
    loss = (1 - d.alpha) * gold + d.alpha * soft
    if d.hidden_weight:
        on = mask.bool()
        loss = loss + d.hidden_weight * nn.functional.mse_loss(hidden[on], t_hidden[on])
    return loss


@torch.no_grad()
def teacher_hidden_states(teacher: CaibaoModel, examples: list[WindowExample], tokenizer, progress: bool = True,
                          batch_size: int = 16) -> list[torch.Tensor]:
    """The teacher's last hidden states of every window ([tokens + 2, hidden] each), computed once."""
    out: list[torch.Tensor] = []
    device = next(teacher.parameters()).device
    batches = range(0, len(examples), batch_size)
    for b0 in tqdm(batches, desc="teacher", unit="batch", leave=False, disable=not progress):
        chunk = examples[b0 : b0 + batch_size]
        ids, mask = window_batch([ex.ids for ex in chunk], tokenizer)
        hidden = teacher.encode(ids.to(device), mask.to(device)).cpu()
        out.extend(hidden[k, : len(ex.ids) + 2].clone() for k, ex in enumerate(chunk))
    return out


def batch_hidden(cached: list[torch.Tensor], indices: list[int], shape: torch.Size) -> torch.Tensor:
    """The cached teacher states of these windows, padded to the batch's [B, T] shape."""
    out = torch.zeros((shape[0], shape[1], cached[indices[0]].size(-1)))
    for k, i in enumerate(indices):
        out[k, : cached[i].size(0)] = cached[i]
    return out


def transfer_documents(cfg: ExperimentConfig, teacher: CaibaoModel, tokenizer) -> list[Document]:
    """The transfer set's documents, labelled by the teacher (its predictions stand in for gold)."""
    from caibao.annotations import read_documents

    docs = read_documents(cfg.distill.transfer)
    loaded = LoadedModel(teacher, tokenizer, cfg, Path("."))
    preds = predict_documents(loaded, [strip_annotations(d) for d in docs])
    log.info("transfer set %s: %d documents labelled by the teacher", cfg.distill.transfer, len(preds))
    return [p.document for p in preds]


def load_teacher(cfg: ExperimentConfig, student: CaibaoModel, encoder_path: str | None) -> CaibaoModel:
    """The distillation teacher (eval mode, frozen); the student starts from its weights if configured.

    Student layer j starts from the teacher's layer ``keep_layers[j]`` (the
    teacher's own numbering, i.e. the pretrained stack's), everything else
    (embeddings, heads) from the tensor of the same name.
    """
    from caibao.persistence import load_model

    d = cfg.distill
    loaded = load_model(resolve_model_path(d.teacher, "full"), encoder_path)
    teacher = loaded.model.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    tcfg = loaded.cfg
    if (tcfg.encoder.name, tcfg.encoder.pretokenize) != (cfg.encoder.name, cfg.encoder.pretokenize):
        raise InputError(d.teacher, f"the teacher's encoder ({tcfg.encoder.name}, {tcfg.encoder.pretokenize}) "
                         f"differs from the student's ({cfg.encoder.name}, {cfg.encoder.pretokenize}): "
                         "their tokens would not line up")
    if tcfg.model.keep_layers is not None:
        raise InputError(d.teacher, "the teacher must keep all its layers (it is itself a shallower model)")
    if d.init_from_teacher:
        kept = cfg.model.keep_layers or list(range(teacher.encoder.config.num_hidden_layers))
        t_state = teacher.state_dict()
        init = {}
        for name, tensor in student.state_dict().items():
            src = name
            for j, i in enumerate(kept):
                prefix = f"encoder.encoder.layer.{j}."
                if name.startswith(prefix):
                    src = f"encoder.encoder.layer.{i}." + name[len(prefix):]
                    break
            if src in t_state and t_state[src].shape == tensor.shape:
                init[name] = t_state[src]
        student.load_state_dict(init, strict=False)
        log.info("student initialised from the teacher %s (%d of %d tensors)", d.teacher, len(init),
                 len(student.state_dict()))
    return teacher


def init_from_model(model: CaibaoModel, name: str, encoder_path: str | None) -> None:
    """Load a trained model's weights (bundled name or folder) into ``model``: every tensor of the same
    name and shape; a model of another architecture is refused."""
    from caibao.persistence import load_model

    source = load_model(resolve_model_path(name, "distilled"), encoder_path).model.state_dict()
    target = model.state_dict()
    init = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    if len(init) < len(target):
        missing = sorted(set(target) - set(init))[:3]
        raise InputError(name, f"training.init_from: {len(target) - len(init)} of the model's tensors have no "
                         f"counterpart of the same shape there (e.g. {', '.join(missing)})")
    model.load_state_dict(init)
    log.info("initialised from %s (%d tensors)", name, len(init))


def shard_order(order: list[int], rank: int, world: int) -> list[int]:
    """This process's share of an epoch: every world-th index, padded (wrapping) so all shares are equally long."""
    if world == 1:
        return order
    per = -(-len(order) // world)
    padded = [order[i % len(order)] for i in range(per * world)]
    return padded[rank::world]


def _use_cpu() -> bool:
    """Run plainly: the CPU, as always. Under ``accelerate launch`` or torchrun: a GPU when there is one
    (unless the launcher says --cpu), else processes on the CPU (gloo)."""
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1 or "ACCELERATE_MIXED_PRECISION" in os.environ
    return not launched or not torch.cuda.is_available()


def _to_device(batch, device):
    ids, mask, labels, pairs, rel_labels, rel_classes = batch
    return ids.to(device), mask.to(device), labels.to(device), pairs.to(device), rel_labels.to(device), rel_classes


def evaluate_model(model: CaibaoModel, tokenizer, cfg: ExperimentConfig, docs: list[Document]) -> dict:
    loaded = LoadedModel(model, tokenizer, cfg, Path("."))
    preds = predict_documents(loaded, [strip_annotations(d) for d in docs])
    model.train()
    return score(docs, [p.document for p in preds])


def selection_score(scores: dict) -> float:
    """Mean of entity, relation and fact micro-F1: the number the best checkpoint maximises."""
    return (scores["entity"]["micro"]["f1"] + scores["relation"]["micro"]["f1"] + scores["fact"]["micro"]["f1"]) / 3


def make_optimizer(model: CaibaoModel, cfg: ExperimentConfig, total_steps: int):
    from transformers import get_linear_schedule_with_warmup

    t = cfg.training
    enc_params = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("encoder.")]
    head_params = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("encoder.")]
    groups = [{"params": head_params, "lr": t.head_learning_rate}]
    if enc_params:
        groups.append({"params": enc_params, "lr": t.learning_rate})
    opt = torch.optim.AdamW(groups, weight_decay=t.weight_decay)
    sched = get_linear_schedule_with_warmup(opt, int(t.warmup_ratio * total_steps), total_steps)
    return opt, sched


def train(cfg: ExperimentConfig, *, resume: bool = False, encoder_path: str | None = None,
          splits: dict[str, list[Document]] | None = None, progress: bool = True) -> dict:
    """Run the experiment; returns the final metrics (also written to metrics.json).

    Data -> examples -> epochs of optimizer steps -> dev evaluation and selection of the best
    model (:class:`_Selection`) -> a checkpoint per epoch (:class:`_Checkpoint`), in one process
    or several (Accelerate, DDP); distillation is a loss strategy (:func:`_loss_strategy`).
    """
    t, out_dir = cfg.training, Path(cfg.output_dir)
    accelerator = _accelerator(t)
    main = accelerator.is_main_process
    splits = splits or load_splits(cfg)
    train_docs, dev_docs = splits[cfg.data.train_split], splits[cfg.data.dev_split]
    if not train_docs:
        raise InputError(cfg.data.splits, f"split {cfg.data.train_split!r} is empty")
    checkpoint = _Checkpoint(out_dir / "checkpoint")
    state = checkpoint.load() if resume else None
    if state is not None and _finished(t, state["epoch"], state["step"]) and (out_dir / "metrics.json").exists():
        # Checked before any model, teacher or example is built: a finished run costs nothing.
        log.info("--resume: the run in %s is finished; nothing changed", out_dir)
        return json.loads((out_dir / "metrics.json").read_text("utf-8"))

    model, tokenizer, teacher = _models(cfg, accelerator, encoder_path)
    if teacher is not None and cfg.distill.transfer:
        train_docs = train_docs + transfer_documents(cfg, teacher, tokenizer)
    examples = build_examples(train_docs, tokenizer, cfg)
    loss_fn = _loss_strategy(cfg, teacher, examples, tokenizer, accelerator.device, progress and main)
    opt, sched = make_optimizer(model, cfg, _total_steps(t, len(examples), accelerator.num_processes))
    run = _RunState() if state is None else checkpoint.restore(state, model, opt, sched)

    rng = random.Random(t.seed)
    model.train()
    # Single process on the CPU: no wrapping, the objects work as before. DDP: model wrapped, on its device.
    model, opt, sched = accelerator.prepare(model, opt, sched)
    raw_model = accelerator.unwrap_model(model)
    selection = _Selection(cfg, out_dir, dev_docs, tokenizer, run.best)
    started = time.time()
    for epoch in range(run.epoch, t.epochs):
        if _finished(t, epoch, run.step):
            break
        epoch_examples = _epoch_examples(cfg, train_docs, examples, tokenizer, epoch)
        losses: list[float] = []
        for batch, indices, bar in _epoch_batches(epoch_examples, tokenizer, cfg, epoch, run.step, accelerator,
                                                  rng, progress and main):
            loss = loss_fn(model, batch, indices)
            _optimizer_step(accelerator, model, opt, sched, loss, t.max_grad_norm)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{sum(losses) / len(losses):.4f}")
        run.step += len(losses)
        entry = {"epoch": epoch + 1, "step": run.step, "train_loss": round(_mean_loss(losses, accelerator), 5),
                 "elapsed_s": round(time.time() - started, 1)}
        run.history.append(selection.judge(entry, raw_model, accelerator))
        run.best = selection.best
        if main:
            log.info("epoch %d: %s", epoch + 1, run.history[-1])
            atomic_write_text(out_dir / "train_log.jsonl", "".join(json.dumps(h) + "\n" for h in run.history))
            # Checkpoint after the bookkeeping so a resume continues with the next epoch.
            checkpoint.save(raw_model, opt, sched, epoch + 1, run, time.time() - started)
        accelerator.wait_for_everyone()
    return _finish(cfg, run, train_docs, len(examples), len(dev_docs), time.time() - started, accelerator)


def _models(cfg: ExperimentConfig, accelerator, encoder_path: str | None):
    """``(model, tokenizer, teacher or None)``: the model to train, started from another model's
    weights when the config says so, and the distillation teacher."""
    with accelerator.main_process_first():  # the main process builds the cached encoder; the others load it
        model, tokenizer = build_model(cfg, encoder_path)
    if cfg.training.init_from:
        init_from_model(model, cfg.training.init_from, encoder_path)
    teacher = load_teacher(cfg, model, encoder_path).to(accelerator.device) if cfg.distill else None
    return model, tokenizer, teacher


def _accelerator(t):
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    # Relation pairs (and their head) may be absent from one process's batch: find_unused_parameters.
    # The schedule counts optimizer steps, so it steps once per step whatever the number of processes.
    accelerator = Accelerator(cpu=_use_cpu(), step_scheduler_with_optimizer=False,
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", accelerator.num_processes))
    torch.set_num_threads(t.num_threads or max(1, (os.cpu_count() or 1) // local_world))
    set_seed(t.seed)
    return accelerator


def _total_steps(t, n_examples: int, world: int) -> int:
    """Optimizer steps of the whole run (each process steps once per batch of its share)."""
    per_process = (n_examples + world - 1) // world
    total = (per_process + t.batch_size - 1) // t.batch_size * t.epochs
    return min(total, t.max_steps) if t.max_steps else total


def _loss_strategy(cfg: ExperimentConfig, teacher: CaibaoModel | None, examples: list[WindowExample], tokenizer,
                   device, show: bool):
    """``(model, batch, example indices) -> loss``: the gold loss, or the distillation loss against
    the teacher's hidden states (computed once for every example)."""
    weight = cfg.training.relation_loss_weight
    if teacher is None:
        return lambda model, batch, indices: loss_on_batch(model, batch, weight)
    cached = teacher_hidden_states(teacher, examples, tokenizer, show)

    def distilled(model, batch, indices):
        t_hidden = batch_hidden(cached, indices, batch[0].shape).to(device)
        return distill_loss_on_batch(model, teacher, batch, t_hidden, weight, cfg.distill)

    return distilled


def _epoch_examples(cfg: ExperimentConfig, docs: list[Document], examples: list[WindowExample], tokenizer,
                    epoch: int) -> list[WindowExample]:
    """The epoch's examples: with organisation-name swapping (``augment``), rebuilt from documents
    whose names are swapped anew each epoch."""
    if not cfg.augment.org_swap_rate:
        return examples
    names = read_gazetteer(cfg.augment.org_gazetteer)
    swapped = swap_some(docs, names, cfg.augment.org_swap_rate, random.Random(cfg.training.seed + epoch))
    return build_examples(swapped, tokenizer, cfg)


def _epoch_batches(examples: list[WindowExample], tokenizer, cfg: ExperimentConfig, epoch: int, step: int,
                   accelerator, rng: random.Random, show: bool):
    """The epoch's batches: its shuffled order, this process's share, as many as ``max_steps``
    leaves; yields ``(batch on the device, example indices, progress bar)``."""
    t = cfg.training
    order = list(range(len(examples)))
    random.Random(t.seed + epoch).shuffle(order)
    order = shard_order(order, accelerator.process_index, accelerator.num_processes)
    batch_starts = range(0, len(order), t.batch_size)
    if t.max_steps:  # the bar shows the steps this epoch will run, not the epoch's full length
        batch_starts = batch_starts[: t.max_steps - step]
    bar = tqdm(batch_starts, desc=f"epoch {epoch + 1}/{t.epochs}", disable=not show, unit="batch")
    for b0 in bar:
        indices = order[b0 : b0 + t.batch_size]
        batch = collate([examples[i] for i in indices], tokenizer, t.negatives_per_positive, rng)
        yield _to_device(batch, accelerator.device), indices, bar


def _optimizer_step(accelerator, model, opt, sched, loss: torch.Tensor, max_grad_norm: float) -> None:
    accelerator.backward(loss)
    # Unscales first under fp16 mixed precision; otherwise torch's clip_grad_norm_.
    accelerator.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_grad_norm)
    opt.step()
    sched.step()
    opt.zero_grad()


def _mean_loss(losses: list[float], accelerator) -> float:
    """The epoch's mean training loss, averaged over the processes."""
    mean = sum(losses) / max(1, len(losses))
    if accelerator.num_processes > 1:
        mean = accelerator.reduce(torch.tensor(mean, device=accelerator.device), "mean").item()
    return mean


@dataclass
class _RunState:
    """Where a run is: epochs done, steps done, best selection score, the epochs' log, and the
    training seconds of the runs it resumes."""

    epoch: int = 0
    step: int = 0
    best: float = float("-inf")
    history: list = field(default_factory=list)
    seconds_before: float = 0.0


class _Checkpoint:
    """The run's state after each epoch (``checkpoint/state.pt``, replaced atomically): weights,
    optimizer, schedule, random states and :class:`_RunState`; what ``--resume`` continues from."""

    def __init__(self, folder: Path):
        self.folder, self.path = folder, folder / "state.pt"

    def load(self) -> dict | None:
        if not self.path.exists():
            log.warning("--resume: no checkpoint in %s, starting from scratch", self.folder)
            return None
        return torch.load(self.path, weights_only=False, map_location="cpu")

    def restore(self, state: dict, model, opt, sched) -> _RunState:
        model.load_state_dict(state["model"], strict=False)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        random.setstate(state["py_rng"])
        np.random.set_state(state["np_rng"])
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed from %s at epoch %d", self.folder, state["epoch"])
        return _RunState(state["epoch"], state["step"], state["best"], state["history"],
                         state.get("train_seconds", 0.0))

    def save(self, model: CaibaoModel, opt, sched, epoch: int, run: _RunState, seconds: float) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / "state.pt.tmp"
        torch.save({"model": trainable_state(model), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "epoch": epoch, "step": run.step, "best": run.best,
                    "history": run.history, "train_seconds": run.seconds_before + seconds,
                    "py_rng": random.getstate(), "np_rng": np.random.get_state(),
                    "torch_rng": torch.get_rng_state()},
                   tmp)
        os.replace(tmp, self.path)


class _Selection:
    """After each epoch: the dev scores (or, without dev documents, the negative training loss)
    decide whether this is the best model so far, which is then saved as the run's model."""

    def __init__(self, cfg: ExperimentConfig, out_dir: Path, dev_docs: list[Document], tokenizer, best: float):
        self.cfg, self.out_dir, self.dev_docs, self.tokenizer, self.best = cfg, out_dir, dev_docs, tokenizer, best

    def judge(self, entry: dict, model: CaibaoModel, accelerator) -> dict:
        from accelerate.utils import broadcast_object_list

        if accelerator.is_main_process:
            if self.dev_docs:
                dev = evaluate_model(_eval_view(model, accelerator.device), self.tokenizer, self.cfg, self.dev_docs)
                entry["dev"] = {"entity_f1": dev["entity"]["micro"]["f1"],
                                "relation_f1": dev["relation"]["micro"]["f1"], "fact_f1": dev["fact"]["micro"]["f1"]}
                current = selection_score(dev)
            else:
                current = -entry["train_loss"]
            entry["selection_score"] = round(current, 5)
            entry["best"] = current > self.best
            if entry["best"]:
                self.best = current
                save_model(model, self.out_dir, extra={"encoder": self.cfg.encoder.name, "epoch": entry["epoch"]})
        if accelerator.num_processes > 1:
            shared = [entry, self.best]
            broadcast_object_list(shared, from_process=0)
            entry, self.best = shared
        return entry


def _finish(cfg: ExperimentConfig, run: _RunState, train_docs: list[Document], n_windows: int, n_dev: int,
            seconds: float, accelerator) -> dict:
    """The run's metrics, written to metrics.json by the main process."""
    metrics = {"config": cfg.name, "epochs_run": len(run.history), "train_documents": len(train_docs),
               "train_windows": n_windows, "dev_documents": n_dev, "history": run.history,
               "train_seconds": round(run.seconds_before + seconds, 1), "best_selection_score": run.best}
    if accelerator.num_processes > 1:
        metrics["processes"] = accelerator.num_processes
    if accelerator.is_main_process:
        atomic_write_text(Path(cfg.output_dir) / "metrics.json", json.dumps(metrics, ensure_ascii=False, indent=1))
    accelerator.wait_for_everyone()
    return metrics


def _finished(t, epoch: int, step: int) -> bool:
    """Whether a run that has done ``epoch`` epochs and ``step`` steps has nothing left to do."""
    return epoch >= t.epochs or bool(t.max_steps and step >= t.max_steps)


def _eval_view(model: CaibaoModel, device: torch.device) -> CaibaoModel:
    """The model for evaluation: itself on the CPU; on a GPU its encoder there and its heads on the CPU."""
    if device.type == "cpu":
        return model
    from caibao.distributed import device_view

    return device_view(model, device)
