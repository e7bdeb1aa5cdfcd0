"""`nnviz_snapshot(model, inputs=..., depth=...)`: shapes and collapsed depth are part of the
snapshot; the call returns the `GraphDiff` (falsy when identical)."""

from __future__ import annotations

import pytest
from support import run

import nnviz

TESTS = """
import torch.nn as nn
from nnviz.diffing.model import GraphDiff


def build(width=8):
    block = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 4))
    return nn.Sequential(block, nn.Tanh())


def test_options(nnviz_snapshot):
    same = nnviz_snapshot(build(), inputs="tensor2x4", name="shapes")
    assert isinstance(same, GraphDiff) and not same and same.identical
    nnviz_snapshot(build(), depth=1, name="top")
"""


def test_inputs_and_depth(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_opts=TESTS)
    result = run(pytester, "--nnviz-update")
    result.assert_outcomes(passed=1)
    folder = pytester.path / "__nnviz_snapshots__/test_opts"
    shapes = nnviz.load(folder / "test_options.shapes.json")
    assert shapes.node("0.2").spec == {"$tensor": {"shape": [2, 4], "dtype": "float32"}}
    top = nnviz.load(folder / "test_options.top.json")
    assert [n.id for n in top.nodes] == ["input:input", "0", "1", "output"]

    result = run(pytester)
    result.assert_outcomes(passed=1)

    # A hidden layer's width changes: the first call (with shapes) already fails the test.
    pytester.makepyfile(test_opts=TESTS.replace("width=8", "width=16"))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*drifted from __nnviz_snapshots__/test_opts/test_options.shapes.json"]
    )
