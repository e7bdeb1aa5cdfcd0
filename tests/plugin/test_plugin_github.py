"""On GitHub Actions the controller alone annotates each drift and appends the step summary."""

from __future__ import annotations

import pytest
from support import run
from torch import nn

import nnviz

TESTS = """
import torch.nn as nn


def test_drifts(nnviz_snapshot):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
    nnviz_snapshot(model)


def test_matches(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(4, 2))
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_annotations_and_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    pytester.makepyfile(test_gh=TESTS)
    folder = pytester.path / "__nnviz_snapshots__" / "test_gh"
    nnviz.save(nnviz.trace(nn.Sequential(nn.Linear(4, 6), nn.ReLU())), folder / "test_drifts.json")
    nnviz.save(nnviz.trace(nn.Linear(4, 2)), folder / "test_matches.json")
    summary = pytester.path / "step-summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))

    result = run(pytester, *workers)
    result.assert_outcomes(failed=1, passed=1)
    errors = [line for line in result.outlines if line.startswith("::error")]
    assert len(errors) == 1, result.outlines
    assert errors[0].startswith("::error file=test_gh.py,line=6,title=")
    assert "test_drifts" in errors[0]
    text = summary.read_text()
    assert text.startswith("# earlier step\n")
    assert "test_drifts" in text and "Snapshots: 1 passed · 1 drifted" in text


def test_quiet_outside_github(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_gh=TESTS)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    result = run(pytester, "--nnviz-update")
    result.assert_outcomes(passed=2)
    assert not [line for line in result.outlines if line.startswith("::")]


def test_no_github_switch(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--nnviz-no-github` leaves GitHub reporting to a later step (the nnviz action)."""
    pytester.makepyfile(test_gh=TESTS)
    folder = pytester.path / "__nnviz_snapshots__" / "test_gh"
    nnviz.save(nnviz.trace(nn.Sequential(nn.Linear(4, 6), nn.ReLU())), folder / "test_drifts.json")
    nnviz.save(nnviz.trace(nn.Linear(4, 2)), folder / "test_matches.json")
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run(pytester, "--nnviz-no-github")
    result.assert_outcomes(failed=1, passed=1)
    assert not [line for line in result.outlines if line.startswith("::")]
    assert not summary.exists()
    assert (pytester.path / ".nnviz-artifacts" / "report.json").is_file()
