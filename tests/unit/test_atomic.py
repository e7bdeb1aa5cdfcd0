"""Nothing lost: every write is atomic. A run that fails between writing and renaming leaves the
old file byte-identical and no temporary file behind; writers racing on one path never interleave.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import traced

from nnviz import fs, snapshot
from nnviz.driftreport import DriftReport
from nnviz.errors import NNVizError
from nnviz.graph import Graph
from nnviz.render import render, to_dot

OLD = b"the previous output\n"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _failing_replace(src: object, dst: object) -> None:
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("writer", ["atomic_write", "snapshot", "render", "drift_report"])
def test_a_failed_rename_keeps_the_old_file_and_leaves_no_temp(
    writer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resnet18: Graph
) -> None:
    target = tmp_path / ("out.svg" if writer == "render" else "out.json")
    target.write_bytes(OLD)
    monkeypatch.setattr(fs.os, "replace", _failing_replace)
    with pytest.raises(fs.OutputError) as caught:
        if writer == "atomic_write":
            fs.atomic_write(target, "new")
        elif writer == "snapshot":
            snapshot.save(resnet18, target)
        elif writer == "render":
            render(to_dot(resnet18), target)
        else:
            DriftReport().save(target)
    assert isinstance(caught.value, NNVizError) and isinstance(caught.value, OSError)
    assert str(caught.value) == (
        f"cannot write {target}: No space left on device; choose another output path"
    )
    assert target.read_bytes() == OLD
    assert _leftovers(tmp_path) == []


def test_an_interrupt_while_writing_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(OLD)

    def interrupted(fd: int, mode: str) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(fs.os, "fdopen", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fs.atomic_write(target, "new")
    assert target.read_bytes() == OLD and _leftovers(tmp_path) == []


def test_a_cli_run_that_fails_before_the_rename_keeps_the_old_drawing(tmp_path: Path) -> None:
    source = snapshot.save(traced("resnet18"), tmp_path / "r.json")
    out = tmp_path / "r.svg"
    out.write_bytes(OLD)
    # The real command, with the rename failing as a full disk would make it fail.
    code = (
        "import os, sys\n"
        "def replace(src, dst):\n"
        "    raise OSError(28, 'No space left on device')\n"
        "os.replace = replace\n"
        "from nnviz.cli import main\n"
        "sys.argv = ['nnviz', *sys.argv[1:]]\n"
        "main()\n"
    )
    for args in ([str(source), "-o", str(out)], ["diff", str(source), str(source), "-o", str(out)]):
        done = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines() == [
            f"nnviz: error: cannot write {out}: No space left on device; choose another output path"
        ]
        assert out.read_bytes() == OLD
        assert _leftovers(tmp_path) == []


def test_a_cli_run_whose_graphviz_fails_keeps_the_old_drawing(tmp_path: Path) -> None:
    source = snapshot.save(traced("resnet18"), tmp_path / "r.json")
    out = tmp_path / "r.pdf"
    out.write_bytes(OLD)
    env = {**os.environ, "PATH": str(tmp_path)}  # no `dot` on PATH for the system engine
    done = subprocess.run(
        [sys.executable, "-m", "nnviz", str(source), "-o", str(out), "--engine", "system"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("nnviz: error: the system Graphviz `dot` is not on PATH")
    assert out.read_bytes() == OLD and _leftovers(tmp_path) == []


def test_a_rewrite_keeps_the_file_permissions(tmp_path: Path) -> None:
    private = tmp_path / "private.json"
    private.write_text("{}")
    private.chmod(0o600)
    fs.atomic_write(private, "new")
    assert private.read_text() == "new" and (private.stat().st_mode & 0o777) == 0o600
    fresh = fs.atomic_write(tmp_path / "fresh.json", "x")
    assert fresh.stat().st_mode & 0o777 == 0o644


# --- racing writers ------------------------------------------------------------------------------


def _documents() -> list[str]:
    """Complete documents of very different sizes, so a torn write could not pass for one."""
    return [
        json.dumps({"writer": i, "payload": chr(ord("a") + i) * (size * 1024)})
        for i, size in enumerate((1, 300, 900, 64))
    ]


def _hammer(path: str, text: str, times: int) -> None:
    for _ in range(times):
        fs.atomic_write(path, text)


def test_racing_writers_never_interleave(tmp_path: Path) -> None:
    """Processes (as pytest-xdist workers are) writing one path at once: every read sees one
    complete document, and no temporary file is left."""
    target = tmp_path / "shared.json"
    documents = _documents()
    fs.atomic_write(target, documents[0])
    context = multiprocessing.get_context("spawn" if sys.platform == "win32" else "fork")
    workers = [context.Process(target=_hammer, args=(str(target), text, 60)) for text in documents]
    for worker in workers:
        worker.start()
    seen: set[int] = set()
    while any(worker.is_alive() for worker in workers):
        text = target.read_text(encoding="utf-8")
        assert text in documents  # complete, and exactly one writer's
        seen.add(json.loads(text)["writer"])
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    assert target.read_text(encoding="utf-8") in documents
    assert len(seen) >= 2  # the reader really did see the writers race
    assert _leftovers(tmp_path) == []


def _save_snapshot(path: str, times: int) -> None:
    graph = traced("resnet18") if times % 2 else traced("resnet18", num_classes=10)
    for _ in range(times):
        snapshot.save(graph, path)


def test_racing_snapshot_saves_always_load(tmp_path: Path) -> None:
    """As the pytest plugin's workers save snapshots: a reader always loads a valid graph."""
    target = tmp_path / "model.json"
    expected = {
        snapshot.dumps(traced("resnet18")),
        snapshot.dumps(traced("resnet18", num_classes=10)),
    }
    snapshot.save(traced("resnet18"), target)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_save_snapshot, args=(str(target), n)) for n in (41, 40)]
    for worker in workers:
        worker.start()
    loads = 0
    while any(worker.is_alive() for worker in workers):
        text = target.read_text(encoding="utf-8")
        assert text in expected
        snapshot.loads(text)
        loads += 1
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    assert loads > 0 and _leftovers(tmp_path) == []
