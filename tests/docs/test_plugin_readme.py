"""The README's "Guard your architecture in tests" example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torchvision  # noqa: F401  (likewise)
from support import run

import nnviz

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(language: str) -> str:
    section = README.read_text(encoding="utf-8").split("## Guard your architecture in tests")[1]
    match = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert match, f"no {language} block in the README section"
    return match.group(1)


CHANGE = """
    model = torchvision.models.resnet18(weights=None)
    model.layer3[1].conv2 = torch.nn.Conv2d(256, 256, kernel_size=5, padding=2, bias=False)
    nnviz_snapshot(model)
"""


def test_readme_example(pytester: pytest.Pytester) -> None:
    tests = pytester.mkdir("tests")
    example = readme_block("python")
    (tests / "test_architecture.py").write_text(example)
    snapshot = tests / "__nnviz_snapshots__/test_architecture/test_resnet18_architecture.json"

    result = run(pytester, "tests")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["E * pytest --nnviz-update tests/test_architecture.py::test_resnet18_architecture"]
    )
    result = run(pytester, "--nnviz-update", "tests")
    result.assert_outcomes(passed=1)
    assert "layer3.1.conv2" in nnviz.load(snapshot).modules
    result = run(pytester, "tests")
    result.assert_outcomes(passed=1)

    # The failure shown in the README is the real one.
    call = "    nnviz_snapshot(torchvision.models.resnet18(weights=None))\n"
    changed = "import torch\n" + example.replace(call, CHANGE)
    (tests / "test_architecture.py").write_text(changed)
    result = run(pytester, "tests")
    result.assert_outcomes(failed=1)
    shown = [" ".join(line.split()) for line in result.outlines if line.startswith("E ")]
    assert shown == [" ".join(line.split()) for line in readme_block("text").splitlines()]
