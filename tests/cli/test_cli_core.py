"""The `nnviz` command's core: snapshots, -a, -i, and bad input.

Every scenario runs the real command (`support.run_nnviz`) in its own folder, once for the
module; each test checks one scenario's result. Byte-identical snapshots across hash seeds need
cold processes (`heavy`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import run_nnviz, torch_blocker

FUTURE = (
    '{"format": "nnviz-graph", "version": 7, "meta": {}, "modules": [], "nodes": [], "edges": []}'
)


@dataclass
class Run:
    folder: Path
    returncode: int
    stdout: str
    stderr: str

    def doc(self, name: str) -> dict[str, Any]:
        return json.loads((self.folder / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _write_inputs(folder: Path) -> None:
    (folder / "raises.py").write_text("raise RuntimeError('broken at import')\n")
    (folder / "not_a_module.py").write_text("def make():\n    return [1, 2, 3]\n")
    (folder / "corrupt.json").write_text('{"format": "nnviz-graph", "version": 1, "nodes": [')
    (folder / "future.json").write_text(FUTURE)


# name -> arguments; every folder starts with the files `_write_inputs` makes
SCENARIOS: dict[str, list[str]] = {
    "seed0": ["resnet18", "-o", "r.json"],
    "num_classes": ["resnet18", "-a", "num_classes=10", "-o", "r.json"],
    "default_input": ["resnet18", "-i", "default", "-o", "r.json"],
    "failed_input": ["resnet18", "-i", "tensor1x3", "-o", "r.json"],
    "unknown_model": ["resnet19", "-o", "r.json"],
    "raises_at_import": ["raises.py:Net", "-o", "r.json"],
    "not_a_module": ["not_a_module.py:make", "-o", "r.json"],
    "corrupt_json": ["corrupt.json", "-o", "r.json"],
    "future_json": ["future.json", "-o", "r.json"],
    "malformed_input": ["resnet18", "-i", "imagex64", "-o", "r.json"],
    "unsafe_input": ["resnet18", "-i", "[__import__('os').system('touch pwned')]", "-o", "r.json"],
    "unknown_argument": ["resnet18", "-i", "pixels:image64", "-o", "r.json"],
    "snapshot_with_input": ["future.json", "-i", "default", "-o", "r.json"],
}


def _run(folder: Path, args: list[str], seed: str | None = None) -> Run:
    """`nnviz args` in `folder` (made with `_write_inputs`); with a hash `seed`, a cold process."""
    folder.mkdir(exist_ok=True)
    _write_inputs(folder)
    env = None if seed is None else {**os.environ, "PYTHONHASHSEED": seed}
    done = run_nnviz(*args, cwd=folder, env=env)
    return Run(folder, done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    return {name: _run(tmp_path_factory.mktemp(name), SCENARIOS[name]) for name in SCENARIOS}


def _ok(run: Run) -> None:
    assert run.returncode == 0, run.stderr


def test_snapshots_are_byte_identical_across_hash_seeds_and_round_trips(tmp_path: Path) -> None:
    # Without inputs, every classification model is checked across processes and hash seeds in
    # test_trace_determinism.py; here the command line, with shapes, under two seeds (cold
    # processes: `heavy`).
    first, second = (
        _run(tmp_path / seed, SCENARIOS["default_input"], seed=seed) for seed in ("0", "1")
    )
    _ok(first)
    _ok(second)
    assert (first.folder / "r.json").read_bytes() == (second.folder / "r.json").read_bytes()
    # Loading a snapshot and saving it again gives the same bytes: `nnviz r.json -o r2.json`.
    resaved = _run(tmp_path / "2", [str(first.folder / "r.json"), "-o", "r2.json"], seed="2")
    _ok(resaved)
    assert (resaved.folder / "r2.json").read_bytes() == (first.folder / "r.json").read_bytes()


def test_constructor_arguments(runs: dict[str, Run]) -> None:
    _ok(runs["num_classes"])
    modules = {m["path"]: m for m in runs["num_classes"].doc("r.json")["modules"]}
    assert modules["fc"]["hparams"]["out_features"] == 10
    assert modules["fc"]["parameters"] == {"weight": [10, 512], "bias": [10]}


def test_default_input_gives_every_edge_its_shape(runs: dict[str, Run]) -> None:
    run = runs["default_input"]
    _ok(run)
    doc = run.doc("r.json")
    specs = {n["id"]: n.get("spec") for n in doc["nodes"]}
    assert doc["meta"]["inputs"] == {
        "x": {"$tensor": {"dtype": "float32", "shape": [1, 3, 224, 224]}}
    }
    for edge in doc["edges"]:
        assert specs[edge["source"]] is not None, edge
    (into_fc,) = [e for e in doc["edges"] if e["target"] == "fc"]
    assert specs[into_fc["source"]] == {"$tensor": {"dtype": "float32", "shape": [1, 512]}}
    assert "Traceback" not in run.stderr


def test_a_model_that_rejects_the_input_warns_and_keeps_the_graph(runs: dict[str, Run]) -> None:
    run = runs["failed_input"]
    _ok(run)
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("nnviz: warning: data tracing with x=[1, 3] failed at conv1: ")
    assert lines[0].endswith("the graph has no shapes")
    doc = run.doc("r.json")
    assert doc["meta"]["inputs"] is None
    assert all("spec" not in node for node in doc["nodes"])


BAD: dict[str, Callable[[str], bool]] = {
    "unknown_model": lambda e: "unknown model 'resnet19'" in e and "did you mean resnet18" in e,
    "raises_at_import": lambda e: "raises.py failed: RuntimeError: broken at import" in e,
    "not_a_module": lambda e: "returned list, not a torch.nn.Module" in e,
    "corrupt_json": lambda e: "corrupt.json: not valid JSON" in e,
    "future_json": lambda e: "written by a newer nnviz (format version 7" in e,
    "malformed_input": lambda e: "-i: 'imagex64' is not an input form" in e,
    "unsafe_input": lambda e: "not allowed in an input expression" in e,
    "unknown_argument": lambda e: "forward() has no argument 'pixels' (its arguments: x)" in e,
    "snapshot_with_input": lambda e: "a snapshot cannot be traced with inputs" in e,
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_line_exit_2_and_no_file(name: str, runs: dict[str, Run]) -> None:
    run = runs[name]
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("nnviz: error: ")
    assert BAD[name](lines[0]), lines[0]
    assert "Traceback" not in run.stderr and run.stdout == ""
    written = {p.name for p in run.folder.iterdir()}
    assert written == {"raises.py", "not_a_module.py", "corrupt.json", "future.json"}


def test_a_snapshot_is_re_saved_by_the_command_without_torch(
    runs: dict[str, Run], tmp_path: Path
) -> None:
    """`nnviz r.json -o r2.json` in a process where importing torch fails."""
    blocker = torch_blocker(tmp_path)
    source = runs["default_input"].folder / "r.json"
    code = (
        "import sys; sys.path.insert(0, sys.argv.pop(1)); from nnviz.cli import main;"
        "sys.argv[0] = 'nnviz'; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(blocker), str(source), "-o", "r2.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r2.json").read_bytes() == source.read_bytes()
