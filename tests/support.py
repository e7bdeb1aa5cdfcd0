"""Helpers shared by test files of every kind (`from support import ...`): traced models cached
per session, the real `nnviz` command, a folder that blocks torch, drift reports made from real
diffs of the ci-demo snapshot."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import os
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import nnviz
from nnviz.diffing.build import diff as graph_diff
from nnviz.driftreport import Drift, DriftReport, Summary
from nnviz.graph import Graph

REPO = Path(__file__).resolve().parent.parent


def strict_load(state: dict[str, Any], model: Any) -> bool:
    """Whether torch's own strict `load_state_dict` takes `state` into the `nn.Module` `model`:
    the ground truth of a checkpoint verdict."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        return False
    return True


@functools.cache
def traced(name: str, inputs: str | None = None, **args: object) -> Graph:
    """The full graph of a torchvision model (traced with data given `-i` text `inputs`),
    traced once per session; `args` are constructor arguments."""
    return nnviz.trace(name, args=dict(args) or None, inputs=inputs)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in-process in `pytester`'s folder with `args` (the nnviz plugin is active, as
    installed; hypothesis's plugin is off, so its output never mixes into what tests match, and
    anyio's, as in pyproject.toml)."""
    return pytester.runpytest_inprocess("-p", "no:hypothesispytest", "-p", "no:anyio", *args)


def run_nnviz(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, cold: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the real `nnviz` command (`nnviz.cli.main`) with `args` in `cwd`: in this process,
    as a cold process would see it (its own working folder, environment, stdout and stderr
    file descriptors, exit code), unless `cold` or `env` sets a `PYTHON*` variable (a hash
    seed, a torch-blocking path): then `python -m nnviz` in a subprocess."""
    env_changes = {k: v for k, v in (env or {}).items() if os.environ.get(k) != v}
    gone = [k for k in os.environ if env is not None and k not in env]
    if cold or any(k.startswith("PYTHON") for k in [*env_changes, *gone]):
        return subprocess.run(
            [sys.executable, "-m", "nnviz", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    with _IN_PROCESS, _environment(env), _working_folder(cwd), _own_modules():
        out, err, code = _captured(functools.partial(_main, args))
    return subprocess.CompletedProcess(["nnviz", *args], code, out, err)


_IN_PROCESS = threading.Lock()  # one in-process command at a time: folder, fds and env are global


def _main(args: tuple[str, ...]) -> int:
    from nnviz import collector
    from nnviz.cli import main

    saved, sys.argv = sys.argv, ["nnviz", *args]
    try:
        main()
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.argv = saved
        # `main` expects its process to end (`collector.ending`): this one goes on
        collector._ENDING[0] = False
        gc.unfreeze()
    return 0


def _captured(call: Callable[[], int]) -> tuple[str, str, int]:
    """`call()`'s exit code and what it wrote to stdout and stderr, at the file-descriptor level
    (Graphviz and subprocesses included), as text."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        saved_fds, saved_streams = (os.dup(1), os.dup(2)), (sys.stdout, sys.stderr)
        os.dup2(out.fileno(), 1), os.dup2(err.fileno(), 2)
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        try:
            code = call()
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            sys.stdout, sys.stderr = saved_streams
            for fd, saved in zip((1, 2), saved_fds, strict=True):
                os.dup2(saved, fd)
                os.close(saved)
        out.seek(0), err.seek(0)
        return out.read().decode(), err.read().decode(), code


@contextlib.contextmanager
def _environment(env: dict[str, str] | None) -> Iterator[None]:
    saved = dict(os.environ)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _working_folder(cwd: Path | None) -> Iterator[None]:
    saved = os.getcwd()
    os.chdir(cwd or saved)
    try:
        yield
    finally:
        os.chdir(saved)


@contextlib.contextmanager
def _own_modules() -> Iterator[None]:
    """Modules the run imported from files outside Python, the installed packages and nnviz (a
    user's model file in a test's folder) are forgotten afterwards, as a new process would."""
    before = set(sys.modules)
    try:
        yield
    finally:
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None)
            if file and not file.startswith(_INSTALLED):
                del sys.modules[name]


_INSTALLED = (
    *{sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")},
    str(REPO / "nnviz"),
    str(REPO / "pytest_nnviz"),
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
