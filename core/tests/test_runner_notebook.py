"""NBRunner through a real Jupyter kernel: the notebook in notebooks/nbrunner.ipynb is executed
cell by cell (nbclient + ipykernel), exactly as a user's notebook would be."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipykernel  # noqa: F401 - the kernel the notebook runs in must be installed
import nbclient
import nbformat
import pytest
from plait_harness import Plait

NOTEBOOK = Path(__file__).parent / "notebooks" / "nbrunner.ipynb"


def cell_text(cell: Any) -> str:
    """Everything a cell showed: streams, results and errors."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(out["data"].get("text/plain", ""))
        elif out["output_type"] == "error":
            parts.append("\n".join(out["traceback"]))
    return "".join(parts)


@pytest.fixture
def executed(plait: Plait, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Plait]]:
    """The notebook after a real kernel ran it in a scratch directory."""
    for key, value in plait.env.items():
        if key.startswith("PLAIT_"):
            monkeypatch.setenv(key, value)  # the kernel (and the runs) inherit these
    monkeypatch.delenv("PLAIT_TEST_STATE", raising=False)
    notebook = plait.cwd / NOTEBOOK.name
    shutil.copy(NOTEBOOK, notebook)
    nb = nbformat.read(str(notebook), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(plait.cwd)}})
    client.execute()
    yield nb, plait


def test_nbrunner_in_a_real_kernel(executed: tuple[Any, Plait]) -> None:
    nb, plait = executed
    code = [c for c in nb.cells if c.cell_type == "code"]
    texts = [cell_text(c) for c in code]
    run_cell = texts[2]
    # The flow's own output and the run's progress are shown inline, in the cell that ran it.
    assert "value is 35" in run_cell and "Workflow starting" in run_cell and "Done!" in run_cell
    assert "RESULT True 35 True" in run_cell
    assert "SAME [1, 2]" in texts[3] and "Wall time" in texts[3]
    assert "ERROR ParameterError" in texts[4] and "alpha" in texts[4]
    assert "STARTED True" in texts[5] and "ASYNC successful 55" in texts[5]
    assert not any(o["output_type"] == "error" for c in code for o in c.get("outputs", []))
    # The generated flow files were cleaned up, and the runs are in the store like any other.
    assert not list(plait.cwd.glob("*Flow_*.py")), list(plait.cwd.iterdir())
    assert len(plait.md.list_runs("NotebookFlow")) == 2 and len(plait.md.list_runs("SameCellFlow")) == 1
