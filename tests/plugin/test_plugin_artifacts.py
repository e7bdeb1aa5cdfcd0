"""Where drift artifacts go (`--nnviz-artifacts`, the `nnviz_artifacts` ini option), and that an
unchanged snapshot is compared without rendering anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import run
from torch import nn

import nnviz
from nnviz.driftreport import DriftReport

TESTS = """
import torch.nn as nn


def test_drifts(nnviz_snapshot):
    nnviz_snapshot(nn.Sequential(nn.Linear(4, 8), nn.ReLU()))
"""


@pytest.fixture
def drifting(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(test_art=TESTS)
    snapshot = pytester.path / "__nnviz_snapshots__/test_art/test_drifts.json"
    nnviz.save(nnviz.trace(nn.Sequential(nn.Linear(4, 6), nn.ReLU())), snapshot)
    return snapshot


def test_command_line_folder(pytester: pytest.Pytester, drifting: Path) -> None:
    result = run(pytester, "--nnviz-artifacts", "out/nnviz")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Diff drawing: out/nnviz/test_art/test_drifts.diff.pdf"])
    report = DriftReport.load(pytester.path / "out/nnviz/report.json")
    assert report.drifts[0].artifacts["svg"] == "test_art/test_drifts.diff.svg"  # beside it
    assert (pytester.path / "out/nnviz/test_art/test_drifts.diff.svg").read_text().find("<svg") >= 0
    page = "out/nnviz/test_art/test_drifts.diff.html"
    result.stdout.fnmatch_lines([f"*Interactive diff (open in a browser): {page}"])
    assert report.drifts[0].artifacts["html"] == "test_art/test_drifts.diff.html"
    view = (pytester.path / page).read_text()
    assert "Content-Security-Policy" in view and '"name":"0","status":"changed"' in view
    assert not (pytester.path / ".nnviz-artifacts").exists()


def test_ini_folder(pytester: pytest.Pytester, drifting: Path) -> None:
    pytester.makeini("[pytest]\nnnviz_artifacts = ci/drift\n")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert (pytester.path / "ci/drift/report.json").is_file()
    assert (pytester.path / "ci/drift/test_art/test_drifts.new.json").is_file()


def test_unchanged_snapshot_renders_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_quiet="""
        import torch.nn as nn
        import nnviz.render.dot
        import nnviz.render.engine


        def refuse(*args, **kwargs):
            raise AssertionError("rendered for an unchanged snapshot")


        def test_same(nnviz_snapshot, monkeypatch):
            monkeypatch.setattr(nnviz, "draw", refuse)
            monkeypatch.setattr(nnviz.render.engine, "render", refuse)
            monkeypatch.setattr(nnviz.render.dot, "to_dot", refuse)
            assert not nnviz_snapshot(nn.Sequential(nn.Linear(4, 6), nn.ReLU()))
        """
    )
    snapshot = pytester.path / "__nnviz_snapshots__/test_quiet/test_same.json"
    nnviz.save(nnviz.trace(nn.Sequential(nn.Linear(4, 6), nn.ReLU())), snapshot)
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert not (pytester.path / ".nnviz-artifacts" / "test_quiet").exists()
