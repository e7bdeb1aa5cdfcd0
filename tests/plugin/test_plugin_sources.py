"""A changed op is annotated on the model-code line that calls it (`Graph.sources`, from every
tracer), in report.json and on GitHub, and its line is in the drift's interactive page; the line
is never part of the snapshot, so moving code is no drift."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from support import run

import nnviz
from nnviz.snapshot import dumps

MODEL = """
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x):
        y = self.proj(x)
{padding}        return x {op} y


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()

    def forward(self, x):
        return self.block(x).relu()
"""

TESTS = """
from model import Net


def test_net(nnviz_snapshot):
    nnviz_snapshot(Net(), inputs="tensor2x4", tracer="{tracer}")
"""


# torch.export's lazy imports before any pytester run (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("exported_once")


def _write(pytester: pytest.Pytester, tracer: str, op: str = "+", padding: str = "") -> int:
    """Writes the model and its test; returns the line of the `x {op} y` call."""
    text = MODEL.format(op=op, padding=padding)
    pytester.makepyfile(model=text, test_net=TESTS.format(tracer=tracer))
    lines = text.strip().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip().startswith("return x "))


@pytest.mark.parametrize("tracer", ["fx", "eager", "export"])
def test_a_changed_op_is_annotated_on_its_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tracer: str
) -> None:
    _write(pytester, tracer)
    run(pytester, "--nnviz-update").assert_outcomes(passed=1)
    snapshot = pytester.path / "__nnviz_snapshots__/test_net/test_net.json"
    stored = snapshot.read_bytes()

    moved = _write(pytester, tracer, padding="        # a comment moves the call down\n")
    run(pytester).assert_outcomes(passed=1)  # a line number is never compared
    assert moved > 0

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.md"))
    line = _write(pytester, tracer, op="*")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert snapshot.read_bytes() == stored
    warning = (
        f"::warning file=model.py,line={line},title=nnviz%3A the call of block.mul changed the"
    )
    assert any(out.startswith(warning) for out in result.outlines), result.outlines
    (report,) = pytester.path.rglob("report.json")
    (drift,) = json.loads(report.read_text())["drifts"]
    assert {"file": "model.py", "line": line, "modules": ["block.mul"], "what": "calls"} in drift[
        "sources"
    ]
    summary = (pytester.path / "summary.md").read_text()
    assert f"`model.py:{line}`" in summary and "makes the changed call of `block.mul`." in summary
    page = report.parent / drift["artifacts"]["html"]
    view = _view(page)
    (node,) = [n for n in view["nodes"] if n["id"] == "block.mul"]
    assert node["info"]["source"] == f"model.py:{line}"


REWIRED = """
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x):
        h = x.relu()
        return self.proj({given})
"""


def test_a_module_given_other_inputs_is_annotated_on_its_call(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`self.proj(x)` → `self.proj(h)`: the call changed, not `self.proj = nn.Linear(4, 4)`."""
    test = TESTS.format(tracer="eager")
    pytester.makepyfile(model=REWIRED.format(given="x"), test_net=test)
    run(pytester, "--nnviz-update").assert_outcomes(passed=1)
    pytester.makepyfile(model=REWIRED.format(given="h"))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    run(pytester).assert_outcomes(failed=1)
    (report,) = pytester.path.rglob("report.json")
    (drift,) = json.loads(report.read_text())["drifts"]
    line = REWIRED.strip().splitlines().index("        return self.proj({given})") + 1
    assert drift["sources"] == [
        {"file": "model.py", "line": line, "modules": ["proj"], "what": "calls"}
    ]


def _view(page: Path) -> dict:
    text = page.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="nnviz-view">(.*?)</script>', text)
    assert found is not None
    return json.loads(found.group(1))


def _traced(pytester: pytest.Pytester, tracer: str) -> nnviz.Graph:
    """`model.py`'s Net as written now (imported afresh as `model`), traced by `tracer`."""
    spec = importlib.util.spec_from_file_location("model", pytester.path / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return nnviz.trace(module.Net(), inputs="tensor2x4", tracer=tracer)


@pytest.mark.parametrize("tracer", ["fx", "eager", "export"])
def test_a_snapshot_with_other_source_lines_is_identical(
    pytester: pytest.Pytester, tracer: str
) -> None:
    """Moving code moves every recorded line, and changes not one byte of the snapshot."""
    line = _write(pytester, tracer)
    before = _traced(pytester, tracer)
    moved = _write(pytester, tracer, padding="        # a comment\n        # moves it down\n")
    after = _traced(pytester, tracer)
    assert (before.sources["block.add"].line, after.sources["block.add"].line) == (line, moved)
    assert moved == line + 2
    assert before.sources["block.proj"].line == after.sources["block.proj"].line
    assert before.sources != after.sources
    assert dumps(before) == dumps(after)
    assert before == after and nnviz.diff(before, after).identical


@pytest.mark.parametrize("tracer", ["fx", "eager", "export"])
def test_the_model_page_shows_where_each_call_is_written(
    pytester: pytest.Pytester, tracer: str
) -> None:
    line = _write(pytester, tracer)
    nnviz.draw(_traced(pytester, tracer), pytester.path / "net.html")
    shown = {n["id"]: n["info"].get("source") for n in _view(pytester.path / "net.html")["nodes"]}
    assert shown["block.add"] == f"model.py:{line}"
    assert shown["block.proj"] == f"model.py:{line - 1}"  # `y = self.proj(x)`
    assert shown["input:x"] is None


def test_sources_are_never_saved_nor_compared(pytester: pytest.Pytester) -> None:
    line = _write(pytester, "eager")
    graph = _traced(pytester, "eager")
    assert str(graph.sources["block.add"]) == f"model.py:{line}"
    bare = nnviz.Graph(graph.nodes, graph.edges, graph.modules.values(), graph.meta)
    assert bare.sources == {} and bare == graph
    saved, unsaved = pytester.path / "a.json", pytester.path / "b.json"
    nnviz.save(graph, saved)
    nnviz.save(bare, unsaved)
    assert saved.read_bytes() == unsaved.read_bytes()
    loaded = nnviz.load(saved)
    assert loaded == graph and loaded.sources == {}
