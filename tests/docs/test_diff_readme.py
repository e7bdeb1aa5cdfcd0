"""The README's "Diff two architectures" examples run as written and print what it shows."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from support import run_nnviz

README = Path(__file__).resolve().parents[2] / "README.md"


def section() -> str:
    return (
        README.read_text(encoding="utf-8").split("## Diff two architectures")[1].split("\n## ")[0]
    )


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(), flags=re.DOTALL)


def test_the_examples_run_as_shown(tmp_path: Path) -> None:
    commands = [line for line in blocks("bash")[0].splitlines() if line.strip()]
    shown_text = blocks("text")[0]
    for line in commands:
        command, _, comment = line.partition("#")
        argv = shlex.split(command)
        assert argv[0] == "nnviz"
        if argv[1:2] == ["diff"] and "resnet" in argv[2]:
            continue  # tracing two models here adds nothing the CLI tests do not check
        result = run_nnviz(*argv[1:], cwd=tmp_path)
        expected = 1 if "exit code 1" in comment else 0
        if "exit code" in comment or argv[1] != "diff":
            assert result.returncode == expected, (line, result.stderr)
        if argv == ["nnviz", "diff", "old.json", "new.json"]:
            assert result.stdout == shown_text
        if "identical" in comment:
            assert result.stdout.startswith("identical: no architecture changes")
    assert (tmp_path / "diff.svg").is_file()
    # the Python example, on the snapshots the commands wrote
    code = blocks("python")[0]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "~ fc  Linear  out_features 1000 → 10"
    assert "fc changed {" in result.stdout
    assert (tmp_path / "diff.pdf").read_bytes()[:4] == b"%PDF"
