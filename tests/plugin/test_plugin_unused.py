"""Unused snapshot files: reported on full runs, fail the session unless warned only, deleted
by `--nnviz-update`; never reported under -k, node-id selection, or for skipped tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import run
from torch import nn

import nnviz

TESTS = """
import pytest
import torch.nn as nn


def test_used(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(4, 2))


def test_plain():
    pass


@pytest.mark.skip(reason="not today")
def test_skipped(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(4, 2))
"""
FOLDER = "__nnviz_snapshots__/test_u"
KEPT = ("test_used.json", "test_skipped.json")
UNUSED = ("test_gone.json", "test_used.extra.json")


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(test_u=TESTS)
    graph = nnviz.trace(nn.Linear(4, 2))
    for name in (*KEPT, *UNUSED):
        nnviz.save(graph, pytester.path / FOLDER / name)
    return pytester.path / FOLDER


def test_unused_fail_the_session(pytester: pytest.Pytester, project: Path) -> None:
    result = run(pytester)
    result.assert_outcomes(passed=2, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "nnviz: 1 snapshot passed, 2 unused",
            f"unused snapshot: {FOLDER}/test_gone.json",
            f"unused snapshot: {FOLDER}/test_used.extra.json",
            "delete them with: pytest --nnviz-update",
        ]
    )
    result.stdout.no_fnmatch_line("*test_skipped.json*")  # its test was skipped: not judged
    assert sorted(p.name for p in project.iterdir()) == sorted((*KEPT, *UNUSED))


def test_unused_merged_from_xdist_workers(pytester: pytest.Pytester, project: Path) -> None:
    result = run(pytester, "-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["nnviz: 1 snapshot passed, 2 unused"])


def test_warn_only(pytester: pytest.Pytester, project: Path) -> None:
    result = run(pytester, "--nnviz-warn-unused")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["nnviz: 1 snapshot passed, 2 unused", "*warning only*"])


@pytest.mark.parametrize(
    "selection",
    [["-k", "used"], ["test_u.py::test_used"], ["--lf"], ["--collect-only"]],
    ids=["keyword", "nodeid", "last-failed", "collect-only"],
)
def test_partial_runs_do_not_judge(
    pytester: pytest.Pytester, project: Path, selection: list[str]
) -> None:
    result = run(pytester, *selection)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*unused*")
    assert sorted(p.name for p in project.iterdir()) == sorted((*KEPT, *UNUSED))


def test_update_deletes_them(pytester: pytest.Pytester, project: Path) -> None:
    result = run(pytester, "--nnviz-update")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["nnviz: 1 snapshot passed, 2 unused (deleted)"])
    assert sorted(p.name for p in project.iterdir()) == sorted(KEPT)
