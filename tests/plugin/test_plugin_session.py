"""Session bookkeeping as plain code: outcomes, the xdist payload, unused files, the summary."""

from __future__ import annotations

from pathlib import Path

from nnviz.review import delete_snapshots
from pytest_nnviz.engine import Status
from pytest_nnviz.location import locate
from pytest_nnviz.report import count, find_unused, summary_line
from pytest_nnviz.session import Options, SessionState, SnapshotResult, SourceRef


def state(root: Path) -> SessionState:
    artifacts = root / ".nnviz-artifacts"
    return SessionState(Options(rootdir=root, artifacts_dir=artifacts, repository=root))


def result(snapshot: str, status: Status = "passed") -> SnapshotResult:
    return SnapshotResult("t.py::test_a", "t.py", 3, snapshot, status)


def test_summary_line() -> None:
    counts = {"passed": 12, "drifted": 1, "written": 2, "missing": 0, "failed": 0, "unused": 1}
    assert summary_line(counts) == "nnviz: 12 snapshots passed, 1 drifted, 2 written, 1 unused"
    counts = dict.fromkeys(counts, 0) | {"passed": 1, "unused": 3}
    assert summary_line(counts, deleted=True) == "nnviz: 1 snapshot passed, 3 unused (deleted)"


def test_a_failed_or_skipped_phase_wins() -> None:
    s = state(Path("/r"))
    s.record_outcome("a", "setup", "passed")
    s.record_outcome("a", "call", "passed")
    s.record_outcome("a", "teardown", "failed")
    s.record_outcome("b", "setup", "skipped")
    s.record_outcome("c", "call", "passed")
    assert s.outcomes == {"a": "failed", "b": "skipped", "c": "passed"}


def test_worker_payload_round_trip(tmp_path: Path) -> None:
    worker = state(tmp_path)
    worker.results.append(result("s/t/test_a.json", "drifted"))
    worker.results.append(
        SnapshotResult(
            "t.py::test_b",
            "t.py",
            9,
            "s/t/test_b.json",
            "drifted",
            "sha256:" + "1" * 64,
            {"new": "t/test_b.new.json"},
            [SourceRef("model.py", 4, ["features.3"])],
            {"x": [1]},
        )
    )
    worker.tests["t.py::test_a"] = locate("t.py::test_a", tmp_path / "t.py")
    worker.deselected.add("t.py::test_c")
    controller = state(tmp_path)
    controller.merge(worker.payload())
    controller.merge(state(tmp_path).payload())
    assert controller.results == worker.results
    assert controller.tests == worker.tests
    assert controller.partial and controller.deselected == {"t.py::test_c"}
    assert count(controller, [])["drifted"] == 2


def test_unused_files(tmp_path: Path) -> None:
    s = state(tmp_path)
    for nodeid in ("t.py::test_a", "t.py::test_skip"):
        s.tests[nodeid] = locate(nodeid, tmp_path / "t.py")
    folder = s.tests["t.py::test_a"].folder
    folder.mkdir(parents=True)
    names = ["test_a.json", "test_a.extra.json", "test_skip.json", "test_gone.json", "notes.txt"]
    for name in names:
        (folder / name).write_text("{}")
    s.results.append(result(s.options.relative(folder / "test_a.json")))
    s.outcomes.update({"t.py::test_a": "passed", "t.py::test_skip": "skipped"})
    unused = find_unused(s, [tmp_path], [])
    assert [p.name for p in unused] == ["test_a.extra.json", "test_gone.json"]

    delete_snapshots(unused)
    assert sorted(p.name for p in folder.iterdir()) == [
        "notes.txt",
        "test_a.json",
        "test_skip.json",
    ]
    for name in ("notes.txt", "test_a.json", "test_skip.json"):
        (folder / name).unlink()
    delete_snapshots([])
    delete_snapshots([folder / "test_gone.json"])
    assert not folder.parent.exists()  # the emptied __nnviz_snapshots__ folder goes too
