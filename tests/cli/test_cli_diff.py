"""`nnviz diff OLD NEW`: real subprocesses, exit codes 0/1/2, the three formats, no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest
from support import run_nnviz, torch_blocker, traced

import nnviz

MODEL = """\
from torch import nn


def old():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 10))


def new():
    return nn.Sequential(nn.Conv2d(3, 8, 5), nn.GELU(), nn.Flatten(), nn.Linear(8, 10))
"""


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """resnet18, and resnet18 with 10 classes."""
    folder = tmp_path_factory.mktemp("snapshots")
    return (
        nnviz.save(traced("resnet18"), folder / "a.json"),
        nnviz.save(traced("resnet18", num_classes=10), folder / "b.json"),
    )


def test_identical_snapshots_exit_0_with_one_line(
    snapshots: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = snapshots
    copy = tmp_path / "copy.json"
    copy.write_bytes(a.read_bytes())
    out = tmp_path / "same.svg"
    result = run_nnviz("diff", str(a), str(copy), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "identical: no architecture changes (71 nodes, 11,689,512 params)\n"
    assert result.stderr == ""
    svg = out.read_text()
    assert "<svg" in svg and "identical" in svg
    for colour in ("#fb8500", "#1a7f37", "#cf222e", "#0969da"):  # nothing highlighted
        assert colour not in svg


def test_different_snapshots_exit_1_with_the_changelog(snapshots: tuple[Path, Path]) -> None:
    a, b = snapshots
    result = run_nnviz("diff", str(a), str(b))
    assert result.returncode == 1, result.stderr
    assert result.stdout == dedent("""\
        ~ fc  Linear  out_features 1000 → 10
        1 changed · params 11,689,512 → 11,181,642 (-507,870)
        checkpoint: breaks — 2 shape mismatches (fc.bias [1000] → [10], fc.weight [1000, 512] → [10, 512])
        """)  # noqa: E501


def test_json_format_is_the_documented_document(snapshots: tuple[Path, Path]) -> None:
    a, b = snapshots
    result = run_nnviz("diff", str(a), str(b), "--format", "json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["format"], doc["version"], doc["identical"]) == ("nnviz-diff", 2, False)
    (fc,) = [n for n in doc["nodes"] if n["status"] != "unchanged"]
    assert fc == {
        "name": "fc",
        "kind": "module",
        "path": "fc",
        "scope": "",
        "status": "changed",
        "changes": {
            "hparams.out_features": {"old": 1000, "new": 10},
            "parameters.bias": {"old": [1000], "new": [10]},
            "parameters.weight": {"old": [1000, 512], "new": [10, 512]},
        },
        "renamed_from": None,
        "op": "torch.nn.Linear",
        "params": 5130,
        "flow": True,
    }
    assert doc["summary"]["params"] == {"old": 11689512, "new": 11181642, "delta": -507870}
    assert {e["status"] for e in doc["edges"]} == {"unchanged"}


def test_markdown_format(snapshots: tuple[Path, Path]) -> None:
    a, b = snapshots
    result = run_nnviz("diff", str(a), str(b), "-f", "markdown")
    assert result.returncode == 1
    text = result.stdout
    assert text.startswith("### nnviz diff: `resnet18` → `resnet18`\n")
    assert "| changed | 1 |" in text
    assert "```diff\n~ fc  Linear  out_features 1000 → 10\n" in text
    assert "```mermaid\nflowchart TD\n" in text


def test_ignore_makes_a_difference_vanish(snapshots: tuple[Path, Path]) -> None:
    a, b = snapshots
    result = run_nnviz("diff", str(a), str(b), "--ignore", "out_features", "--ignore", "parameters")
    assert (result.returncode, result.stdout.split(":")[0]) == (0, "identical")


def test_an_unknown_ignore_field_is_an_error(snapshots: tuple[Path, Path]) -> None:
    a, b = snapshots
    result = run_nnviz("diff", str(a), str(b), "--ignore", "bogus")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "nnviz: error: unknown ignore field 'bogus': use one of class, kind, op, spec, called, "
        "hparams, parameters, args, inputs, a key below one (hparams.eps) or a key the models "
        "have (eps)\n"
    )


def test_model_specs_are_traced(tmp_path: Path) -> None:
    model = tmp_path / "model.py"
    model.write_text(MODEL)
    result = run_nnviz("diff", f"{model}:old", f"{model}:new")
    assert result.returncode == 1, result.stderr
    assert result.stdout == dedent("""\
        ~ 0  Conv2d  kernel_size (3, 3) → (5, 5)
        ~ 1  GELU  class ReLU → GELU (approximate='none', no inplace)
        2 changed · params 314 → 698 (+384)
        checkpoint: breaks — 1 shape mismatch (0.weight [8, 3, 3, 3] → [8, 3, 5, 5])
        """)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.json", "missing.json"], "missing.json: cannot read"),
        (["{a}", "{a}", "-o", "diff.xyz"], "unknown output format '.xyz'"),
        (["{a}", "missing.py:make"], "missing.py: no such file"),
    ],
)
def test_errors_exit_2_with_one_line(
    snapshots: tuple[Path, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    a, _ = snapshots
    result = run_nnviz("diff", *[x.format(a=a) for x in args], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("nnviz: error: ") and message in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_two_snapshots_never_import_torch(snapshots: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = snapshots
    blocker = torch_blocker(tmp_path)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from nnviz.cli import main\n"
        "sys.argv = ['nnviz', 'diff', *sys.argv[2:]]\n"
        "try:\n    main()\nexcept SystemExit as done:\n"
        "    assert 'torch' not in sys.modules, 'torch was imported'\n    raise\n"
    )
    out = tmp_path / "d.svg"
    result = subprocess.run(
        [sys.executable, "-c", code, str(blocker), str(a), str(b), "-o", str(out), "-f", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["summary"]["changed"] == 1
    assert "#fb8500" in out.read_text()


def test_snapshots_from_different_tracers_get_a_warning_only_when_they_differ(
    snapshots: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = snapshots
    for side in (a, b):
        graph = nnviz.load(side)
        nnviz.save(graph.replace(meta={**graph.meta, "tracer": "eager"}), tmp_path / side.name)
    same = run_nnviz("diff", str(a), str(tmp_path / a.name))
    assert same.returncode == 0, same.stderr
    assert same.stderr == ""  # identical: nothing for the tracers to explain
    differ = run_nnviz("diff", str(a), str(tmp_path / b.name))
    assert differ.returncode == 1, differ.stderr
    assert differ.stderr.startswith("nnviz: warning: ") and "traced with fx" in differ.stderr
    assert len(differ.stderr.splitlines()) == 1
    quiet = run_nnviz("diff", str(a), str(tmp_path / b.name), "-q")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (1, "", "")
