"""Shared fixtures: traced torchvision models are cached per session (tracing is the slow part)."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest

import nnviz
from nnviz.graph import Graph


@functools.cache
def traced(name: str, inputs: str | None = None, **args: object) -> Graph:
    """The full graph of a torchvision model (traced with data given `-i` text `inputs`),
    traced once per session; `args` are constructor arguments."""
    return nnviz.trace(name, args=dict(args) or None, inputs=inputs)


@pytest.fixture(scope="session")
def resnet18() -> Graph:
    return traced("resnet18")


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
