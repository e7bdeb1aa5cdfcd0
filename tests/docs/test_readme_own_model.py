"""The README's "Your own model" layout works as shown: a model file at the project's root, the
`pythonpath` ini option, a snapshot test importing the model."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from support import NET, run

README = Path(__file__).resolve().parents[2] / "README.md"


def own_model_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("### Your own model")[1].split("\n## ")[0]


def test_the_own_model_layout_runs_as_shown(pytester: pytest.Pytester) -> None:
    section = own_model_section()
    layout = re.search(r"```text\n(.*?)```", section, re.DOTALL)
    test = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert layout and test
    ini = re.search(r"pyproject\.toml\s+# (\[tool\.pytest\.ini_options\]) (.*)", layout[1])
    assert ini, "the layout names the pytest option"
    pytester.makefile(".toml", pyproject=f"{ini[1]}\n{ini[2]}\n")
    model_file = re.search(r"(\w+)\.py\s+# class (\w+)\(nn\.Module\)", layout[1])
    assert model_file and f"from {model_file[1]} import {model_file[2]}" in test[1]
    (pytester.path / f"{model_file[1]}.py").write_text(NET)
    tests = pytester.mkdir("tests")
    (tests / "test_architecture.py").write_text(test[1])
    try:
        args = ("-p", "no:cacheprovider")
        result = run(pytester, *args, "--nnviz-update")
        result.assert_outcomes(passed=1)
        snapshots = tests / "__nnviz_snapshots__" / "test_architecture"
        assert [p.name for p in snapshots.iterdir()] == ["test_net_architecture.json"]
        run(pytester, *args).assert_outcomes(passed=1)
    finally:
        sys.modules.pop(model_file[1], None)
