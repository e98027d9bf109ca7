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
from dataclasses import dataclass
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
from caibao.model import (
    REL2ID,
    CaibaoModel,
    LoadedModel,
    _window_batch,
    best_window,
    build_model,
    candidate_pairs,
    char_to_token,
    class_mask,
    encode_document,
    pair_rows,
    predict_documents,
    resolve_model_path,
    save_model,
    span_tokens,
    token_tags,
    trainable_state,
    windows,
)
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
    max_tokens = cfg.model.max_length - 2
    examples = []
    for doc in docs:
        enc = encode_document(tokenizer, doc.text)
        if not enc.ids:
            continue
        tags = token_tags(doc, enc)
        c2t = char_to_token(enc, len(doc.text))
        ent_tok = [span_tokens(c2t, e.start, e.end) for e in doc.entities]
        gold_rel = {(r.head, r.tail): REL2ID[r.label] for r in doc.relations}
        cands = candidate_pairs(doc.text, doc.entities)
        wins = windows(len(enc.ids), max_tokens, cfg.model.stride)
        per_window = [WindowExample(enc.ids[s:e], tags[s:e], [], [], []) for s, e in wins]
        for c in cands:
            ht, tt = ent_tok[c.head], ent_tok[c.tail]
            if ht is None or tt is None:
                continue
            w = best_window(wins, min(ht[0], tt[0]), max(ht[1], tt[1]))
            if w is None:
                continue
            h, t = doc.entities[c.head], doc.entities[c.tail]
            ex = per_window[w]
            ex.pairs.append(pair_rows(0, wins[w][0], ht, tt, h.label, t.label, cfg.model.distance_buckets))
            ex.pair_labels.append(gold_rel.get((h.id, t.id), 0))
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
    ids, mask = _window_batch([ex.ids for ex in batch], tokenizer)
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
        rel_logits = rel_logits + class_mask(rel_classes, device=rel_logits.device)
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
        cmask = class_mask(rel_classes, device=rel_logits.device)
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
        ids, mask = _window_batch([ex.ids for ex in chunk], tokenizer)
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
    from caibao.model import load_model

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
    from caibao.model import load_model

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
    """Run the experiment; returns the final metrics (also written to metrics.json)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, broadcast_object_list

    t = cfg.training
    out_dir = Path(cfg.output_dir)
    ckpt_dir = out_dir / "checkpoint"
    # Relation pairs (and their head) may be absent from one process's batch: find_unused_parameters.
    # The schedule counts optimizer steps, so it steps once per step whatever the number of processes.
    accelerator = Accelerator(cpu=_use_cpu(), step_scheduler_with_optimizer=False,
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    torch.set_num_threads(t.num_threads or max(1, (os.cpu_count() or 1) // local_world))
    set_seed(t.seed)
    splits = splits or load_splits(cfg)
    train_docs, dev_docs = splits[cfg.data.train_split], splits[cfg.data.dev_split]
    if not train_docs:
        raise InputError(cfg.data.splits, f"split {cfg.data.train_split!r} is empty")

    state = None
    if resume and (ckpt_dir / "state.pt").exists():
        state = torch.load(ckpt_dir / "state.pt", weights_only=False, map_location="cpu")
        # Checked before any model, teacher or example is built: a finished run costs nothing.
        if _finished(t, state["epoch"], state["step"]) and (out_dir / "metrics.json").exists():
            log.info("--resume: the run in %s is finished; nothing changed", out_dir)
            return json.loads((out_dir / "metrics.json").read_text("utf-8"))
    elif resume:
        log.warning("--resume: no checkpoint in %s, starting from scratch", ckpt_dir)

    with accelerator.main_process_first():  # the main process builds the cached encoder; the others load it
        model, tokenizer = build_model(cfg, encoder_path)
    if t.init_from:
        init_from_model(model, t.init_from, encoder_path)
    teacher = load_teacher(cfg, model, encoder_path).to(accelerator.device) if cfg.distill else None
    if teacher is not None and cfg.distill.transfer:
        train_docs = train_docs + transfer_documents(cfg, teacher, tokenizer)
    swap_names = read_gazetteer(cfg.augment.org_gazetteer) if cfg.augment.org_swap_rate else None
    examples = build_examples(train_docs, tokenizer, cfg)
    cached_hidden = None if teacher is None else teacher_hidden_states(teacher, examples, tokenizer, progress and main)
    per_process = (len(examples) + world - 1) // world
    steps_per_epoch = (per_process + t.batch_size - 1) // t.batch_size
    total_steps = steps_per_epoch * t.epochs
    if t.max_steps:
        total_steps = min(total_steps, t.max_steps)
    opt, sched = make_optimizer(model, cfg, total_steps)

    start_epoch, step, best, history, seconds_before = 0, 0, float("-inf"), [], 0.0
    if state is not None:
        start_epoch, step, best, history = state["epoch"], state["step"], state["best"], state["history"]
        seconds_before = state.get("train_seconds", 0.0)
        model.load_state_dict(state["model"], strict=False)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        random.setstate(state["py_rng"])
        np.random.set_state(state["np_rng"])
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed from %s at epoch %d", ckpt_dir, start_epoch)

    rng = random.Random(t.seed)
    model.train()
    # Single process on the CPU: no wrapping, the objects work as before. DDP: model wrapped, on its device.
    model, opt, sched = accelerator.prepare(model, opt, sched)
    raw_model = accelerator.unwrap_model(model)
    started = time.time()
    for epoch in range(start_epoch, t.epochs):
        if _finished(t, epoch, step):
            break
        if swap_names:
            swapped = swap_some(train_docs, swap_names, cfg.augment.org_swap_rate, random.Random(t.seed + epoch))
            examples = build_examples(swapped, tokenizer, cfg)
        order = list(range(len(examples)))
        random.Random(t.seed + epoch).shuffle(order)
        order = shard_order(order, rank, world)
        batch_starts = range(0, len(order), t.batch_size)
        if t.max_steps:  # the bar shows the steps this epoch will run, not the epoch's full length
            batch_starts = batch_starts[: t.max_steps - step]
        bar = tqdm(batch_starts, desc=f"epoch {epoch + 1}/{t.epochs}", disable=not progress or not main, unit="batch")
        running = 0.0
        for k, b0 in enumerate(bar):
            indices = order[b0 : b0 + t.batch_size]
            batch = collate([examples[i] for i in indices], tokenizer, t.negatives_per_positive, rng)
            batch = _to_device(batch, accelerator.device)
            if teacher is None:
                loss = loss_on_batch(model, batch, t.relation_loss_weight)
            else:
                t_hidden = batch_hidden(cached_hidden, indices, batch[0].shape).to(accelerator.device)
                loss = distill_loss_on_batch(model, teacher, batch, t_hidden, t.relation_loss_weight, cfg.distill)
            accelerator.backward(loss)
            # Unscales first under fp16 mixed precision; otherwise torch's clip_grad_norm_.
            accelerator.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], t.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            running += loss.item()
            bar.set_postfix(loss=f"{running / (k + 1):.4f}")
        train_loss = running / max(1, k + 1)
        if world > 1:
            train_loss = accelerator.reduce(torch.tensor(train_loss, device=accelerator.device), "mean").item()
        entry = {"epoch": epoch + 1, "step": step, "train_loss": round(train_loss, 5),
                 "elapsed_s": round(time.time() - started, 1)}
        if main:
            if dev_docs:
                dev = evaluate_model(_eval_view(raw_model, accelerator.device), tokenizer, cfg, dev_docs)
                entry["dev"] = {"entity_f1": dev["entity"]["micro"]["f1"],
                                "relation_f1": dev["relation"]["micro"]["f1"], "fact_f1": dev["fact"]["micro"]["f1"]}
                current = selection_score(dev)
            else:
                current = -entry["train_loss"]
            entry["selection_score"] = round(current, 5)
            improved = current > best
            if improved:
                best = current
                save_model(raw_model, out_dir, extra={"encoder": cfg.encoder.name, "epoch": epoch + 1})
            entry["best"] = improved
        if world > 1:
            shared = [entry, best]
            broadcast_object_list(shared, from_process=0)
            entry, best = shared
        history.append(entry)
        if main:
            log.info("epoch %d: %s", epoch + 1, entry)
            atomic_write_text(out_dir / "train_log.jsonl", "".join(json.dumps(h) + "\n" for h in history))
            # Checkpoint after the bookkeeping so a resume continues with the next epoch.
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            tmp = ckpt_dir / "state.pt.tmp"
            torch.save({"model": trainable_state(raw_model), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "epoch": epoch + 1, "step": step, "best": best,
                        "history": history, "train_seconds": seconds_before + time.time() - started,
                        "py_rng": random.getstate(), "np_rng": np.random.get_state(),
                        "torch_rng": torch.get_rng_state()},
                       tmp)
            os.replace(tmp, ckpt_dir / "state.pt")
        accelerator.wait_for_everyone()

    metrics = {"config": cfg.name, "epochs_run": len(history), "train_documents": len(train_docs),
               "train_windows": len(examples), "dev_documents": len(dev_docs), "history": history,
               "train_seconds": round(seconds_before + time.time() - started, 1), "best_selection_score": best}
    if world > 1:
        metrics["processes"] = world
    if main:
        atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, ensure_ascii=False, indent=1))
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
