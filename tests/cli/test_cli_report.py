"""`nnviz report REPORT.json --format text|markdown|comment|github [--fail-on POLICY]`, run as
a real subprocess."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from support import make_drift, make_report, run_nnviz, torch_blocker


@pytest.fixture
def report_path(tmp_path: Path) -> Path:
    drifts = [make_drift(i, changed=2 if i == 2 else 1) for i in range(1, 13)]
    return make_report(drifts, unused=["tests/__nnviz_snapshots__/t/old.json"]).save(
        tmp_path / "report.json"
    )


def no_torch_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment in which `import torch` fails: the JSON path must not need it."""
    blocker = torch_blocker(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), env.get("PYTHONPATH", "")])
    return {**env, **extra}


def test_text_is_the_default(report_path: Path, tmp_path: Path) -> None:
    result = run_nnviz("report", str(report_path), env=no_torch_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == "nnviz: 3 passed, 12 drifted, 0 written, 0 missing, 0 failed, 1 unused"
    # The drift with two changed convolutions comes first.
    assert lines[2] == "DRIFT tests/test_models.py:12  tests/test_models.py::test_model_02"
    assert sum(line.startswith("DRIFT ") for line in lines) == 12


def test_github_annotations_are_prefixed_with_the_workspace_path(
    report_path: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "repo"
    cwd = workspace / "examples" / "demo"
    cwd.mkdir(parents=True)
    env = no_torch_env(tmp_path, GITHUB_WORKSPACE=str(workspace))
    result = run_nnviz("report", str(report_path), "--format", "github", cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["::error"] * 10 + [
        "::warning",
        "::notice",
    ]
    assert lines[0].startswith("::error file=examples/demo/tests/test_models.py,line=12,")
    assert "2 more architecture drift(s) not annotated" in lines[10]
    explicit = run_nnviz("report", str(report_path), "-f", "github", "--root", "x", env=env)
    assert explicit.stdout.startswith("::error file=x/tests/test_models.py,line=12,")


def test_markdown_uses_the_run_and_artifact_links(report_path: Path, tmp_path: Path) -> None:
    env = no_torch_env(
        tmp_path,
        GITHUB_SERVER_URL="https://github.com",
        GITHUB_REPOSITORY="o/r",
        GITHUB_SHA="abc123",
    )
    url = "https://github.com/o/r/actions/runs/7/artifacts/8"
    result = run_nnviz(
        "report", str(report_path), "--format", "markdown", "--artifact-url", url, env=env
    )
    assert result.returncode == 0, result.stderr
    md = result.stdout
    assert md.startswith("## nnviz: 12 architecture drifts\n")
    assert f"[download the `nnviz-drift` artifact]({url})" in md
    assert "(https://github.com/o/r/blob/abc123/tests/test_models.py#L12)" in md
    assert md.count("```mermaid") == 12


def test_max_bytes_folds_the_markdown(report_path: Path, tmp_path: Path) -> None:
    env = no_torch_env(tmp_path)
    result = run_nnviz("report", str(report_path), "-f", "markdown", "--max-bytes", "6000", env=env)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.encode()) <= 6000
    assert re.search(r"\*\d+ more drifts not shown here", result.stdout)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read (No such file or directory)"),
        ("{", "not valid JSON"),
        ('{"format": "nnviz-drift-report", "version": 9}', "newer nnviz (format version 9;"),
    ],
)
def test_bad_report_is_one_line_and_exit_2(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = run_nnviz("report", str(path), env=no_torch_env(tmp_path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"nnviz: error: {path}: ")
    assert message in result.stderr


def test_unknown_format_is_a_usage_error(report_path: Path) -> None:
    result = run_nnviz("report", str(report_path), "--format", "html")
    assert result.returncode == 2
    assert "'html' is not one of 'text', 'markdown', 'comment', 'github'" in result.stderr


def test_help_has_an_example() -> None:
    result = run_nnviz("report", "--help")
    assert result.returncode == 0
    assert "nnviz report .nnviz-artifacts/report.json --format comment" in result.stdout


def test_comment_names_the_run_to_download_and_fits(report_path: Path, tmp_path: Path) -> None:
    env = no_torch_env(tmp_path, GITHUB_RUN_ID="4242")
    folder = str(report_path.parent)  # a folder is taken for its report.json
    result = run_nnviz("report", folder, "-f", "comment", "--artifact-name", "arch", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<!-- nnviz-drift-report -->\n## nnviz: 12 architecture")
    assert "gh run download 4242 -n arch -D .nnviz-artifacts && nnviz accept .nnviz-artifacts" in (
        result.stdout
    )
    assert len(result.stdout.encode()) <= 60_000


@pytest.mark.parametrize(
    ("policy", "code", "line"),
    [
        ("none", 1, "nnviz: 1 unused snapshot file(s): the job fails whatever the policy"),
        ("any", 1, "nnviz: tests/test_models.py::test_model_02 fails the policy: drifted"),
        ("changed", 1, "fails the policy: 2 changed"),
        ("removed,params>5%", 1, None),
    ],
)
def test_fail_on_decides_the_exit_code(
    report_path: Path, tmp_path: Path, policy: str, code: int, line: str | None
) -> None:
    result = run_nnviz("report", str(report_path), "--fail-on", policy, env=no_torch_env(tmp_path))
    assert result.returncode == code, result.stderr
    if line:
        assert line in result.stderr
    else:  # nothing removed, parameters unchanged: only the unused file fails
        assert result.stderr.splitlines() == [
            "nnviz: 1 unused snapshot file(s): the job fails whatever the policy"
        ]


def test_a_clean_report_passes_the_policy(tmp_path: Path) -> None:
    path = make_report([make_drift(1)]).save(tmp_path / "report.json")
    env = no_torch_env(tmp_path)
    passing = run_nnviz("report", str(path), "--fail-on", "removed", env=env)
    assert passing.returncode == 0 and passing.stderr == ""
    bad = run_nnviz("report", str(path), "--fail-on", "params>x", env=env)
    assert bad.returncode == 2
    assert bad.stderr == (
        "nnviz: error: unknown fail-on term 'params>x' (use any, none, changed, added, removed, "
        "renamed, params>N%, params>N, checkpoint, macs>+N% or activations>+N%)\n"
    )
