"""Cost policy in the plugin: `fail_on='macs>+5%'` fails a change that adds 10 % compute and lets a
rename pass, the message and the PR comment show the figures; a `max_macs` budget; a cost that
cannot be known fails in one line."""

from __future__ import annotations

import json

import pytest
from support import run, run_nnviz

# Net(width, name): a 3 -> width conv (kernel 3) then a width -> 10 linear head, on 1x3x32x32.
# MACs: width*27*900 + width*10 = 24,310 per channel; width 10 -> 11 adds exactly 10 %.
MODEL = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width=10, head="head"):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        setattr(self, head, nn.Linear(width, 10))
        self.head_name = head

    def forward(self, x):
        return getattr(self, self.head_name)(self.pool(self.stem(x)).flatten(1))
"""


def _test(fail_on: str, **net: object) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in net.items())
    return (
        "from models import Net\n\n"
        "def test_net(nnviz_snapshot):\n"
        f"    nnviz_snapshot(Net({args}), inputs='image32', fail_on={fail_on!r})\n"
    )


def test_ten_percent_more_compute_fails_under_macs_5_and_a_rename_passes(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(models=MODEL, test_budgeted=_test("macs>+5%"))
    run(pytester, "--nnviz-update").assert_outcomes(passed=1)

    pytester.makepyfile(test_budgeted=_test("macs>+5%", width=11))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*compute 243 KMACs → 267 KMACs (+10.0%)*",
            "*fails the policy: macs +10.0% (243 KMACs → 267 KMACs; limit macs>+5%)*",
        ]
    )
    report = pytester.path / ".nnviz-artifacts" / "report.json"
    comment = run_nnviz("report", "show", str(report), "--format", "comment")
    assert "| compute (MACs) |" in comment.stdout
    assert "+24.3 KMACs (+10.0%)" in comment.stdout
    assert "moves compute by +10.0% (243 KMACs → 267 KMACs; warned above 10%)" not in (
        comment.stdout
    )  # exactly 10 %: the ⚠️ line is for moves above 10 %

    pytester.makepyfile(test_budgeted=_test("macs>+5%", head="classifier"))
    renamed = run(pytester)
    renamed.assert_outcomes(passed=1)  # a drift (reported) that the policy lets pass
    doc = json.loads(report.read_text())
    assert doc["drifts"][0]["diff"]["cost"]["new"]["macs"] == 10 * 24_310


def test_a_budget_fails_with_the_figure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        models=MODEL,
        test_max_macs="from models import Net\n\n"
        "def test_net(nnviz_snapshot):\n"
        "    nnviz_snapshot(Net(), inputs='image32', max_macs=200_000)\n",
    )
    result = run(pytester, "--nnviz-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*nnviz: Net needs 243 KMACs (243,100 MACs), over its budget max_macs=200000*by 21.6%*"]
    )


def test_a_cost_asked_for_without_inputs_fails_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        models=MODEL,
        test_unknown="from models import Net\n\n"
        "def test_net(nnviz_snapshot):\n"
        "    nnviz_snapshot(Net(), fail_on='macs>+5%')\n",
    )
    result = run(pytester, "--nnviz-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*nnviz: fail_on='macs>+5%' cannot be honoured: its cost needs example inputs*"]
    )
    assert not list(pytester.path.rglob("__nnviz_snapshots__/**/*.json"))


def test_a_cost_term_against_a_snapshot_without_cost_fails_in_one_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(models=MODEL, test_budgeted=_test("macs>+5%"))
    run(pytester, "--nnviz-update").assert_outcomes(passed=1)
    [stored] = pytester.path.rglob("__nnviz_snapshots__/**/*.json")
    doc = json.loads(stored.read_text())
    for node in doc["nodes"]:
        node.pop("cost", None)
    stored.write_text(json.dumps({**doc, "version": 3}))  # as an older nnviz wrote it
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*: cost unknown on the old side (format 3)", "*Re-record it*"])
