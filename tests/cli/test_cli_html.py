"""`-o x.html` from the command line: one self-contained file, from snapshots without torch,
opening at the view -d/-c/-l ask for."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import run_nnviz, torch_blocker, traced

import nnviz

RUN_CLI = (
    "import sys; sys.path.insert(0, sys.argv[1]); from nnviz.cli import main\n"
    "sys.argv = ['nnviz', *sys.argv[2:]]\n"
    "try:\n    main()\nexcept SystemExit as done:\n"
    "    assert 'torch' not in sys.modules, 'torch was imported'\n    raise\n"
)


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("html")
    old, new = folder / "old.json", folder / "new.json"
    nnviz.save(traced("resnet18"), old)
    nnviz.save(traced("resnet18", num_classes=10), new)
    return old, new


def view_of(page: Path) -> dict:
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in text
    assert not re.search(r"<(link|iframe|img)\b|<script[^>]*\bsrc=", text)  # nothing fetched
    found = re.search(r'<script type="application/json" id="nnviz-view">(.*?)</script>', text)
    assert found is not None
    return json.loads(found.group(1))


def test_snapshot_and_diff_pages_are_written_without_torch(
    snapshots: tuple[Path, Path], tmp_path: Path
) -> None:
    old, new = snapshots
    blocker = torch_blocker(tmp_path)
    for args, code in (([str(old), "-o", "r.html"], 0), (["diff", str(old), str(new)], 1)):
        if args[0] == "diff":
            args += ["-o", "d.html", "-q"]
        result = subprocess.run(
            [sys.executable, "-c", RUN_CLI, str(blocker), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == code, result.stderr
    model, diff = view_of(tmp_path / "r.html"), view_of(tmp_path / "d.html")
    assert model["title"] == "resnet18" and len(model["nodes"]) == len(traced("resnet18"))
    assert [c["name"] for c in diff["changes"]] == ["fc"]
    assert "params 11,689,512 → 11,181,642 (-507,870)" in diff["summary"]


def test_the_first_view_follows_depth_collapse_and_layer(
    snapshots: tuple[Path, Path], tmp_path: Path
) -> None:
    old, _ = snapshots

    def expanded(*options: str) -> list[str]:
        result = run_nnviz(str(old), "-o", "x.html", *options, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        view = view_of(tmp_path / "x.html")
        return sorted(view["modules"][k]["path"] for k in view["expanded"])

    assert expanded() == ["layer1", "layer2", "layer3", "layer4"]
    assert expanded("-d", "1") == []
    assert expanded("-c", "layer2") == ["layer1", "layer3", "layer4"]
    assert expanded("-l", "layer2", "-d", "1") == ["layer2"]
    result = run_nnviz(str(old), "-o", "x.html", "-c", "nope", cwd=tmp_path)
    assert result.returncode == 2 and "collapse prefix 'nope'" in result.stderr
