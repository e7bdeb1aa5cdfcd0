"""The GitHub Action's metadata and the workflows, checked without GitHub.

JSON-schema validation (check-jsonschema's vendored GitHub schemas, no network), actionlint, and
the house rules: kebab-case inputs with descriptions and defaults, inputs reach scripts only
through `env:`, the current major of actions/upload-artifact.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ACTION = REPO / "action.yml"
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent
USES = "OWNER/nnviz@SHA"
"""The README's `uses:`, which its command prints for the user's checkout."""


def tool(name: str) -> str:
    """A command-line tool of the dev extra, from this interpreter's environment first."""
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, f"{name} is missing: pip install -e '.[dev]'"
    return found


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def run_steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if "runs" in doc:
        return list(doc["runs"]["steps"])
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def test_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "action-selftest.yml"}


def test_action_matches_the_github_action_schema() -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(ACTION))
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_a_broken_action(tmp_path: Path) -> None:
    broken = load(ACTION)
    broken["runs"]["using"] = "composit"
    path = tmp_path / "action.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(path))
    assert result.returncode == 1
    assert "composit" in result.stdout


def test_workflows_match_the_github_workflow_schema() -> None:
    paths = [str(p) for p in WORKFLOWS]
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *paths)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_passes() -> None:
    result = run(tool("actionlint"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_checks_the_local_action_inputs(tmp_path: Path) -> None:
    # The self-test's `uses: ./` is checked against action.yml: a misspelt input is caught.
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ACTION, tmp_path / "action.yml")
    selftest = (REPO / ".github/workflows/action-selftest.yml").read_text(encoding="utf-8")
    bad = selftest.replace("retention-days:", "retention-dayz:")
    (tmp_path / ".github" / "workflows" / "selftest.yml").write_text(bad, encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    result = run(tool("actionlint"), cwd=tmp_path)
    assert result.returncode == 1
    assert 'input "retention-dayz" is not defined in action' in result.stdout


def test_actions_the_action_uses_get_only_inputs_they_define(tmp_path: Path) -> None:
    # actionlint knows the inputs of popular actions per major version, but it lints workflows,
    # not action.yml: put the action's `uses:` steps into a workflow and lint that.
    steps = [
        {"uses": s["uses"], "with": {k: "x" for k in s.get("with", {})}}
        for s in run_steps(load(ACTION))
        if "uses" in s
    ]
    workflow = {"on": "push", "jobs": {"job": {"runs-on": "ubuntu-latest", "steps": steps}}}
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "uses.yml").write_text(yaml.safe_dump(workflow))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    result = run(tool("actionlint"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_inputs_and_outputs_are_documented() -> None:
    action = load(ACTION)
    inputs = action["inputs"]
    expected = {
        "pytest-args",
        "working-directory",
        "artifacts-dir",
        "artifact-name",
        "retention-days",
        "comment",
        "github-token",
    }
    assert expected <= set(inputs)
    for name, spec in inputs.items():
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", name), name
        assert spec["description"].strip(), name
        assert "default" in spec and isinstance(spec["default"], str), name
    assert inputs["github-token"]["default"] == "${{ github.token }}"
    outputs = action["outputs"]
    assert set(outputs) == {"drift-count", "report-path", "artifact-url"}
    assert all(spec["description"].strip() and spec["value"] for spec in outputs.values())
    assert action["runs"]["using"] == "composite"


@pytest.mark.parametrize("path", [ACTION, *WORKFLOWS], ids=lambda p: p.name)
def test_expressions_never_reach_scripts(path: Path) -> None:
    # `${{ }}` inside `run:` is pasted into the script before bash sees it: script injection.
    for step in run_steps(load(path)):
        if "run" in step:
            assert "${{" not in step["run"], step.get("name")


def test_composite_run_steps_declare_bash() -> None:
    for step in run_steps(load(ACTION)):
        if "run" in step:
            assert step["shell"] == "bash", step["name"]


def test_artifacts_are_uploaded_with_the_current_major() -> None:
    uses = [s["uses"] for s in run_steps(load(ACTION)) if "uses" in s]
    assert uses == ["actions/upload-artifact@v7"]


def test_readme_workflow_is_a_valid_workflow(tmp_path: Path) -> None:
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Use in GitHub Actions")[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "the README's copy-paste workflow is missing"
    path = tmp_path / "architecture.yml"
    path.write_text(block[1], encoding="utf-8")
    steps = load(path)["jobs"]["snapshots"]["steps"]
    assert steps[-1]["uses"] == USES
    schema = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path))
    assert schema.returncode == 0, schema.stdout + schema.stderr
    lint = run(tool("actionlint"), str(path), cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def _readme_workflows() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return [
        re.findall(r"```yaml\n(.*?)```", readme.split(heading)[1], re.S)[0]
        for heading in ("## Use in GitHub Actions", "### Sharded suites")
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme-ml/nnviz.git",
        "https://github.com/acme-ml/nnviz",
        "git@github.com:acme-ml/nnviz.git",
        "ssh://git@github.com/acme-ml/nnviz.git",
    ],
)
def test_the_readme_command_prints_the_uses_line_of_a_checkout(tmp_path: Path, url: str) -> None:
    """The README's one-liner, run by bash in a checkout cloned from `url`: the `uses:` of the
    repository and of the commit checked out (what `OWNER/nnviz@SHA` stands for)."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Use in GitHub Actions")[1]
    command = re.findall(r"```bash\n(.*?)\n```", section, re.S)[0]
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    subprocess.run([*git, "remote", "add", "origin", url], check=True)
    sha = run("git", "rev-parse", "HEAD", cwd=tmp_path).stdout.strip()
    printed = run("bash", "-c", command, cwd=tmp_path)
    assert printed.stdout == f"uses: acme-ml/nnviz@{sha}\n", printed.stderr


@pytest.mark.parametrize("which", [0, 1], ids=["workflow", "sharded"])
def test_the_readme_workflows_give_the_action_only_its_inputs(tmp_path: Path, which: int) -> None:
    """actionlint checks a local action's inputs: the README's workflow with its `uses:` pointed
    at a copy of this action.yml passes, and a misspelt input would not."""
    workflow = _readme_workflows()[which]
    assert USES in workflow
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ACTION, tmp_path / "action.yml")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    target = tmp_path / ".github" / "workflows" / "architecture.yml"
    target.write_text(workflow.replace(USES, "./"), encoding="utf-8")
    lint = run(tool("actionlint"), cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    misspelt = workflow.replace(USES, "./").replace("pytest-args:", "pytest-argz:")
    misspelt = misspelt.replace("merge: shards", "merg: shards")
    target.write_text(misspelt, encoding="utf-8")
    assert "is not defined in action" in run(tool("actionlint"), cwd=tmp_path).stdout


def test_the_readme_table_lists_every_input_with_its_default() -> None:
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Use in GitHub Actions")[1]
    rows = dict(re.findall(r"^\| `([a-z-]+)` \| `([^`]*)` \|", section, re.M))
    inputs = load(ACTION)["inputs"]
    assert rows == {name: spec["default"] or '""' for name, spec in inputs.items()}


def test_readme_sharded_workflow_is_a_valid_workflow(tmp_path: Path) -> None:
    """The matrix of shards and the merge job that needs them, as the README gives them."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("### Sharded suites")[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "the README's sharded workflow is missing"
    path = tmp_path / "architecture.yml"
    path.write_text(block[1], encoding="utf-8")
    jobs = load(path)["jobs"]
    shard = jobs["snapshots"]["steps"][-1]
    assert shard["uses"] == USES and shard["with"]["comment"] == "never"
    assert shard["with"]["shard"] == "${{ matrix.group }}"
    assert jobs["report"]["needs"] == "snapshots"
    merge = next(s for s in jobs["report"]["steps"] if s.get("uses") == USES)
    download = next(s for s in jobs["report"]["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"]["path"] == merge["with"]["merge"]
    schema = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path))
    assert schema.returncode == 0, schema.stdout + schema.stderr
    lint = run(tool("actionlint"), str(path), cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_action_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (optional: apt-get install shellcheck)")
    for step in run_steps(load(ACTION)):
        if "run" in step:
            result = subprocess.run(
                [shellcheck, "-s", "bash", "-"], input=step["run"], capture_output=True, text=True
            )
            assert result.returncode == 0, f"{step['name']}:\n{result.stdout}"
