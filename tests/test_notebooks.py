"""The notebooks run headless, top to bottom, on a tiny sweep, and do their job."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from netsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARMS = ("no-blocking", "op25b", "op25b+587", "op25b+587+leaks")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The policy comparison at a tiny scale: 4 arms × 2 replications of half an hour."""
    out = tmp_path_factory.mktemp("policy-comparison")
    study = str(ROOT / "experiments" / "policy-comparison.yaml")
    assert main(["sweep", study, "--reps", "2", "--max-reps", "2", "--set", "duration_s=1800",
                 "--out", str(out)]) == 0
    return out


def execute(name: str, monkeypatch: pytest.MonkeyPatch, results: Path) -> nbformat.NotebookNode:
    """Run a notebook in a fresh kernel (which inherits this environment); return it with
    its outputs."""
    monkeypatch.setenv("NETSIM_RESULTS", str(results))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    before = sorted(NOTEBOOKS.rglob("*"))
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        assert sorted(NOTEBOOKS.rglob("*")) == before, "a notebook wrote into notebooks/"
    return nb


def text(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell printed or displayed, as text."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data"):
            data = output["data"]
            parts += [data[m] for m in ("text/plain", "text/markdown") if m in data]
    return "\n".join(parts)


def tagged(nb: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"one cell tagged {tag!r} expected, found {len(cells)}"
    return cells[0]


def images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []))


def assert_ran_cleanly(nb: nbformat.NotebookNode) -> None:
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(isinstance(c.get("execution_count"), int) for c in code)
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, errors


@pytest.mark.parametrize("name", ["analysis.ipynb", "tutorial.ipynb"])
def test_notebook_is_stored_clean(name: str):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
        assert "/work/" not in cell.source and "/home/" not in cell.source


def test_analysis_notebook(sweep: Path, monkeypatch: pytest.MonkeyPatch):
    nb = execute("analysis.ipynb", monkeypatch, sweep)
    assert_ran_cleanly(nb)
    assert str(sweep) in text(tagged(nb, "parameters"))
    setup = text(tagged(nb, "setup"))
    assert "Policy comparison" in setup and "2 replications" in setup
    means = text(tagged(nb, "means"))
    assert all(arm in means for arm in ARMS)
    assert "spam_delivered" in means and "legit_delivery_ratio" in means
    paired = text(tagged(nb, "paired"))
    assert "op25b+587" in paired and "− no-blocking: paired" in paired
    origin = text(tagged(nb, "origin"))
    assert "isp_relay" in origin and "hosting" in origin
    assert "roaming, MUA on 587" in text(tagged(nb, "delivery"))
    parts = text(tagged(nb, "decomposition"))
    assert "**op25b** against **no-blocking**" in parts and "| **all** |" in parts
    assert "roaming" in parts and "stolen_587" in parts
    study = json.loads((sweep / "study.json").read_text())["study"]
    # the study's figures, the CRN scatter, and four of its own figures, drawn inline
    assert images(nb) >= len(study["figures"]) + 4
    assert sorted(p.name for p in sweep.iterdir()) == sorted(
        ["figures", "precision.json", "report.md", "runs", "runs.parquet", "study.json",
         "timeseries.parquet"])


def test_analysis_notebook_asks_for_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from nbclient.exceptions import CellExecutionError

    with pytest.raises(CellExecutionError, match="netsim sweep experiments/policy-comparison"):
        execute("analysis.ipynb", monkeypatch, tmp_path / "absent")


def test_tutorial_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    nb = execute("tutorial.ipynb", monkeypatch, tmp_path / "unused")
    assert_ran_cleanly(nb)
    table = text(tagged(nb, "kind-outcome"))
    assert "none" in table and "op25b+587" in table and "blocked" in table
    who = text(tagged(nb, "who-lost"))
    assert "roaming" in who and "op25b" in who and "user_unknown" in who
    trace = text(tagged(nb, "trace-legit"))
    for step in ("EHLO", "MAIL FROM", "RCPT TO", "DATA", "354", "250", "USER", "PASS",
                 "RETR", "+OK"):
        assert step in trace, step
    spam = text(tagged(nb, "trace-spam"))
    assert "dropped by op25b" in spam and "blocked (op25b)" in spam
    roaming = text(tagged(nb, "trace-roaming"))
    assert "dropped by op25b" in roaming and ":587 open" in roaming and "354" in roaming
    assert "op25b" in text(tagged(nb, "roaming"))
    packets = text(tagged(nb, "pcap"))
    assert "packets in journey.pcap" in packets and "MX" in packets
    assert "EHLO" in packets and "RETR" in packets
    imap = text(tagged(nb, "imap"))
    assert "imap" in imap and "pop3" in imap and "from IMAP LOGIN" in imap
    for step in (":143 open", "LOGIN user", "SELECT INBOX", "UID FETCH", "BODY[]"):
        assert step in imap, step
    assert images(nb) >= 1
