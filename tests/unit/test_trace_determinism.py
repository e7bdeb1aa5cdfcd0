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
for line in sys.stdin:
    name = line.strip()
    nnviz.save(nnviz.trace(name), f"{out}/{name}.json")
"""


class OtherProcess:
    """Snapshots of classification models, written by another process with another hash seed.

    The writer traces a model when a test asks for it, while the test traces it here: under
    pytest-xdist each worker's writer traces only that worker's share of the models.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        seed = "54321" if os.environ.get("PYTHONHASHSEED") == "12345" else "12345"
        self._process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(out)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            stdin=subprocess.PIPE,
            text=True,
        )

    def request(self, name: str) -> None:
        """Ask the writer to trace `name` (it works through requests in order)."""
        assert self._process.stdin is not None
        self._process.stdin.write(f"{name}\n")
        self._process.stdin.flush()

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
        if self._process.stdin is not None:
            self._process.stdin.close()  # the writer ends after its last request
        try:
            self._process.wait(timeout=120)  # at most the trace in flight
        except subprocess.TimeoutExpired:
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
    other_process.request(name)  # both processes trace at once
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
