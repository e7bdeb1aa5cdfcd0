"""A newcomer's first commands: the help shows how to draw, mistakes are caught before torch is
imported, `-q` is quiet, and a model file in the current folder is found."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import NET

from nnviz.cli import cli, draw_command


def test_top_level_help_shows_how_to_draw_and_every_drawing_option() -> None:
    result = CliRunner().invoke(cli, ["--help"], prog_name="nnviz")
    assert result.exit_code == 0
    usage = result.output.splitlines()[:2]
    assert usage == ["Usage: nnviz MODEL [OPTIONS]", "  or:  nnviz COMMAND [ARGS]..."]
    assert "nnviz resnet18 " in result.output and "Drawing options" in result.output
    for param in draw_command.params:
        if param.param_type_name == "option":
            assert param.opts[-1] in result.output, param.opts


def nnviz_without_torch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The `nnviz` console script where `import torch` fails: whatever it reports was found
    before torch was imported."""
    blocker = tmp_path / "blocker"
    blocker.mkdir(exist_ok=True)
    (blocker / "torch.py").write_text("raise ImportError('torch is blocked in this test')\n")
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [str(Path(sys.executable).parent / "nnviz"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{blocker}:{root}"},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["resnet19"], "unknown model 'resnet19'"),
        (["reznet50", "-o", "r.svg"], "(did you mean resnet50"),
        (["resnet18", "-o", "afile/r.pdf"], "cannot write afile/r.pdf: a file is in the way"),
        (["resnet18", "-j", "-o", "out.svg"], "cannot write out.json: it is a folder"),
        (["resnet18", "-i", "1x3x224x224"], "did you mean -i tensor1x3x224x224?"),
    ],
    ids=["typo", "typo_with_output", "output_under_a_file", "json_is_a_folder", "shape"],
)
def test_mistakes_are_found_before_torch_is_imported(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "out.json").mkdir()
    result = nnviz_without_torch(tmp_path, *args)
    assert result.returncode == 2
    assert result.stderr.startswith("nnviz: error: ") and message in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "blocker", "out.json"]


def test_a_model_file_in_the_current_folder_is_importable(tmp_path: Path) -> None:
    """`nnviz mymodel:Net` in the folder holding mymodel.py, as uvicorn and flask do."""
    (tmp_path / "mymodel.py").write_text(NET)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "nnviz"), "mymodel:Net", "-o", "net.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert '"fc"' in (tmp_path / "net.json").read_text()


def test_quiet_draw_prints_nothing_but_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mymodel.py").write_text(NET)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    # The input does not fit fc: data tracing fails, with a warning unless -q.
    loud = runner.invoke(cli, ["mymodel.py:Net", "-i", "tensor1x3", "-o", "a.json"])
    assert loud.exit_code == 0, loud.output
    assert loud.stderr.startswith("nnviz: warning: data tracing with x=[1, 3] failed")
    quiet = runner.invoke(cli, ["mymodel.py:Net", "-i", "tensor1x3", "-o", "b.json", "-q"])
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")
    assert (tmp_path / "b.json").read_bytes() == (tmp_path / "a.json").read_bytes()


def test_a_timm_model_is_named_after_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("timm")
    monkeypatch.chdir(tmp_path)
    args = ["timm:create_model", "-a", "model_name=resnet10t", "-d", "1", "-S", "show_title=true"]
    result = CliRunner().invoke(cli, [*args, "-j"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resnet10t.json", "resnet10t.pdf"]
    assert '"name":"resnet10t"' in (tmp_path / "resnet10t.json").read_text()
