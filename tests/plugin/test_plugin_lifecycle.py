"""The snapshot lifecycle, with and without pytest-xdist.

missing → fail with the command to create it; `--nnviz-update` → pass and files written;
rerun → pass; model changed → fail with the changelog and artifacts; update → pass.
"""

from __future__ import annotations

import hashlib

import pytest
from support import run

import nnviz
from nnviz.driftreport import DriftReport

TEST_FILE = """
import torch.nn as nn


def build():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1))


def test_small(nnviz_snapshot):
    nnviz_snapshot(build())


def test_other(nnviz_snapshot):
    nnviz_snapshot(nn.Sequential(nn.Linear(4, 2), nn.Tanh()))
"""
CHANGED = ("nn.Conv2d(8, 4, 1)", "nn.Conv2d(8, 4, 3, padding=1)")
SMALL = "__nnviz_snapshots__/test_arch/test_small.json"
OTHER = "__nnviz_snapshots__/test_arch/test_other.json"
ARTIFACTS = ".nnviz-artifacts/test_arch/test_small"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_lifecycle(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makepyfile(test_arch=TEST_FILE)

    # 1. No snapshot yet: fail, say how to create it, write nothing.
    result = run(pytester, *workers)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            f"*nnviz: no snapshot {SMALL} yet",
            "*Create it with: pytest --nnviz-update test_arch.py::test_small",
            "test_arch.py:9: Failed",  # the traceback ends on the user's line
            "nnviz: 0 snapshots passed, 2 missing",
        ]
    )
    result.stdout.no_fnmatch_line("*pytest_nnviz/*")
    assert not (pytester.path / "__nnviz_snapshots__").exists()

    # 2. --nnviz-update writes both and passes.
    result = run(pytester, "--nnviz-update", *workers)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["nnviz: 0 snapshots passed, 2 written"])
    stored = nnviz.load(pytester.path / SMALL)
    assert [n.id for n in stored.nodes] == ["input:input", "0", "1", "2", "output"]
    assert stored.modules["2"].hparams["kernel_size"] == {"$tuple": [1, 1]}
    assert (pytester.path / OTHER).is_file()
    before = (pytester.path / SMALL).read_bytes()

    # 3. Unchanged: pass, nothing rewritten.
    result = run(pytester, *workers)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["nnviz: 2 snapshots passed"])
    assert (pytester.path / SMALL).read_bytes() == before

    # 4. The model changes: fail with the changelog, keep the snapshot, write the artifacts.
    pytester.makepyfile(test_arch=TEST_FILE.replace(*CHANGED))
    result = run(pytester, *workers)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            f"*nnviz: the architecture drifted from {SMALL}",
            "*kernel_size*(1, 1)*(3, 3)*",
            f"*Diff drawing: {ARTIFACTS}.diff.pdf",
            "*Accept the change with: pytest --nnviz-update test_arch.py::test_small",
            "nnviz: 1 snapshot passed, 1 drifted",
            "drift report: .nnviz-artifacts/report.json*",
        ]
    )
    assert (pytester.path / SMALL).read_bytes() == before
    for suffix in (".diff.pdf", ".diff.svg", ".new.json"):
        assert (pytester.path / f"{ARTIFACTS}{suffix}").stat().st_size > 0
    assert (pytester.path / f"{ARTIFACTS}.diff.pdf").read_bytes().startswith(b"%PDF")
    new = nnviz.load(pytester.path / f"{ARTIFACTS}.new.json")
    assert new.modules["2"].hparams["kernel_size"] == {"$tuple": [3, 3]}
    report = DriftReport.load(pytester.path / ".nnviz-artifacts/report.json")
    assert report.summary.passed == 1 and report.summary.drifted == 1
    (drift,) = report.drifts
    assert (drift.nodeid, drift.file, drift.line) == (
        "test_arch.py::test_small",
        "test_arch.py",
        9,
    )
    assert drift.snapshot == SMALL
    # Artifact paths are relative to the report's folder, so a downloaded artifact works too.
    assert drift.artifacts["pdf"] == "test_arch/test_small.diff.pdf"
    assert drift.pending == "test_arch/test_small.new.json"
    assert drift.digest == "sha256:" + hashlib.sha256(before).hexdigest()
    assert drift.diff["identical"] is False

    # 5. Accept the change: pass, and the stored snapshot is the new architecture.
    result = run(pytester, "--nnviz-update", *workers)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["nnviz: 1 snapshot passed, 1 written"])
    assert nnviz.load(pytester.path / SMALL) == new
    assert not list((pytester.path / ARTIFACTS).parent.iterdir())  # stale drift artifacts gone
