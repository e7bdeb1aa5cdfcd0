"""A suite run whole and as shards (by `-k`, by paths, by deselection), merged with
`nnviz report merge`: the merged report is the whole run's; a shard never decides, fails on or
deletes unused snapshots; a shard that cannot see the whole suite never yields a false "unused"."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from support import run, run_nnviz
from torch import nn

import nnviz
from nnviz.driftreport import DriftReport

TEST_A = """
import torch.nn as nn


def test_one(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(4, 2))


def test_two(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(4, 3))  # the stored snapshot has Linear(4, 2): a drift


def test_three(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(4, 2), name="head")
"""
TEST_B = """
import torch.nn as nn


def test_new(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(2, 2))  # no snapshot stored yet


def test_four(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(4, 2))
"""
SNAPS = "tests/__nnviz_snapshots__"
STORED = ("test_a/test_one.json", "test_a/test_two.json", "test_a/test_three.head.json")
STORED_B = ("test_b/test_four.json",)
GONE = f"{SNAPS}/test_a/test_gone.json"


@pytest.fixture
def suite(pytester: pytest.Pytester) -> Path:
    tests = pytester.mkdir("tests")
    (tests / "test_a.py").write_text(TEST_A, encoding="utf-8")
    (tests / "test_b.py").write_text(TEST_B, encoding="utf-8")
    graph = nnviz.trace(nn.Linear(4, 2))
    for name in (*STORED, *STORED_B, "test_a/test_gone.json"):
        nnviz.save(graph, tests / "__nnviz_snapshots__" / name)
    return pytester.path


def session(pytester: pytest.Pytester, out: str, *args: str) -> DriftReport:
    result = run(pytester, "--nnviz-artifacts", out, *args)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout
    return DriftReport.load(pytester.path / out / "report.json")


def merge(cwd: Path, out: str, *shards: str) -> DriftReport:
    result = run_nnviz("report", "merge", *shards, "-o", out, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return DriftReport.load(cwd / out / "report.json")


def comparable(report: DriftReport) -> dict[str, object]:
    """A report without what only says how it was run (paths and number of sessions)."""
    doc = report.model_dump(mode="json")
    assert doc["run"] is not None
    for key in ("paths", "shards"):
        doc["run"].pop(key)
    return doc


def test_three_shards_merge_into_the_whole_run(pytester: pytest.Pytester, suite: Path) -> None:
    whole = session(pytester, "whole", "tests")
    assert whole.unused == [GONE]
    assert (whole.summary.passed, whole.summary.drifted, whole.summary.missing) == (3, 1, 1)
    # Three shards, each its own way: a -k shard, a deselecting shard, a path shard.
    session(pytester, "s1", "tests/test_a.py", "--nnviz-shard", "-k", "one or two")
    # (this one under pytest-xdist: the workers' deselections reach the controller's record)
    deselect = ("--deselect", "tests/test_a.py::test_one")
    s2 = session(pytester, "s2", "tests/test_a.py", *deselect, "-n", "2")
    session(pytester, "s3", "tests/test_b.py", "--nnviz-shard")
    # The overlapping test (test_two, in s1 and s2) agrees; no shard decides alone.
    assert s2.unused == [] and s2.run is not None and GONE in (s2.run.unclaimed or [])
    assert s2.run.partial == ["1 test(s) deselected"]
    merged = merge(suite, "merged", "s1", "s2", "s3")
    assert merged.run is not None and merged.run.shards == 3 and merged.run.partial == []
    assert comparable(merged) == comparable(whole)
    # Every rendering of the merged report is the whole run's.
    for fmt in ("text", "markdown", "comment", "github"):
        args = ("report", "-f", fmt)
        one = run_nnviz(*args, "whole", cwd=suite).stdout.replace("whole/", "X/")
        assert run_nnviz(*args, "merged", cwd=suite).stdout.replace("merged/", "X/") == one
    # The drift's files came along, and review/accept work on the merged folder.
    pending = merged.drifts[0].pending
    assert pending and (suite / "merged" / pending).is_file()
    assert run_nnviz("review", "merged", cwd=suite).returncode == 0
    accepted = run_nnviz("accept", "merged", cwd=suite)
    assert accepted.returncode == 0 and "nnviz: 2 accepted" in accepted.stdout  # drift + new
    assert run(pytester, "tests/test_a.py", "-k", "two").ret == pytest.ExitCode.OK


def test_a_keyword_shard_alone_judges_no_file(pytester: pytest.Pytester, suite: Path) -> None:
    result = run(pytester, "--nnviz-artifacts", "k", "-k", "one")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*unused*")
    merged = merge(suite, "merged", "k")
    assert merged.unused == [] and merged.summary.unused == 0
    assert merged.run is not None and merged.run.unclaimed is None
    assert merged.run.partial == ["4 test(s) deselected in every shard"]
    assert (suite / GONE).is_file()


def test_a_shard_never_fails_or_deletes_for_unused_files(
    pytester: pytest.Pytester, suite: Path
) -> None:
    (suite / "tests" / "test_a.py").write_text(TEST_A.replace("(4, 3)", "(4, 2)"))
    result = run(pytester, "tests/test_a.py", "--nnviz-shard", "--nnviz-update")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*1 snapshot file(s) this shard did not use: recorded*"])
    assert (suite / GONE).is_file()
    report = DriftReport.load(suite / ".nnviz-artifacts" / "report.json")
    assert report.unused == [] and report.run and report.run.unclaimed == [GONE]


def test_a_failing_test_keeps_its_files_across_shards(
    pytester: pytest.Pytester, suite: Path
) -> None:
    """test_three fails before its snapshot call in the shard that runs it; the other shard,
    which deselected it, sees its file unclaimed: the merge keeps it."""
    failing = TEST_A.replace('    nnviz_snapshot(nn.Linear(4, 2), name="head")', "    assert 0")
    (suite / "tests" / "test_a.py").write_text(failing, encoding="utf-8")
    s1 = session(pytester, "s1", "tests", "--nnviz-shard", "-k", "not three")
    assert s1.run and f"{SNAPS}/test_a/test_three.head.json" in (s1.run.unclaimed or [])
    s2 = session(pytester, "s2", "tests", "--nnviz-shard", "-k", "three")
    assert s2.run and s2.run.kept == [f"{SNAPS}/test_a/test_three.head.json"]
    merged = merge(suite, "merged", "s1", "s2")
    assert merged.unused == [GONE]
    assert merged.summary.other_failures == 1


def test_remove_unused_from_the_merged_folder(pytester: pytest.Pytester, suite: Path) -> None:
    session(pytester, "s1", "tests", "--nnviz-shard", "-k", "test_a")
    session(pytester, "s2", "tests", "--nnviz-shard", "-k", "test_b")
    merge(suite, "merged", "s1", "s2")
    result = run_nnviz("accept", "merged", "--remove-unused", cwd=suite)
    assert f"removed unused {GONE}" in result.stdout
    assert not (suite / GONE).exists() and (suite / SNAPS / STORED[0]).is_file()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["tests/test_a.py::test_one"], "test ids given (tests/test_a.py::test_one)"),
        (["--lf"], "--lf (tests that passed last time were not collected)"),
    ],
    ids=["test-ids", "last-failed"],
)
def test_a_blind_shard_leaves_the_question_open(
    pytester: pytest.Pytester, suite: Path, args: list[str], reason: str
) -> None:
    """Test ids or --lf leave tests uncollected, not deselected: no merge may judge from them."""
    session(pytester, "s1", "tests", "-k", "test_b", "--nnviz-shard")
    blind = session(pytester, "s2", *args, "--nnviz-shard")
    assert blind.run and blind.run.unclaimed is None and reason in blind.run.partial
    merged = merge(suite, "merged", "s1", "s2")
    assert merged.unused == [] and merged.run and merged.run.unclaimed is None
    assert f"s2: {reason}" in merged.run.partial


def test_pytest_split_groups_merge_into_the_whole_run(
    pytester: pytest.Pytester, suite: Path
) -> None:
    """pytest-split's `--splits`/`--group`, as the README's matrix runs them: each group is a
    shard by itself (deselects the others' tests, calls nothing unused); the groups merge into
    the whole run; without one group the merge judges no file."""
    assert importlib.util.find_spec("pytest_split"), (
        "pytest-split is missing: pip install -e '.[dev]'"
    )
    whole = session(pytester, "whole", "tests")
    # (group 1 under pytest-xdist, as the README's matrix runs them: -n 2)
    xdist = {1: ("-n", "2")}
    groups = [
        session(pytester, f"g{g}", "tests", "--splits", "3", "--group", str(g), *xdist.get(g, ()))
        for g in (1, 2, 3)
    ]
    ran = [set(g.run.tests) for g in groups if g.run is not None]
    assert (
        len(ran) == 3 and all(ran) and set.union(*ran) == set(whole.run.tests if whole.run else ())
    )
    for g, group in enumerate(groups, 1):
        assert group.unused == [] and group.run is not None
        assert group.run.partial == [f"pytest-split group {g} of 3"]
    assert (suite / GONE).is_file()
    merged = merge(suite, "merged", "g1", "g2", "g3")
    assert merged.run is not None and merged.run.shards == 3 and merged.run.partial == []
    assert comparable(merged) == comparable(whole) and merged.unused == [GONE]
    lost = merge(suite, "lost", "g1", "g2")  # group 3 crashed before writing its report
    assert lost.unused == [] and lost.run is not None and lost.run.unclaimed is None
    summary = run_nnviz("report", "lost", "--format", "markdown", cwd=suite).stdout
    assert "Unused snapshots not judged: `1 test(s) deselected in every shard`." in summary
