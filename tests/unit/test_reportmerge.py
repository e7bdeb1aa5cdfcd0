"""`nnviz report merge` on hand-made shard reports: what it refuses (one line, exit 2), how it
writes (atomically, replacing an earlier merge only), version 2 reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import make_drift, make_report, run_nnviz

from nnviz import reportmerge
from nnviz.driftreport import Check, DriftReport, NewSnapshot, Run
from nnviz.errors import DriftReportError

SNAP = "tests/__nnviz_snapshots__/test_models/test_model_01.json"
NODE = "tests/test_models.py::test_model_01"


def shard(folder: Path, commit: str | None = "a" * 40, outcome: str = "failed") -> Path:
    drift = make_drift(1)
    run = Run(
        commit=commit,
        tests={NODE: outcome},  # type: ignore[dict-item]
        checks=[Check(nodeid=NODE, snapshot=SNAP, status="drifted")],
        unclaimed=[],
    )
    report = make_report([drift]).model_copy(update={"run": run})
    report.save(folder / "report.json")
    for path in drift.artifacts.values():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text("x", encoding="utf-8")
    return folder


def test_merge_writes_one_folder_and_replaces_an_earlier_merge(tmp_path: Path) -> None:
    shards = [shard(tmp_path / "s1"), shard(tmp_path / "s2")]
    out = tmp_path / "merged"
    for _ in range(2):  # the second time over the first's folder
        result = run_nnviz("report", "merge", *map(str, shards), "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert "(merged 2 shards into" in result.stdout
    merged = DriftReport.load(out / "report.json")
    assert [d.nodeid for d in merged.drifts] == [NODE] and merged.summary.drifted == 1
    assert merged.run and merged.run.shards == 2 and merged.run.commit == "a" * 40
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [
        "report.json",
        "test_model_01.diff.pdf",
        "test_model_01.new.json",
    ]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("second", "says"),
    [
        ({"commit": "b" * 40}, "cannot merge shards of different commits: aaaa"),
        ({"outcome": "passed"}, f"cannot merge: shards disagree on {NODE}: failed in"),
    ],
)
def test_refused_in_one_line(tmp_path: Path, second: dict[str, str], says: str) -> None:
    a, b = shard(tmp_path / "s1"), shard(tmp_path / "s2", **second)  # type: ignore[arg-type]
    result = run_nnviz("report", "merge", str(a), str(b), "-o", str(tmp_path / "m"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"nnviz: error: {says}") and result.stderr.count("\n") == 1
    assert not (tmp_path / "m").exists()


def test_a_different_drift_of_one_snapshot_is_refused(tmp_path: Path) -> None:
    a, b = shard(tmp_path / "s1"), shard(tmp_path / "s2")
    doc = json.loads((b / "report.json").read_text(encoding="utf-8"))
    doc["drifts"][0]["digest"] = "sha256:" + "1" * 64
    (b / "report.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(DriftReportError, match=r"disagree on .*another drift of"):
        reportmerge.merge(reportmerge.load([a, b]))


def test_the_output_is_never_a_shard_or_a_stranger(tmp_path: Path) -> None:
    shards = reportmerge.load([shard(tmp_path / "s1")])
    merged = reportmerge.merge(shards)
    with pytest.raises(DriftReportError, match="must not hold or be in a shard's"):
        reportmerge.write(shards, merged, tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(DriftReportError, match="exists and is not a drift-report folder"):
        reportmerge.write(shards, merged, tmp_path / "other")
    assert (tmp_path / "other" / "keep.txt").read_text(encoding="utf-8") == "mine"


def test_version_2_reports_are_read_but_not_merged(tmp_path: Path) -> None:
    doc = json.loads(make_report([make_drift(1)]).dumps())
    doc["version"] = 2
    del doc["run"]
    (tmp_path / "report.json").write_text(json.dumps(doc), encoding="utf-8")
    report = DriftReport.load(tmp_path / "report.json")
    assert report.version == 3 and report.run is None and len(report.drifts) == 1
    with pytest.raises(DriftReportError, match=r"no run record .* run this shard again"):
        reportmerge.load([tmp_path])


def test_pending_new_snapshots_are_merged_with_their_files(tmp_path: Path) -> None:
    new_snap = "tests/__nnviz_snapshots__/test_models/test_model_02.json"
    new_node = "tests/test_models.py::test_model_02"
    folders = []
    for name in ("s1", "s2"):  # both shards ran the test whose snapshot is missing
        folder = shard(tmp_path / name)
        report = DriftReport.load(folder / "report.json")
        pending = "tests/test_models/test_model_02.new.json"
        new = NewSnapshot(
            nodeid=new_node,
            file="tests/test_models.py",
            line=9,
            snapshot=new_snap,
            artifacts={"new": pending},
        )
        report.model_copy(update={"new": [new]}).save(folder / "report.json")
        (folder / pending).write_text("{}", encoding="utf-8")
        folders.append(folder)
    out = tmp_path / "merged"
    merged = reportmerge.merge(reportmerge.load(folders))
    assert [n.nodeid for n in merged.new] == [new_node]
    reportmerge.write(reportmerge.load(folders), merged, out)
    assert (out / "tests/test_models/test_model_02.new.json").is_file()
    assert [n.pending for n in DriftReport.load(out / "report.json").new] == [
        "tests/test_models/test_model_02.new.json"
    ]
