"""Snapshots are canonical: every torchvision classification model gives byte-identical JSON in
another process with another PYTHONHASHSEED, and loading + saving reproduces the bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torchvision.models as tvm
from conftest import traced

import nnviz
from nnviz import snapshot

CLASSIFICATION = sorted(tvm.list_models(module=tvm))

_WRITER = """
import sys
import nnviz
out = sys.argv[1]
for name in sys.argv[2:]:
    nnviz.save(nnviz.trace(name), f"{out}/{name}.json")
"""


@pytest.fixture(scope="session")
def other_process(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Snapshots of every classification model written by another process, another hash seed."""
    out = tmp_path_factory.mktemp("other-process")
    seed = "54321" if os.environ.get("PYTHONHASHSEED") == "12345" else "12345"
    subprocess.run(
        [sys.executable, "-c", _WRITER, str(out), *CLASSIFICATION],
        env={**os.environ, "PYTHONHASHSEED": seed},
        check=True,
        timeout=900,
    )
    return out


def test_every_classification_model_is_covered() -> None:
    assert len(CLASSIFICATION) >= 80
    assert {"resnet18", "vit_h_14", "regnet_y_128gf", "maxvit_t", "swin_v2_b"} <= set(
        CLASSIFICATION
    )


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_snapshot_is_byte_identical_across_processes(name: str, other_process: Path) -> None:
    graph = traced(name)
    text = snapshot.dumps(graph)
    stored = (other_process / f"{name}.json").read_text(encoding="utf-8")
    assert text == stored
    loaded = nnviz.load(other_process / f"{name}.json")
    assert loaded == graph
    assert snapshot.dumps(loaded) == stored
    # Nothing machine- or run-specific leaks into the file.
    assert "0x" not in text and str(Path.home()) not in text and " at " not in text
