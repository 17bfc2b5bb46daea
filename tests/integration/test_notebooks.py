"""The notebooks in ``notebooks/`` (issue 8): stored without outputs, and executed top to bottom.

Every ``notebooks/NN_*.ipynb`` is picked up. Each is executed with nbclient in a fresh kernel running *this*
interpreter (a kernel spec written to a temporary ``JUPYTER_PATH``, so a ``python3`` kernel spec of another environment
cannot shadow it), in the notebooks directory, with

* ``XLMR_NOTEBOOK_TEST=1``: notebooks may pick smaller settings; their checks stay the same;
* ``OMP_NUM_THREADS`` from ``XLMR_TEST_THREADS`` (default 1, as tests/conftest.py sets in-process);
* ``TMPDIR`` in pytest's ``tmp_path``: the notebooks' temporary run directories are cleaned up with it;
* matplotlib's inline backend: figures are rendered to PNG, never shown in a window.

The notebooks assert their key numbers themselves, so a notebook that raises or whose numbers change fails here with
the failing cell's source and error. Needs the ``notebooks`` extra; skipped without it.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
NAME = re.compile(r"^\d{2}_[a-z0-9_]+\.ipynb$")
RUNTIME = re.compile(r"\b\d+(\.\d+)?\s*(s|sec|seconds?|min|minutes?)\b")
CELL_TIMEOUT = 600  # seconds per cell
KERNEL = "xlmr-hf-notebook-test"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _ids(paths: list[Path]) -> list[str]:
    return [path.stem for path in paths]


def test_notebooks_are_numbered() -> None:
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOKS_DIR}"
    bad = [path.name for path in NOTEBOOKS if not NAME.match(path.name)]
    assert not bad, f"notebook names must look like NN_lowercase_name.ipynb: {bad}"
    numbers = [path.name[:2] for path in NOTEBOOKS]
    assert len(numbers) == len(set(numbers)), f"two notebooks share a number: {[p.name for p in NOTEBOOKS]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_stored_clean(path: Path) -> None:
    """Valid nbformat 4, no outputs or execution counts stored, and a first markdown cell saying how long it takes."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.cells and nb.cells[0].cell_type == "markdown", f"{path.name}: the first cell must be markdown"
    intro = nb.cells[0].source
    assert intro.lstrip().startswith("#"), f"{path.name}: the first cell must open with a title"
    assert RUNTIME.search(intro), f"{path.name}: the first cell must say how long the notebook takes (e.g. '60 s')"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {index} is stored with outputs"
            assert cell.execution_count is None, f"{path.name}: cell {index} is stored with an execution count"
    parameters = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) <= 1, f"{path.name}: more than one cell tagged 'parameters'"


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A directory for JUPYTER_PATH holding kernel spec `KERNEL`, which launches this interpreter (sys.executable)."""
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(str(root / "kernels" / KERNEL))
    return str(root)


def _failure_report(path: Path, nb: object, error: Exception) -> str:
    """The failing cell's index, source and error (ANSI colours stripped)."""
    for index, cell in enumerate(nb.cells):  # type: ignore[attr-defined]
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                trace = ANSI.sub("", "\n".join(output.get("traceback", [])))
                return (f"{path.name}: cell {index} raised {output['ename']}: {output['evalue']}\n"
                        f"--- cell source ---\n{cell.source}\n--- traceback ---\n{trace[-4000:]}")
    return f"{path.name}: execution failed: {ANSI.sub('', str(error))[-4000:]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_executes(path: Path, jupyter_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs top to bottom without error; the notebook's own asserts check its key numbers."""
    from nbclient.exceptions import (
        CellExecutionError,
        CellTimeoutError,
        DeadKernelError,
    )

    monkeypatch.setenv("JUPYTER_PATH", jupyter_path)
    monkeypatch.setenv("XLMR_NOTEBOOK_TEST", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # one torch thread, as tests/conftest.py sets in-process: on a shared 2-core machine two spinning threads make the
    # notebooks' short pretraining runs ~4x slower
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("XLMR_TEST_THREADS", "1"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebooks' tempfile.mkdtemp() runs land in pytest's tmp_path
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    failure = None
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        failure = _failure_report(path, nb, error)
    if failure is not None:  # outside the except block: no chained, colour-coded nbclient traceback
        pytest.fail(failure, pytrace=False)
    executed = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in executed), f"{path.name}: not every cell ran"


def test_kernel_runs_this_interpreter(jupyter_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The notebooks run in the environment under test, not in whatever a default kernel spec points at."""
    monkeypatch.setenv("JUPYTER_PATH", jupyter_path)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL).execute()
    printed = nb.cells[0].outputs[0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.executable).resolve()
