"""Helpers shared by test files of every kind (`from support import ...`): traced models cached
per session, the real `nnviz` command, a folder that blocks torch, drift reports made from real
diffs of the ci-demo snapshot."""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nnviz
from nnviz.diffing.build import diff as graph_diff
from nnviz.driftreport import Drift, DriftReport, Summary
from nnviz.graph import Graph

REPO = Path(__file__).resolve().parent.parent


@functools.cache
def traced(name: str, inputs: str | None = None, **args: object) -> Graph:
    """The full graph of a torchvision model (traced with data given `-i` text `inputs`),
    traced once per session; `args` are constructor arguments."""
    return nnviz.trace(name, args=dict(args) or None, inputs=inputs)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in-process in `pytester`'s folder with `args` (the nnviz plugin is active, as
    installed; hypothesis's plugin is off, so its output never mixes into what tests match)."""
    return pytester.runpytest_inprocess("-p", "no:hypothesispytest", *args)


def run_nnviz(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    """Run the real `nnviz` command in a subprocess; return the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "nnviz", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def torch_blocker(folder: Path) -> Path:
    """A folder that, first on `sys.path`/`PYTHONPATH`, makes `import torch` (and torchvision)
    fail: for proving that a path of nnviz never imports torch."""
    blocker = folder / "torch-blocker"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch is blocked in this test')\n")
    (blocker / "torchvision.py").write_text("raise ImportError('torchvision is blocked')\n")
    return blocker


# --- drift reports ---

DEMO = REPO / "examples" / "ci-demo"
DEMO_SNAPSHOT = (
    DEMO / "tests" / "__nnviz_snapshots__" / "test_demo" / "test_tinynet_architecture.json"
)
CONVS = ("features.0", "features.3")


@functools.cache
def diff_doc(changed: int = 1, kernel: int = 5) -> dict[str, Any]:
    """The diff document of the demo model with `changed` convolutions' kernel_size edited."""
    old = nnviz.load(DEMO_SNAPSHOT)
    modules = []
    for module in old.modules.values():
        if module.path in CONVS[:changed]:
            hparams = {**module.hparams, "kernel_size": {"$tuple": [kernel, kernel]}}
            module = dataclasses.replace(module, hparams=hparams)
        modules.append(module)
    return graph_diff(old, old.replace(modules=modules)).to_dict()


def make_drift(index: int, changed: int = 1, file: str = "tests/test_models.py") -> Drift:
    return Drift(
        nodeid=f"{file}::test_model_{index:02d}",
        file=file,
        line=10 + index,
        snapshot=f"tests/__nnviz_snapshots__/test_models/test_model_{index:02d}.json",
        digest="sha256:" + "0" * 64,
        artifacts={
            "pdf": f"tests/test_models/test_model_{index:02d}.diff.pdf",
            "new": f"tests/test_models/test_model_{index:02d}.new.json",
        },
        diff=diff_doc(changed),
    )


def make_report(drifts: list[Drift], unused: list[str] | None = None) -> DriftReport:
    summary = Summary(passed=3, drifted=len(drifts), unused=len(unused or []))
    return DriftReport(summary=summary, drifts=drifts, unused=unused or [])


# A user's own model file (mymodel.py) for the first-hour and README tests.
NET = """\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)
"""
