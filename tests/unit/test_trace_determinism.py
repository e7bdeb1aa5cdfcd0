"""Snapshots are canonical: every torchvision classification model gives byte-identical JSON in
another process with another PYTHONHASHSEED, and loading + saving reproduces the bytes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torchvision.models as tvm
from support import traced

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


class OtherProcess:
    """Snapshots of every classification model, written by another process with another hash
    seed while this one traces the same models."""

    def __init__(self, out: Path) -> None:
        self.out = out
        seed = "54321" if os.environ.get("PYTHONHASHSEED") == "12345" else "12345"
        self._process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(out), *CLASSIFICATION],
            env={**os.environ, "PYTHONHASHSEED": seed},
        )

    def snapshot(self, name: str) -> Path:
        """The other process's snapshot of `name`, as soon as it exists (saves are atomic)."""
        path = self.out / f"{name}.json"
        deadline = time.monotonic() + 900
        while not path.exists() and time.monotonic() < deadline:
            if self._process.poll() is not None:
                assert self._process.returncode == 0, "the writer process failed"
                break
            time.sleep(0.02)
        return path

    def close(self) -> None:
        if self._process.poll() is None:  # tests stopped early: stop the writer too
            self._process.kill()
        self._process.wait()


@pytest.fixture(scope="session")
def other_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtherProcess]:
    writer = OtherProcess(tmp_path_factory.mktemp("other-process"))
    yield writer
    writer.close()


def test_every_classification_model_is_covered() -> None:
    assert len(CLASSIFICATION) >= 80
    assert {"resnet18", "vit_h_14", "regnet_y_128gf", "maxvit_t", "swin_v2_b"} <= set(
        CLASSIFICATION
    )


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_snapshot_is_byte_identical_across_processes(
    name: str, other_process: OtherProcess
) -> None:
    graph = traced(name)
    text = snapshot.dumps(graph)
    path = other_process.snapshot(name)
    stored = path.read_text(encoding="utf-8")
    assert text == stored
    loaded = nnviz.load(path)
    assert loaded == graph
    assert snapshot.dumps(loaded) == stored
    # Nothing machine- or run-specific leaks into the file.
    assert "0x" not in text and str(Path.home()) not in text and " at " not in text
