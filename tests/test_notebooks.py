"""Every notebook under notebooks/ executes without error (demo data, tiny random-weight LM)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks_and_they_are_stored_without_outputs():
    assert len(NOTEBOOKS) >= 4
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory):
    """Environment for the kernels: demo at 10 mm, a tiny LM folder, a private cache."""
    from _lm_fixtures import tiny_lm

    root = tmp_path_factory.mktemp("notebooks")
    lm = tiny_lm()
    lm.model.save_pretrained(root / "tiny_lm")
    lm.tokenizer.save_pretrained(root / "tiny_lm")
    env = {"GIM_BRAIN_LM": str(root / "tiny_lm"), "GIM_BRAIN_DEMO_RESOLUTION": "10",
           "GIM_BRAIN_CACHE": str(root / "cache"), "GIM_BRAIN_OUT": str(root / "runs"),
           "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("GIM_BRAIN_DATA_ROOT", raising=False)
        for k, v in env.items():
            mp.setenv(k, v)
        yield root


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, notebook_env):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook_env)}})
    client.execute()  # raises CellExecutionError with the failing cell and traceback
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
