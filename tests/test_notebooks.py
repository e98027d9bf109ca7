"""The notebooks are executed so they cannot rot."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # executes the notebooks

ROOT = Path(__file__).resolve().parents[1]


def run(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb


def test_annotation_stats_notebook_runs():
    nb = run("annotation_stats.ipynb")
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "gold documents" in outputs
    assert any(o.get("data", {}).get("image/png") for c in nb.cells for o in c.get("outputs", []))


def test_error_analysis_notebook_runs():
    from caibao.persistence import CONFIG_FILE, bundled_model_path

    if not (bundled_model_path("distilled") / CONFIG_FILE).exists():
        pytest.fail("the bundled model is missing from src/caibao/resources/model-distilled")
    nb = run("error_analysis.ipynb")
    assert any(o.get("data", {}).get("image/png") for c in nb.cells for o in c.get("outputs", []))
