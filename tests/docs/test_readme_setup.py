"""The README's Quick start is what CI runs, installs what each command needs, and ignores what
the commands write."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
DEV_ONLY = ("pytest", "pytest-xdist", "hypothesis", "ruff", "mypy", "transformers", "timm")


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start")[1].split("\n## ")[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.DOTALL)


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_drawing_installs_only_what_drawing_needs_and_tests_install_the_dev_extra() -> None:
    draw, test = quick_start_commands()
    assert draw == "pip install -e . && nnviz resnet18"
    assert test == 'pip install -e ".[dev]" && pytest -n auto'
    base = requirement_names(PYPROJECT["project"]["dependencies"])
    assert not base & set(DEV_ONLY), "a dev tool is a base dependency"
    assert set(DEV_ONLY) <= requirement_names(PYPROJECT["project"]["optional-dependencies"]["dev"])


def test_ci_runs_the_quick_start_commands() -> None:
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    draw, test = quick_start_commands()
    install_lean, draw_cmd = draw.split(" && ")
    install_dev, test_cmd = test.split(" && ")
    lines = [line.strip() for line in ci.splitlines()]
    assert lines.index(install_lean.replace("pip install", "pip install -q")) < lines.index(
        install_dev.replace("pip install", "pip install -q")
    )
    assert any(draw_cmd in line for line in lines)
    assert any(line.startswith(test_cmd + " ") for line in lines)


def test_never_points_at_the_pypi_name_we_do_not_publish() -> None:
    assert PYPROJECT["project"]["name"] == "nnviz-arch"
    assert PYPROJECT["project"]["scripts"] == {"nnviz": "nnviz.cli:main"}
    for block in re.findall(r"```\w*\n(.*?)```", README, flags=re.DOTALL):
        assert not re.search(r"pip3? install (-U )?nnviz\b(?!-)", block), block
    # The CPU-only torch, in the words of PyTorch's install guide, before nnviz's install (a
    # CPU build installed after the default one would not replace its CUDA libraries), and no
    # placeholder a newcomer cannot resolve.
    quick = README.split("## Quick start")[1].split("\n## ")[0]
    cpu = "pip3 install torch torchvision --index-url https://download.pytorch.org/whl/cpu"
    assert cpu in quick and quick.index(cpu) < quick.index("pip install -e . && nnviz")
    assert "OWNER" not in quick


def test_the_repository_ignores_what_the_readme_commands_write() -> None:
    written = ["resnet18.pdf", "r.json", "diff.svg", ".nnviz-artifacts/report.json"]
    kept = ["README.md", "docs/images/resnet18.png", "tests/__nnviz_snapshots__/x/t.json"]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *written, *kept],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.stdout.split() == written
    assert ".nnviz-artifacts/" in README.split("## Quick start")[1].split("\n## ")[0]


def test_the_drawing_command_runs_without_any_dev_tool(tmp_path: Path) -> None:
    """`pip install -e .` is enough to draw: no dev-extra package is imported on the way."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    for name in ("pytest", "hypothesis", "timm", "transformers", "mypy", "ruff"):
        (blocker / f"{name}.py").write_text(f"raise ImportError('{name} is a dev tool')\n")
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.argv = ['nnviz', 'resnet18', '-o', "
        "'r.dot']; from nnviz.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(blocker)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "layer1.0" in (tmp_path / "r.dot").read_text()
