"""Every bad input to the real `nnviz` command ends the same way: ONE line on stderr
(`nnviz: error: <what was wrong and what to do>`), exit code 2, no traceback, nothing on stdout,
no file written; `--debug` adds the traceback and keeps exit code 2."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support import REPO, run_nnviz, traced

from nnviz import snapshot

MODELS = """\
from torch import nn


def not_a_module():
    return [1, 2]


def raises():
    raise ValueError("bad width")


class Boom(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        raise RuntimeError("forward exploded")


def boom():
    return Boom()
"""

# name: (arguments, text the one error line must contain)
CASES: dict[str, tuple[list[str], str]] = {
    "unknown_model": (["resnet19"], "unknown model 'resnet19'"),
    "empty_model": ([""], "empty MODEL: give a torchvision name"),
    "missing_package": (
        ["nope.mod:make"],
        "cannot import 'nope.mod': No module named 'nope' (looked in the current folder and the "
        "installed packages; or give a file: path/to/file.py:make)",
    ),
    "file_without_callable": (["models.py"], "name the callable too, as models.py:make_model"),
    "missing_file": (["missing.py:make"], "missing.py: no such file"),
    "missing_callable": (
        ["models.py:nothing"],
        "models.py has no 'nothing' (callables defined there: Boom, boom, not_a_module, raises)",
    ),
    "bad_spec": ([":make"], "expected MODULE:CALLABLE or FILE.py:CALLABLE"),
    "raises_at_import": (["raises.py:make"], "importing raises.py failed: RuntimeError: broken"),
    "not_a_module": (
        ["models.py:not_a_module"],
        "models.py:not_a_module returned list, not a torch.nn.Module",
    ),
    "constructor_raises": (["models.py:raises"], "models.py:raises raised ValueError: bad width"),
    "forward_raises": (
        ["models.py:boom", "-i", "tensor2x4"],
        "running boom on the example inputs failed: RuntimeError: forward exploded",
    ),
    "unknown_option": (["good.json", "--frob"], "No such option '--frob'; see `nnviz draw"),
    "unknown_global_option": (["--frob"], "No such option '--frob'"),
    "depth_not_a_number": (["good.json", "-d", "x"], "'x' is not a valid integer"),
    "depth_negative": (["good.json", "-d", "-5"], "depth -5: use -1 (fully expanded) or"),
    "unknown_layer": (["good.json", "-l", "nope"], "layer 'nope': no such module in resnet18"),
    "unknown_tracer": (["good.json", "--tracer", "z"], "'z' is not one of 'auto', 'fx', 'eager'"),
    "output_folder_is_a_file": (
        ["good.json", "-o", "afile/out.pdf"],
        "cannot write afile/out.pdf: a file is in the way of its folder",
    ),
    "output_is_a_folder": (["good.json", "-o", "folder.json"], "'folder.json' is a directory"),
    "unknown_extension": (["good.json", "-o", "r.xyz"], "unknown output format '.xyz'"),
    "unreadable_snapshot": (["folder.json"], "folder.json: cannot read (Is a directory)"),
    "missing_snapshot": (["missing.json"], "missing.json: cannot read (No such file"),
    "corrupt_snapshot": (["corrupt.json"], "corrupt.json: not valid JSON"),
    "bad_argument": (["good.json", "-a", "3=x"], "expected KEY=VALUE with KEY a Python identifier"),
    "bad_input": (
        ["resnet18", "-i", "__import__('os')"],
        "__import__('os')\" is not an input form",
    ),
    "shape_input": (
        ["resnet18", "-i", "(1,3,224,224)"],
        "'(1,3,224,224)' looks like a shape; did you mean -i tensor1x3x224x224?",
    ),
    "bare_shape_input": (["resnet18", "-i", "1x3x64x64"], "did you mean -i tensor1x3x64x64?"),
    "argument_read_as_text": (
        ["resnet18", "-a", "num_classes=ten"],
        "(note: -a num_classes=ten was read as the string 'ten')",
    ),
    "unsafe_input": (["resnet18", "-i", "torch.load('x')"], "not allowed in an input expression"),
    "unknown_style": (["good.json", "-S", "nope=1"], "unknown style key 'nope'; valid keys:"),
    "bad_style_value": (["good.json", "-S", "dpi=x"], "bad value 'x' for style key 'dpi'"),
    "style_value_escaping_its_attribute": (
        ["good.json", "-S", 'fontname=Helvetica"]; x [label="y', "-o", "x.svg"],
        "for style key 'fontname': not a font name",
    ),
    "diff_missing_file": (["diff", "missing.json", "good.json"], "missing.json: cannot read"),
    "diff_corrupt_file": (["diff", "good.json", "corrupt.json"], "corrupt.json: not valid JSON"),
    "diff_bad_model": (["diff", "good.json", "resnet19"], "unknown model 'resnet19'"),
    "diff_missing_argument": (["diff", "good.json"], "Missing argument 'NEW'; see `nnviz diff"),
    "diff_bad_format": (["diff", "-f", "x", "good.json", "good.json"], "'x' is not one of"),
    "diff_output_folder_is_a_file": (
        ["diff", "good.json", "good.json", "-o", "afile/d.pdf"],
        "cannot write afile/d.pdf: a file is in the way of its folder",
    ),
    "diff_key_map_folder_is_a_file": (
        ["diff", "good.json", "good.json", "--key-map", "afile/map.json"],
        "cannot write afile/map.json: a file is in the way of its folder",
    ),
    "report_corrupt": (["report", "corrupt.json"], "corrupt.json: not valid JSON"),
    "report_not_a_report": (["report", "good.json"], "not an nnviz drift report"),
    "report_missing": (["report", "missing.json"], "missing.json: cannot read (No such file"),
    "report_folder": (["report", "folder.json"], "folder.json: a folder without report.json"),
    "report_bad_option_value": (["report", "good.json", "--max-bytes", "5"], "--max-bytes"),
    "style_without_value": (["good.json", "-S", "rankdir"], "style 'rankdir' is not KEY=VALUE"),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    here = tmp_path_factory.mktemp("cli_errors")
    (here / "models.py").write_text(MODELS)
    (here / "raises.py").write_text('raise RuntimeError("broken at import")\n')
    (here / "corrupt.json").write_text('{"format": "nnviz-graph", "version": 1, "nodes": [')
    (here / "folder.json").mkdir()
    (here / "afile").write_text("a file, not a folder\n")
    snapshot.save(traced("resnet18"), here / "good.json")
    return here


@pytest.fixture(scope="module")
def runs(folder: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """All cases at once (each is a cold `nnviz` process), then the folder is checked."""
    before = sorted(p.name for p in folder.iterdir())
    with ThreadPoolExecutor(4) as pool:
        done = dict(
            zip(
                CASES,
                pool.map(lambda args: run_nnviz(*args, cwd=folder), (a for a, _ in CASES.values())),
                strict=True,
            )
        )
    assert sorted(p.name for p in folder.iterdir()) == before  # no output, no temporary file
    return done


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(
    name: str, runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = runs[name]
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nnviz: error: ")
    assert CASES[name][1] in lines[0], lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_debug_shows_the_traceback_and_keeps_exit_2(folder: Path) -> None:
    result = run_nnviz("--debug", "diff", "corrupt.json", "good.json", cwd=folder)
    assert result.returncode == 2
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "nnviz.SnapshotError: corrupt.json: not valid JSON" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("nnviz: error: corrupt.json: not valid")


@pytest.mark.parametrize(
    "args",
    [
        ["diff", "corrupt.json", "good.json", "--debug"],
        ["corrupt.json", "--debug", "-o", "x.svg"],
        ["diff", "--debug", "corrupt.json", "good.json"],
    ],
)
def test_debug_is_accepted_anywhere(folder: Path, args: list[str]) -> None:
    result = run_nnviz(*args, cwd=folder)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.splitlines()[-1].startswith("nnviz: error: corrupt.json: not valid")


def _mismatched_torchvision(folder: Path) -> dict[str, str]:
    """An environment whose torchvision is a build for another torch: its metadata pins torch
    2.0.1 and importing it fails as such a build does (its compiled operators do not register)."""
    site = folder / "mismatched"
    (site / "torchvision").mkdir(parents=True)
    (site / "torchvision" / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n"
    )
    info = site / "torchvision-0.15.2.dist-info"
    info.mkdir()
    info.joinpath("METADATA").write_text(
        "Metadata-Version: 2.1\nName: torchvision\nVersion: 0.15.2\nRequires-Dist: torch==2.0.1\n"
    )
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}


def test_mismatched_torch_and_torchvision_are_named_with_the_fix(tmp_path: Path) -> None:
    env = _mismatched_torchvision(tmp_path)
    torch = importlib.metadata.version("torch")
    pair = f"0.{int(torch.split('.')[1]) + 15}"
    result = run_nnviz("resnet18", "-o", "r.svg", cwd=tmp_path, env=env)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"nnviz: error: torchvision 0.15.2 is built for torch 2.0.1, but torch {torch} is "
        "installed (operator torchvision::nms does not exist); install the torchvision made "
        f"for it: pip install 'torchvision=={pair}.*'"
    ), lines[0]
    # the hint works: --debug after MODEL shows the traceback and the same line
    debug = run_nnviz("resnet18", "-o", "r.svg", "--debug", cwd=tmp_path, env=env)
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    assert debug.stderr.splitlines()[-1] == lines[0]
    assert not (tmp_path / "r.svg").exists()


def test_a_user_model_importing_a_mismatched_torchvision_is_named_too(tmp_path: Path) -> None:
    env = _mismatched_torchvision(tmp_path)
    (tmp_path / "net.py").write_text("import torchvision\n\ndef make():\n    pass\n")
    result = run_nnviz("net.py:make", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "nnviz: error: importing net.py failed: torchvision 0.15.2 is built for torch 2.0.1"
    ), result.stderr


def test_help_and_version_still_work(folder: Path) -> None:
    for args in (["--help"], ["draw", "--help"], ["diff", "-h"], ["report", "--help"]):
        result = run_nnviz(*args, cwd=folder)
        assert result.returncode == 0 and result.stdout.startswith("Usage: nnviz"), args
        assert result.stderr == ""
    version = run_nnviz("--version", cwd=folder)
    assert version.returncode == 0 and version.stdout.startswith("nnviz, version ")
