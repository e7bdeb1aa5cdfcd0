"""The snapshot engine as library code: compare, and write only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

import nnviz
from nnviz.graph import Graph
from pytest_nnviz.artifacts import artifact_stem, write_artifacts
from pytest_nnviz.check import build_graph, check_snapshot


@pytest.fixture(scope="module")
def small() -> Graph:
    return build_graph(nn.Sequential(nn.Linear(4, 8), nn.ReLU()))


@pytest.fixture(scope="module")
def wider() -> Graph:
    return build_graph(nn.Sequential(nn.Linear(4, 16), nn.ReLU()))


def test_missing_is_reported_not_written(tmp_path: Path, small: Graph) -> None:
    snapshot = tmp_path / "snaps" / "t.json"
    check = check_snapshot(small, snapshot)
    assert (check.status, check.ok, check.diff) == ("missing", False, None)
    assert not snapshot.parent.exists()
    assert check_snapshot(small, snapshot, update=True).status == "written"
    assert nnviz.load(snapshot) == small


def test_identical_passes_and_leaves_the_file_alone(tmp_path: Path, small: Graph) -> None:
    snapshot = nnviz.save(small, tmp_path / "t.json")
    before = snapshot.stat().st_mtime_ns
    for update in (False, True):
        check = check_snapshot(small, snapshot, update=update)
        assert check.status == "passed" and check.diff is not None and not check.diff
    assert snapshot.stat().st_mtime_ns == before


def test_drift_carries_the_diff(tmp_path: Path, small: Graph, wider: Graph) -> None:
    snapshot = nnviz.save(small, tmp_path / "t.json")
    check = check_snapshot(wider, snapshot)
    assert check.status == "drifted" and check.diff
    assert "out_features 8 → 16" in check.diff.to_text()
    assert nnviz.load(snapshot) == small
    assert check_snapshot(wider, snapshot, update=True).status == "written"
    assert nnviz.load(snapshot) == wider


def test_unreadable_is_failed_with_the_reason(tmp_path: Path, small: Graph) -> None:
    snapshot = tmp_path / "t.json"
    snapshot.write_text("[1, 2")
    check = check_snapshot(small, snapshot)
    assert check.status == "failed" and "not valid JSON" in str(check.problem)
    assert check_snapshot(small, snapshot, update=True).status == "written"


def test_artifacts_of_a_drift(tmp_path: Path, small: Graph, wider: Graph) -> None:
    snapshot = tmp_path / "tests" / "__nnviz_snapshots__" / "test_m" / "test_a.json"
    stem = artifact_stem(snapshot, tmp_path, tmp_path / "out")
    assert stem == tmp_path / "out" / "tests" / "test_m" / "test_a"
    artifacts = write_artifacts(nnviz.diff(small, wider), wider, stem)
    assert artifacts.problems == ()
    assert artifacts.pdf is not None and artifacts.pdf.read_bytes().startswith(b"%PDF")
    assert artifacts.svg is not None and "<svg" in artifacts.svg.read_text()
    assert artifacts.snapshot is not None and nnviz.load(artifacts.snapshot) == wider


def test_depth_collapses_before_storing() -> None:
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), nn.Tanh())
    assert [n.id for n in build_graph(model, depth=1).nodes] == [
        "input:input",
        "0",
        "1",
        "output",
    ]
