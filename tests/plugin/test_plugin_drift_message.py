"""The failure message for one changed conv in resnet18: short, naming the module and values."""

from __future__ import annotations

import pytest
import torchvision
from support import run

import nnviz

TESTS = """
import torch.nn as nn
import torchvision


def test_resnet18(nnviz_snapshot):
    model = torchvision.models.resnet18(weights=None)
    model.layer3[1].conv2 = nn.Conv2d(256, 256, kernel_size=5, padding=2, bias=False)
    nnviz_snapshot(model)
"""


def test_one_changed_conv(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_resnet=TESTS)
    snapshot = pytester.path / "__nnviz_snapshots__/test_resnet/test_resnet18.json"
    nnviz.save(nnviz.trace(torchvision.models.resnet18(weights=None)), snapshot)

    result = run(pytester)
    result.assert_outcomes(failed=1)
    message = [line for line in result.outlines if line.startswith("E ")]
    text = "\n".join(message)
    assert 3 <= len(message) < 15, text
    assert "layer3.1.conv2" in text
    assert "(3, 3)" in text and "(5, 5)" in text
    assert message[-1].endswith("pytest --nnviz-update test_resnet.py::test_resnet18")


def test_a_long_changelog_is_cut(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_deeper="""
        import torchvision


        def test_resnet(nnviz_snapshot):
            nnviz_snapshot(torchvision.models.resnet50(weights=None))
        """
    )
    snapshot = pytester.path / "__nnviz_snapshots__/test_deeper/test_resnet.json"
    nnviz.save(nnviz.trace(torchvision.models.resnet18(weights=None)), snapshot)

    result = run(pytester)
    result.assert_outcomes(failed=1)
    message = [line for line in result.outlines if line.startswith("E ")]
    assert len(message) < 16, "\n".join(message)
    cut = next(i for i, line in enumerate(message) if "more lines in report.json" in line)
    assert "params 11,689,512 → 25,557,032" in message[cut + 1]  # the changelog's totals line
    assert "checkpoint: breaks — 24 shape mismatches" in message[cut + 2]  # and the verdict
    assert message[-2].endswith("Review it with: nnviz review .nnviz-artifacts")
