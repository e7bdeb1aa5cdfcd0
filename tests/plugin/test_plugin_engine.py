"""The snapshot engine as library code: compare, write only as the update mode allows, draw on
drift."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

import nnviz
from nnviz.errors import NNVizError
from nnviz.graph import Graph
from nnviz.review import digest
from pytest_nnviz.engine import artifact_stem, build_graph, compare, perform_check


def check_snapshot(graph: Graph, snapshot: Path, update: bool = False):  # type: ignore[no-untyped-def]
    return compare(graph, snapshot, update="all" if update else "none")


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
    nnviz.save(small, snapshot)
    check = perform_check(wider, snapshot, stem)
    assert check.status == "drifted" and check.artifact_problems == ()
    assert check.digest == digest(snapshot.read_bytes())
    files = check.artifacts
    assert sorted(files) == ["html", "new", "pdf", "svg"]
    assert files["pdf"].read_bytes().startswith(b"%PDF")
    assert "<svg" in files["svg"].read_text()
    assert files["new"] == stem.with_name("test_a.new.json") and nnviz.load(files["new"]) == wider
    # Once the model matches again, the drift's files go.
    assert perform_check(small, snapshot, stem).status == "passed"
    assert not any(p.exists() for p in files.values())


def test_update_new_writes_only_missing_snapshots(
    tmp_path: Path, small: Graph, wider: Graph
) -> None:
    missing = tmp_path / "missing.json"
    assert compare(small, missing, update="new").status == "written"
    assert nnviz.load(missing) == small
    assert compare(wider, missing, update="new").status == "drifted"
    assert nnviz.load(missing) == small
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert compare(small, broken, update="new").status == "failed"
    assert broken.read_text() == "{"


def test_ignore_drops_fields_and_refuses_unknown_names(
    tmp_path: Path, small: Graph, wider: Graph
) -> None:
    snapshot = nnviz.save(small, tmp_path / "t.json")
    for rule in ("hparams", "out_features", "hparams.out_features"):
        kept = compare(wider, snapshot, ignore=(rule, "parameters", "spec"))
        assert kept.status == "passed", rule
    with pytest.raises(NNVizError, match="unknown ignore field 'bogus'"):
        compare(wider, snapshot, ignore=("bogus",))


def test_depth_collapses_before_storing() -> None:
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), nn.Tanh())
    assert [n.id for n in build_graph(model, depth=1).nodes] == [
        "input:input",
        "0",
        "1",
        "output",
    ]


class _Keeps(nn.Module):
    def __init__(self, in_chans: int) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.fc = nn.Linear(4, 4)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.fc(x)


def test_strict_counts_information_as_drift(tmp_path: Path) -> None:
    """An attribute-only change passes; with `strict` (ini nnviz_strict) it drifts."""
    snapshot = tmp_path / "t.json"
    nnviz.save(build_graph(_Keeps(1)), snapshot)
    newer = build_graph(_Keeps(3))
    assert compare(newer, snapshot).status == "passed"
    assert compare(newer, snapshot, strict=True).status == "drifted"
