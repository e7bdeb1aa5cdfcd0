"""An unreadable snapshot fails only its own test, clearly; `--nnviz-update` replaces it."""

from __future__ import annotations

import pytest
from support import run
from torch import nn

import nnviz

TESTS = """
import torch.nn as nn


def test_good(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(4, 2))


def test_not_json(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(4, 2))


def test_future(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(4, 2))


def test_empty(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(4, 2))
"""
BROKEN = {
    "test_not_json": '{"format": "nnviz-graph", "version": 1, "nodes": [',
    "test_future": '{"format": "nnviz-graph", "version": 99}',
    "test_empty": "",
}


def test_corrupt_snapshots(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_corrupt=TESTS)
    folder = pytester.path / "__nnviz_snapshots__" / "test_corrupt"
    graph = nnviz.trace(nn.Linear(4, 2))
    nnviz.save(graph, folder / "test_good.json")
    for test, text in BROKEN.items():
        (folder / f"{test}.json").write_text(text)

    result = run(pytester)
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines_random(
        [
            "E * nnviz: snapshot __nnviz_snapshots__/test_corrupt/test_not_json.json is "
            "unreadable: *not valid JSON*",
            "E * nnviz: snapshot __nnviz_snapshots__/test_corrupt/test_future.json is "
            "unreadable: *newer nnviz*",
            "E * Replace it with: pytest --nnviz-update test_corrupt.py::test_empty",
            "nnviz: 1 snapshot passed, 3 failed",
        ]
    )
    for test, text in BROKEN.items():
        assert (folder / f"{test}.json").read_text() == text  # nothing written without the flag

    result = run(pytester, "--nnviz-update")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["nnviz: 1 snapshot passed, 3 written"])
    for test in BROKEN:
        assert nnviz.load(folder / f"{test}.json") == graph
