"""Exportability as a guarded property: `nnviz_snapshot(model, inputs=..., exportable=True)`
(or the `nnviz_exportable` ini option) records whether torch.export succeeds, and a model that
stops exporting fails its snapshot test with the reason and its file:line."""

from __future__ import annotations

import pytest
from support import run

import nnviz
import nnviz.tracers.export  # torch.export with it, imported once for the same reason

MODEL = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x):
        y = self.proj(x)
{branch}
        return y.relu()
"""

BRANCH = """\
        if y.sum() > 0:
            y = -y"""

TESTS = """
from model import Net


def test_net(nnviz_snapshot):
    nnviz_snapshot(Net(), inputs="tensor2x4"{ask})
"""


# torch.export's lazy imports before any pytester run (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("exported_once")


def _write(pytester: pytest.Pytester, branch: str = "", ask: str = ", exportable=True") -> None:
    pytester.makepyfile(model=MODEL.format(branch=branch), test_net=TESTS.format(ask=ask))


def test_a_data_dependent_if_fails_the_snapshot_test_at_its_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(pytester)
    run(pytester, "--nnviz-update").assert_outcomes(passed=1)
    snapshot = pytester.path / "__nnviz_snapshots__/test_net/test_net.json"
    assert nnviz.load(snapshot).meta["export"] == {"ok": True}
    assert run(pytester).ret == 0

    _write(pytester, BRANCH)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.md"))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    line = MODEL.format(branch=BRANCH).strip().splitlines().index("        if y.sum() > 0:") + 1
    said = f"export: ok → fails at model.py:{line} (data-dependent branch on "
    result.stdout.fnmatch_lines([f"*{said}*)*"])
    assert said in (pytester.path / "summary.md").read_text()  # the PR comment says it too

    run(pytester, "--nnviz-update").assert_outcomes(passed=1)  # accepted: it fails, and says so
    stored = nnviz.load(snapshot)  # the graph is still there, from eager (fx cannot branch)
    assert stored.meta["tracer"] == "eager" and stored.node("proj").op == "torch.nn.Linear"
    assert stored.meta["export"]["where"] == f"model.py:{line}"
    _write(pytester)
    result = run(pytester)  # exportable again: a change the snapshot must take too
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*export: fails at model.py:{line} (*) → ok*"])


def test_the_ini_option_asks_and_a_snapshot_without_the_record_fails(
    pytester: pytest.Pytester,
) -> None:
    _write(pytester, ask="")
    run(pytester, "--nnviz-update").assert_outcomes(passed=1)  # recorded without exportability
    pytester.makeini("[pytest]\nnnviz_exportable = true\n")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*records no exportability, so it cannot guard it*"])
    run(pytester, "--nnviz-update").assert_outcomes(passed=1)
    assert run(pytester).ret == 0


def test_exportability_needs_an_input(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
        from torch import nn

        def test_plain(nnviz_snapshot):
            nnviz_snapshot(nn.Linear(2, 2), exportable=True)
        """
    )
    result = run(pytester, "--nnviz-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*found by exporting it: pass an example input*"])


def test_a_symbolic_batch_guards_the_same_snapshot_for_batch_1_and_8(
    pytester: pytest.Pytester,
) -> None:
    """`tensorB=1x4` then `tensorB=8x4`: the snapshot test passes on the bytes it stored; with
    plain numbers the batch size is a shape change."""

    def write(inputs: str) -> None:
        test = TESTS.format(ask="").replace('inputs="tensor2x4"', f'inputs="{inputs}"')
        pytester.makepyfile(model=MODEL.format(branch=""), test_net=test)

    write("tensorB=1x4")
    run(pytester, "--nnviz-update").assert_outcomes(passed=1)
    snapshot = pytester.path / "__nnviz_snapshots__/test_net/test_net.json"
    stored = snapshot.read_bytes()
    assert nnviz.load(snapshot).node("output").spec == {
        "$tensor": {"shape": ["B", 4], "dtype": "float32"}
    }
    write("tensorB=8x4")
    run(pytester).assert_outcomes(passed=1)
    run(pytester, "--nnviz-update").assert_outcomes(passed=1)
    assert snapshot.read_bytes() == stored
    write("tensor8x4")
    run(pytester).assert_outcomes(failed=1)
