"""The Action on a sharded suite, in the simulated runner: one suite run whole, and as three
shards (two by path, one by `-k`) whose artifacts a merge job downloads and merges. The merge
job's report.json, job summary, PR comment and annotations are the whole run's; the shards
write none of those, upload one artifact each and never judge unused snapshots."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support import run_nnviz
from test_action_run import PR_EVENT, SimulatedRunner, fake_gh
from torch import nn

import nnviz
from nnviz.driftreport import DriftReport

TESTS = {
    "test_a.py": """
import torch.nn as nn


def test_one(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(4, 2))


def test_two(nnviz_snapshot):
    nnviz_snapshot(nn.Sequential(nn.Linear(4, 3), nn.ReLU()))  # stored: Linear(4, 2): a drift
""",
    "test_b.py": """
import torch.nn as nn


def test_new(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(2, 2))  # no snapshot stored yet


def test_four(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(4, 2))
""",
    "test_c.py": """
import torch.nn as nn


def test_three(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(4, 2))
""",
}
STORED = ("test_a/test_one", "test_a/test_two", "test_b/test_four", "test_c/test_three")
GONE = "tests/__nnviz_snapshots__/test_c/test_gone.json"
SHARDS = {"1": "tests/test_a.py", "2": "tests/test_b.py", "3": "tests -k test_c"}
BASE = {"working-directory": "suite", "install": "false"}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's suite: three test files, their snapshots, one unused snapshot."""
    folder = tmp_path_factory.mktemp("suite") / "suite"
    (folder / "tests").mkdir(parents=True)
    (folder / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n", encoding="utf-8")
    for name, text in TESTS.items():
        (folder / "tests" / name).write_text(text, encoding="utf-8")
    graph = nnviz.trace(nn.Linear(4, 2))
    for stem in (*STORED, "test_c/test_gone"):
        nnviz.save(graph, folder / "tests" / "__nnviz_snapshots__" / f"{stem}.json")
    return folder


def job(root: Path, suite: Path, inputs: dict[str, str]) -> SimulatedRunner:
    """One job on its own runner: a fresh checkout of the suite, a fake `gh`."""
    shutil.copytree(suite, root / "workspace" / "suite", dirs_exist_ok=True)
    env = fake_gh(root)
    return SimulatedRunner(root, {**BASE, **inputs}, PR_EVENT, [root / "bin"], env).run()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, suite: Path) -> dict[str, SimulatedRunner]:
    root = tmp_path_factory.mktemp("jobs")
    out = {"whole": job(root / "whole", suite, {})}
    for label, args in SHARDS.items():
        inputs = {"shard": label, "comment": "never", "pytest-args": args}
        out[label] = job(root / f"shard-{label}", suite, inputs)
    # The merge job downloads every shard's artifact into shards/<artifact name>/.
    merge_root = root / "merge"
    downloads = merge_root / "workspace" / "suite" / "shards"
    for label in SHARDS:
        (upload,) = out[label].uploads
        shutil.copytree(upload["path"], downloads / upload["name"])
    out["merge"] = job(merge_root, suite, {"merge": "shards"})
    return out


def report(runner: SimulatedRunner) -> DriftReport:
    return DriftReport.load(runner.outputs()["report-path"])


def without_run_shape(report: DriftReport) -> dict[str, object]:
    doc = report.model_dump(mode="json")
    for key in ("paths", "shards"):  # how it was run, not what it found
        doc["run"].pop(key)
    return doc


def test_the_merged_report_is_the_whole_runs(runs: dict[str, SimulatedRunner]) -> None:
    whole, merged = report(runs["whole"]), report(runs["merge"])
    assert (whole.summary.passed, whole.summary.drifted, whole.summary.missing) == (3, 1, 1)
    assert whole.unused == [GONE] and len(whole.drifts) == 1
    assert merged.run and merged.run.shards == 3
    assert without_run_shape(merged) == without_run_shape(whole)


def test_one_summary_one_comment_one_set_of_annotations(runs: dict[str, SimulatedRunner]) -> None:
    whole, merge = runs["whole"], runs["merge"]
    assert merge.summary.read_text(encoding="utf-8") == whole.summary.read_text(encoding="utf-8")
    body = (merge.root / "gh.log.body").read_text(encoding="utf-8")
    assert body == (whole.root / "gh.log.body").read_text(encoding="utf-8")
    assert "1 architecture drift" in body and "1 unused snapshot file(s)" in body
    assert merge.commands == whole.commands and any(c.startswith("::error") for c in merge.commands)
    (upload,) = merge.uploads
    assert upload["name"] == "nnviz-drift"
    assert {"report.json", "tests/test_a/test_two.new.json"} <= set(upload["files"].splitlines())
    # fail-on applies to the merged result exactly as to the whole run.
    for runner in (whole, merge):
        assert runner.step("Fail when the snapshot tests failed").returncode == 1


def test_shards_upload_one_artifact_each_and_report_nothing(
    runs: dict[str, SimulatedRunner],
) -> None:
    for label in SHARDS:
        shard = runs[label]
        (upload,) = shard.uploads
        assert upload["name"] == f"nnviz-drift-{label}"
        assert shard.summary.read_text(encoding="utf-8") == ""
        assert shard.commands == [] and not (shard.root / "gh.log").exists()
        assert report(shard).unused == []
    # Shard 1's drift is the merge job's to judge; shard 2's missing snapshot fails anywhere.
    assert runs["1"].step("Fail when the snapshot tests failed").returncode == 0
    assert runs["2"].step("Fail when the snapshot tests failed").returncode == 1
    assert not runs["3"].failed


def test_a_keyword_shard_without_the_others_judges_nothing(
    runs: dict[str, SimulatedRunner], tmp_path: Path
) -> None:
    """Shard 3 (`-k test_c`) saw test_gone.json unclaimed, but deselected tests only shard 2
    runs: merged without shard 2, nothing is called unused."""
    folders = [str(Path(runs[label].uploads[0]["path"])) for label in ("1", "3")]
    done = run_nnviz("report", "merge", *folders, "-o", str(tmp_path / "m"))
    assert done.returncode == 0, done.stderr
    assert "unused snapshots not judged: 2 test(s) deselected in every shard" in done.stdout
    merged = DriftReport.load(tmp_path / "m" / "report.json")
    assert merged.unused == [] and merged.summary.unused == 0


def test_merge_mode_without_shards_fails_clearly(tmp_path: Path, suite: Path) -> None:
    runner = job(tmp_path, suite, {"merge": "nowhere"})
    assert runner.failed and runner.uploads == []
    assert runner.commands[0].startswith("::error title=nnviz::no shard report under nowhere")
    summary = runner.summary.read_text(encoding="utf-8")
    assert (
        summary == "## nnviz: the shards' merge failed (status 2) before writing a drift report\n"
    )
