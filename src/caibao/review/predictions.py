"""The model side of the loop: predictions as Label Studio pre-annotations, model versions, uncertainty."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from pathlib import Path
from typing import Protocol

from caibao.annotations import document_to_ls_result, without_guide_errors
from caibao.review.connection import ReviewError
from caibao.schema import Document

log = logging.getLogger(__name__)


class Predictor(Protocol):
    """What push and the ML backend need from a model."""

    model_version: str

    def predict(self, docs: list[Document]) -> list:  # list[caibao.model.Prediction]
        ...


def weights_hash(model_dir: Path | str) -> str:
    from caibao.persistence import MODEL_FILE

    h = hashlib.sha256()
    with open(Path(model_dir) / MODEL_FILE, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_version_of(model_dir: Path | str) -> str:
    """``caibao-<config name>-<sha256 of the weights file, 12 hex>``: stable across copies of one model."""
    from caibao.persistence import CONFIG_FILE

    meta = json.loads((Path(model_dir) / CONFIG_FILE).read_text("utf-8"))
    name = str((meta.get("config") or {}).get("name") or "model")
    return f"caibao-{name}-{weights_hash(model_dir)[:12]}"


class ModelPredictor:
    """A caibao model directory; thread-safe, reloads itself when its weights file changes."""

    def __init__(self, model_dir: Path | str | None = None, batch_size: int = 8):
        from caibao.persistence import resolve_model_path

        # Pre-annotations come from the full model: in review, quality matters more than speed.
        self.path = resolve_model_path(model_dir, "full")
        self.batch_size = batch_size
        self._lock = threading.Lock()
        try:
            self._load()
        except (OSError, ValueError, KeyError) as exc:
            raise ReviewError(f"cannot load the model at {self.path}: {exc}") from None

    def _load(self) -> None:
        from caibao.extract import Extractor

        # The same automatic runtime as `caibao extract` (caibao.runtimes).
        self.loaded = Extractor.load(self.path).loaded
        self.model_version = model_version_of(self.path)

    def predict(self, docs: list[Document]) -> list:
        from caibao.model import predict_documents

        with self._lock:
            return predict_documents(self.loaded, docs, batch_size=self.batch_size)

    def refresh(self) -> bool:
        """Reload if the weights changed on disk (after a retraining); True when reloaded."""
        try:
            version = model_version_of(self.path)
        except OSError:
            return False
        if version == self.model_version:
            return False
        with self._lock:
            self._load()
        log.info("model reloaded: %s", self.model_version)
        return True


def document_uncertainty(pred) -> float:
    """``max(1 - lowest decision probability, mean token entropy / ln(#tags))``, in [0, 1].

    ``pred`` is a :class:`caibao.model.Prediction`: its entities' and relations' scores, and those of
    the relations the decoding rules overruled. Higher means less sure; ``--order uncertainty``
    pushes the highest first.
    """
    decisions = [*pred.document.entities, *pred.document.relations, *pred.overruled]
    probs = [float(x.score) for x in decisions if x.score is not None]
    least_sure = 1.0 - min(probs) if probs else 0.0
    entropy = float(pred.mean_token_entropy or 0.0) / math.log(pred.tag_count)
    return round(min(1.0, max(0.0, least_sure, entropy)), 6)


def prediction_payload(pred, model_version: str) -> dict:
    """A Label Studio prediction: result items, ``score = 1 - uncertainty``, model version."""
    return {
        # Guide-valid, so that a reviewer who accepts it unchanged passes the pull's validation.
        "result": document_to_ls_result(without_guide_errors(pred.document)),
        "score": round(1.0 - document_uncertainty(pred), 6),
        "model_version": model_version,
    }
