"""`fail_on="checkpoint"` (fixture argument, ini `nnviz_fail_on`): a drift fails its test only
when old checkpoints stop loading even with the key map; renames pass and stay in report.json;
a state-dict change the architecture diff does not see fails too; an older snapshot, whose
verdict cannot be told, fails with how to re-record it."""

from __future__ import annotations

import json

import pytest
from support import run

TESTS = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.fc = nn.Linear(8, 2)
        self.register_buffer("scale", torch.ones(2), persistent=True)

    def forward(self, x):
        return self.fc(self.body(x)) * self.scale


def test_net(nnviz_snapshot):
    nnviz_snapshot(Net(), fail_on="checkpoint")
"""


def test_renames_pass_and_breaks_fail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_net=TESTS)
    run(pytester, "--nnviz-update").assert_outcomes(passed=1)
    renamed = TESTS.replace("self.fc", "self.head")
    pytester.makepyfile(test_net=renamed)
    run(pytester).assert_outcomes(passed=1)  # a drift, but checkpoints load through the map
    report = json.loads((pytester.path / ".nnviz-artifacts/report.json").read_text())
    (drift,) = report["drifts"]
    assert drift["diff"]["checkpoint"]["verdict"] == "renames"
    pytester.makepyfile(test_net=TESTS.replace("nn.Linear(8, 2)", "nn.Linear(8, 3)"))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*checkpoint: breaks — 2 shape mismatches*"])


def test_a_state_dict_change_the_diff_does_not_see_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_net=TESTS.replace("persistent=True", "persistent=False"))
    run(pytester, "--nnviz-update").assert_outcomes(passed=1)
    pytester.makepyfile(test_net=TESTS.replace('fail_on="checkpoint"', ""))
    run(pytester).assert_outcomes(passed=1)  # the architecture is the same
    pytester.makepyfile(test_net=TESTS)  # but old checkpoints have no `scale`
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_net.json: old checkpoints break: 1 new key without old weights cannot be *",
            "*Re-record it with: pytest --nnviz-update test_net.py::test_net",
        ]
    )
    run(pytester, "--nnviz-update").assert_outcomes(passed=1)
    run(pytester).assert_outcomes(passed=1)


def test_an_older_snapshot_cannot_tell_and_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_net=TESTS)
    run(pytester, "--nnviz-update").assert_outcomes(passed=1)
    stored = pytester.path / "__nnviz_snapshots__/test_net/test_net.json"
    doc = json.loads(stored.read_text())
    doc["version"] = 3
    for module in doc["modules"]:
        for key in ("buffers", "dtypes", "extra_state"):
            module.pop(key, None)
    for node in doc["nodes"]:
        node.pop("cost", None)
    stored.write_text(json.dumps(doc))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*checkpoint verdict unknown: the old side is a format-3 snapshot*"]
    )
    run(pytester, "--nnviz-update").assert_outcomes(passed=1)
    run(pytester).assert_outcomes(passed=1)
