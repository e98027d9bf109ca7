"""``caibao serve-ml``: the Label Studio ML backend (predict, setup, webhook) and the retraining queue."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from caibao.annotations import LS_TEXT_NAME
from caibao.review.connection import Connection, ReviewError, ls_call
from caibao.review.predictions import Predictor, prediction_payload
from caibao.review.records import require_project
from caibao.schema import Document

log = logging.getLogger(__name__)


# Webhook actions that mean "the gold set may have grown".
RETRAIN_ACTIONS = frozenset({"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED", "START_TRAINING"})


class Retrainer:
    """Runs a retraining command in a background thread; requests never wait for it.

    Requests that arrive while a run is queued are folded into it; a request
    during a run queues exactly one more run afterwards (the gold set may
    have grown meanwhile). ``on_success`` runs after a run that exited 0.
    """

    def __init__(self, command: Sequence[str], *, cwd: Path | str | None = None,
                 on_success: Callable[[], object] | None = None, timeout: float | None = None):
        if not command:
            raise ValueError("empty retrain command")
        self.command = [str(c) for c in command]
        self.cwd = str(cwd) if cwd else None
        self.on_success = on_success
        self.timeout = timeout
        self.runs: list[dict] = []
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None

    def request(self, reason: str) -> str:
        """Enqueue a run; returns ``queued`` or ``coalesced`` (folded into a queued run)."""
        with self._lock:
            coalesced = bool(self._pending)
            self._pending.append(reason)
            self._idle.clear()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="caibao-retrain", daemon=True)
                self._thread.start()
        return "coalesced" if coalesced else "queued"

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._thread = None
                    self._idle.set()
                    return
                reasons, self._pending = self._pending, []
            started = time.time()
            run = {"reasons": reasons, "started": started}
            try:
                proc = subprocess.run(self.command, cwd=self.cwd, timeout=self.timeout, check=False)
                run["returncode"] = proc.returncode
            except Exception as exc:  # noqa: BLE001 - a failed run must not kill the worker
                run["returncode"] = None
                run["error"] = f"{type(exc).__name__}: {exc}"
            run["seconds"] = round(time.time() - started, 3)
            log.info("retrain run finished: rc=%s in %.1fs (%d request(s))", run["returncode"], run["seconds"],
                     len(reasons))
            if run["returncode"] == 0 and self.on_success is not None:
                try:
                    self.on_success()
                except Exception as exc:  # noqa: BLE001
                    run["error"] = f"after the run: {type(exc).__name__}: {exc}"
            with self._lock:
                self.runs.append(run)

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()


def predict_tasks(predictor: Predictor, tasks: list[dict]) -> list[dict]:
    """One ``{"result", "score", "model_version"}`` per Label Studio task, in order."""
    version = predictor.model_version
    docs: list[Document] = []
    slots: list[int | None] = []
    for k, t in enumerate(tasks):
        data = (t or {}).get("data") if isinstance(t, dict) else None
        text = data.get(LS_TEXT_NAME) if isinstance(data, dict) else None
        if not isinstance(text, str) or not text:
            slots.append(None)
            continue
        doc_id = str(data.get("doc_id") or f"task-{t.get('id', k)}")
        slots.append(len(docs))
        docs.append(Document(id=doc_id, text=text))
    preds = predictor.predict(docs) if docs else []
    out = []
    for slot in slots:
        if slot is None:
            out.append({"result": [], "score": 0.0, "model_version": version})
        else:
            out.append(prediction_payload(preds[slot], version))
    return out


class _Handler(BaseHTTPRequestHandler):
    server: MLServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - only method and path, never bodies (/setup has a token)
        log.debug("%s %s", self.command, self.path.split("?", 1)[0])

    def _reply(self, code: int, obj) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw.decode("utf-8")) if raw.strip() else {}

    def do_GET(self):  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        backend = self.server.backend
        if path in ("", "/health"):
            self._reply(200, {"status": "UP", "model_class": "caibao", "model_version": backend.model_version})
        elif path == "/versions":
            self._reply(200, {"versions": [backend.model_version]})
        else:
            self._reply(404, {"error": f"no such endpoint: GET {path}"})

    def do_POST(self):  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        backend = self.server.backend
        try:
            body = self._body()
        except (ValueError, UnicodeDecodeError) as exc:
            self._reply(400, {"error": f"invalid JSON body: {exc}"})
            return
        if not isinstance(body, dict):
            self._reply(400, {"error": "expected a JSON object"})
            return
        try:
            if path == "/setup":
                self._reply(200, {"model_version": backend.model_version})
            elif path == "/predict":
                tasks = body.get("tasks")
                if not isinstance(tasks, list):
                    self._reply(400, {"error": "expected 'tasks': a list"})
                    return
                self._reply(200, {"results": backend.predict(tasks), "model_version": backend.model_version})
            elif path in ("/webhook", "/train"):
                action = body.get("action") or ("START_TRAINING" if path == "/train" else None)
                self._reply(200, backend.webhook(str(action)))
            else:
                self._reply(404, {"error": f"no such endpoint: POST {path}"})
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            log.exception("request %s failed", path)
            self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})


class MLBackend:
    def __init__(self, predictor: Predictor, retrainer: Retrainer | None = None):
        self.predictor = predictor
        self.retrainer = retrainer
        self.events: list[dict] = []

    @property
    def model_version(self) -> str:
        return self.predictor.model_version

    def predict(self, tasks: list[dict]) -> list[dict]:
        return predict_tasks(self.predictor, tasks)

    def webhook(self, action: str) -> dict:
        if action not in RETRAIN_ACTIONS:
            result = {"status": "ignored", "action": action}
        elif self.retrainer is None:
            result = {"status": "ignored", "action": action, "reason": "retraining is off (--retrain-config)"}
        else:
            result = {"status": self.retrainer.request(action), "action": action}
        self.events.append(result)
        return result


class MLServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], backend: MLBackend):
        super().__init__(address, _Handler)
        self.backend = backend

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


# What Label Studio 1.23 answers when it may not call a backend on a loopback address.
_BLOCKED_LOCAL_HINT = ("start Label Studio with LABEL_STUDIO_ML_BLOCK_LOCAL_IP=false "
                       "LABEL_STUDIO_SSRF_PROTECTION_ENABLED=false (README, the review loop) to let it reach a "
                       "backend on this machine")


def connect_backend(conn: Connection, project_title: str, backend_url: str, *, client=None) -> dict:
    """Register ``caibao serve-ml`` at ``backend_url`` as the project's ML backend (idempotent).

    Label Studio then asks it for predictions and posts annotation events to
    its ``/webhook``. Returns ``{"id", "url", "state", "created"}``; a backend
    that Label Studio cannot reach is an error that says why.
    """
    client = client or conn.client()
    project = require_project(client, conn, project_title)
    url = backend_url.rstrip("/")
    with ls_call(conn, "listing ML backends"):
        existing = [b for b in client.ml.list(project=project.id) if (b.url or "").rstrip("/") == url]
    try:
        with ls_call(conn, f"connecting the ML backend {url}"):
            backend = existing[0] if existing else client.ml.create(project=project.id, url=url, title="caibao",
                                                                    is_interactive=False)
    except ReviewError as exc:
        hint = f"; {_BLOCKED_LOCAL_HINT}" if "reserved" in str(exc) or "HTTP 403" in str(exc) else ""
        raise ReviewError(f"{exc}{hint}") from None
    if backend.state != "CO":  # CO: connected (Label Studio got /health and /setup)
        raise ReviewError(f"Label Studio registered {url} for project {project_title!r} but cannot reach it "
                          f"(state {backend.state}): is `caibao serve-ml` running there?")
    return {"id": backend.id, "url": url, "state": backend.state, "created": not existing}


def make_ml_server(predictor: Predictor, host: str = "127.0.0.1", port: int = 9090,
                   retrainer: Retrainer | None = None) -> MLServer:
    """The ML backend bound to ``host:port`` (port 0: any free port); call ``serve_forever()``."""
    return MLServer((host, port), MLBackend(predictor, retrainer))


def retrain_command(config: Path | str, template: str | None = None, project: str | None = None,
                    gold: Path | str | None = None, splits: Path | str | None = None) -> list[str]:
    """``caibao retrain --full-config FILE`` with this interpreter: with ``project``, the project's
    finished reviews are pulled first, then the full and the distilled model retrained
    (:mod:`caibao.retrain`). Or ``template`` (shell words; ``{config}`` and, when given, ``{project}`` filled)."""
    import shlex
    import sys

    if template:
        words = [w.replace("{config}", str(config)) for w in shlex.split(template)]
        return [w.replace("{project}", project) for w in words] if project else words
    command = [sys.executable, "-c", "from caibao.cli import main; main()", "retrain", "--full-config", str(config)]
    for option, value in (("--project", project), ("--gold", gold), ("--splits", splits)):
        if value is not None:
            command += [option, str(value)]
    return command + ["--no-progress"]
