"""`nnviz MODEL --tracer export`, the real command: a named size stays a symbol in the
snapshot, the fx tracer refuses one, and a model torch.export cannot take stops with one line
naming the user's file:line (exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run_nnviz

MODEL = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.proj = nn.Linear(8, 8)

    def forward(self, x):
        y = self.proj(self.embed(x).flatten(2).transpose(1, 2))
{branch}        return y
"""

BRANCH = "        if y.sum() > 0:  # data-dependent\n            y = -y\n"

SCENARIOS = {
    "symbolic": ["net.py:Net", "--tracer", "export", "-i", "tensorBx3x16x16", "-o", "n.json"],
    "fx_refuses": ["net.py:Net", "--tracer", "fx", "-i", "tensorBx3x16x16", "-o", "n.json"],
    "fails": ["net.py:Net", "--tracer", "export", "-i", "tensor2x3x16x16", "-o", "n.json"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int, str]]:
    def run(name: str) -> tuple[Path, int, str]:
        folder = tmp_path_factory.mktemp(name)
        (folder / "net.py").write_text(MODEL.format(branch=BRANCH if name == "fails" else ""))
        done = run_nnviz(*SCENARIOS[name], cwd=folder)
        return folder, done.returncode, done.stderr

    return {name: run(name) for name in SCENARIOS}


def test_a_named_size_is_recorded_as_its_name(runs: dict[str, tuple[Path, int, str]]) -> None:
    folder, code, stderr = runs["symbolic"]
    assert code == 0, stderr
    doc = json.loads((folder / "n.json").read_text())
    assert doc["meta"]["tracer"] == "export"
    specs = {n["id"]: n.get("spec") for n in doc["nodes"]}
    assert specs["input:x"] == {"$tensor": {"dtype": "float32", "shape": ["B", 3, 16, 16]}}
    assert specs["output"] == {"$tensor": {"dtype": "float32", "shape": ["B", 16, 8]}}


def test_fx_refuses_a_named_size_in_one_line(runs: dict[str, tuple[Path, int, str]]) -> None:
    folder, code, stderr = runs["fx_refuses"]
    assert code == 2
    assert len(stderr.splitlines()) == 1 and "only the export tracer keeps it" in stderr
    assert not (folder / "n.json").exists()


def test_a_model_export_cannot_take_stops_at_its_line(
    runs: dict[str, tuple[Path, int, str]],
) -> None:
    folder, code, stderr = runs["fails"]
    lines = MODEL.format(branch=BRANCH).splitlines()  # as written, its first line empty
    line = lines.index("        if y.sum() > 0:  # data-dependent") + 1
    assert code == 2
    assert len(stderr.splitlines()) == 1, stderr
    assert f"net.py:{line}" in stderr and "data-dependent branch" in stderr
    assert "Traceback" not in stderr and not (folder / "n.json").exists()
