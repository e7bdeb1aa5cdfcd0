"""Never silently weaker than asked: a snapshot call whose asked-for shapes or tracer cannot be
honoured fails with one line naming the input and where the model failed, and writes nothing."""

from __future__ import annotations

import pytest
from support import run

import nnviz

MODEL = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.stem(x).mean((2, 3)))


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            return self.lin(x)
        return x
"""


def _written(pytester: pytest.Pytester) -> list[str]:
    """Every file the plugin wrote for a call: snapshots and drift artifacts (not the session's
    report.json, which any session with a result writes)."""
    found = [
        *pytester.path.rglob("__nnviz_snapshots__/**/*"),
        *pytester.path.rglob(".nnviz-artifacts/**/*"),
    ]
    return sorted(
        str(p.relative_to(pytester.path)) for p in found if p.is_file() and p.name != "report.json"
    )


def test_inputs_that_cannot_run_fail_the_test_and_write_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        models=MODEL,
        test_asks="from models import Net\n\n"
        "def test_net(nnviz_snapshot):\n"
        "    nnviz_snapshot(Net(), inputs='tensor1x32')\n",
    )
    for args in (("--nnviz-update",), ()):
        result = run(pytester, *args)
        result.assert_outcomes(failed=1)
        failure = [line for line in result.outlines if line.startswith("nnviz: inputs=")]
        assert len(failure) == 1, result.outlines
        # the input as asked, the input as run, and the module it failed at, on one line
        assert "cannot be honoured: Net fails on x=" in failure[0]
        assert "at stem: RuntimeError" in failure[0]
        assert failure[0].endswith("nothing was written")
        assert "Traceback" not in result.stdout.str()
        assert _written(pytester) == []


def test_ini_inputs_are_asked_too_and_a_call_overrides_them(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nnnviz_inputs = tensor1x32\n")
    pytester.makepyfile(
        models=MODEL,
        test_asks="from models import Net\n\n"
        "def test_ini(nnviz_snapshot):\n"
        "    nnviz_snapshot(Net())\n\n"
        "def test_own(nnviz_snapshot):\n"
        "    nnviz_snapshot(Net(), inputs='image8')\n",
    )
    result = run(pytester, "--nnviz-update")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*nnviz: nnviz_inputs = tensor1x32 (ini) cannot be honoured: Net fails on x=* at stem: *"]
    )
    assert _written(pytester) == ["__nnviz_snapshots__/test_asks/test_own.json"]
    stored = nnviz.load(pytester.path / "__nnviz_snapshots__/test_asks/test_own.json")
    assert stored.meta["inputs"] == {"x": {"$tensor": {"shape": [1, 3, 8, 8], "dtype": "float32"}}}


def test_a_tracer_that_cannot_trace_fails_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        models=MODEL,
        test_asks="from models import Branchy, Net\n\n"
        "def test_fx(nnviz_snapshot):\n"
        "    nnviz_snapshot(Branchy(), inputs='tensor1x4', tracer='fx')\n\n"
        "def test_eager_without_input(nnviz_snapshot):\n"
        "    nnviz_snapshot(Net(), tracer='eager')\n\n"
        "def test_auto(nnviz_snapshot):\n"
        "    nnviz_snapshot(Branchy(), inputs='tensor1x4')\n",
    )
    result = run(pytester, "--nnviz-update")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        ["*nnviz: *Branchy* (the eager tracer can record it*nothing was written"]
    )
    result.stdout.fnmatch_lines(["*nnviz: the eager tracer runs Net: pass an example input*"])
    assert _written(pytester) == ["__nnviz_snapshots__/test_asks/test_auto.json"]


def test_a_graph_made_by_another_tracer_does_not_pass_for_the_asked_one(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nnnviz_tracer = fx\n")
    pytester.makepyfile(
        models=MODEL,
        test_asks="import nnviz\nfrom models import Branchy, Net\n\n"
        "def test_graph(nnviz_snapshot):\n"
        "    nnviz_snapshot(nnviz.trace(Branchy(), inputs='tensor1x4'))\n\n"
        "def test_fine(nnviz_snapshot):\n"
        "    nnviz_snapshot(Net())\n",
    )
    result = run(pytester, "--nnviz-update")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*nnviz: nnviz_tracer = fx (ini) cannot be honoured: "
            "the graph was made by the eager tracer*"
        ]
    )
    assert _written(pytester) == ["__nnviz_snapshots__/test_asks/test_fine.json"]


def test_an_unknown_ini_tracer_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nnnviz_tracer = jit\n")
    pytester.makepyfile(test_asks="def test_x(nnviz_snapshot):\n    pass\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*nnviz: unknown nnviz_tracer 'jit' (use auto, fx, eager, export)"]
    )


def test_asked_exportability_and_checkpoint_contract_fail_when_a_graph_lacks_them(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        models=MODEL,
        test_asks="import dataclasses\n"
        "import nnviz\n"
        "from models import Net\n\n"
        "def test_export(nnviz_snapshot):\n"
        "    nnviz_snapshot(nnviz.trace(Net()), exportable=True)\n\n"
        "def test_checkpoint(nnviz_snapshot):\n"
        "    graph = nnviz.trace(Net())  # as if built by hand: no state-dict keys recorded\n"
        "    modules = [dataclasses.replace(m, dtypes={}) for m in graph.modules.values()]\n"
        "    nnviz_snapshot(graph.replace(modules=modules), fail_on='checkpoint')\n",
    )
    result = run(pytester, "--nnviz-update")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*nnviz: exportable=True cannot be honoured: the graph records no exportability*"
            "nothing was written",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*nnviz: fail_on with checkpoint cannot be honoured: the graph was recorded without "
            "its state-dict keys; nothing was written"
        ]
    )
    assert _written(pytester) == []
