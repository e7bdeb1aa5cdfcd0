"""The GitHub Action's steps, run locally in a simulated runner.

`SimulatedRunner` reads action.yml with a YAML parser and runs every `run:` step the way a
GitHub-hosted runner does (`bash --noprofile --norc -eo pipefail`, the step's `env:` and
`working-directory`, fresh `$GITHUB_OUTPUT` per step, a shared `$GITHUB_STEP_SUMMARY`), with the
`${{ }}` expressions the action uses resolved from a small context. `uses:` steps are not run:
the artifact upload is simulated by checking that its `path` holds the drift's files. The PR
comment is exercised against a fake `gh` on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import make_drift, make_report

from nnviz.driftreport import DriftReport
from nnviz.github import COMMENT_MARKER

REPO = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
DEMO = REPO / "examples" / "ci-demo"
DEMO_TEST = "examples/ci-demo/tests/test_demo.py"
ARTIFACT_URL = "https://github.com/octo/models/actions/runs/1/artifacts/42"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class StepRun:
    name: str
    ran: bool
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""


@dataclass
class SimulatedRunner:
    """One job running the action once; `steps` holds each step id's outputs."""

    root: Path
    inputs: dict[str, str]
    event: dict[str, Any] = field(default_factory=dict)
    path_prefix: list[Path] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    steps: dict[str, dict[str, str]] = field(default_factory=dict)
    log: list[StepRun] = field(default_factory=list)
    uploads: list[dict[str, str]] = field(default_factory=list)
    failed: bool = False

    def __post_init__(self) -> None:
        defaults = {name: spec["default"] for name, spec in ACTION["inputs"].items()}
        unknown = set(self.inputs) - set(defaults)
        assert not unknown, f"not inputs of the action: {unknown}"
        self.inputs = {**defaults, **self.inputs}
        self.workspace = self.root / "workspace"
        self.temp = self.root / "runner-temp"
        self.summary = self.root / "step_summary.md"
        for folder in (self.workspace, self.temp):
            folder.mkdir(parents=True, exist_ok=True)
        self.summary.touch()
        (self.root / "event.json").write_text(json.dumps(self.event), encoding="utf-8")

    # --- expressions ---------------------------------------------------------------------

    def value(self, name: str) -> str:
        if name.startswith("inputs."):
            return self.inputs[name.removeprefix("inputs.")]
        if name == "github.action_path":
            return str(REPO)
        if name == "github.token":
            return "fake-token"
        if name.startswith("github.event."):
            value: Any = self.event
            for key in name.removeprefix("github.event.").split("."):
                value = value.get(key, {}) if isinstance(value, dict) else {}
            return "" if value == {} else str(value)
        match = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", name)
        if match:
            return self.steps.get(match[1], {}).get(match[2], "")
        raise AssertionError(f"the simulated runner does not know ${{{{ {name} }}}}")

    def substitute(self, text: str) -> str:
        return EXPRESSION.sub(lambda m: self.value(m[1]), text)

    def condition(self, expression: str | None) -> bool:
        if expression is None:
            return not self.failed  # the implicit success()
        always, holds = False, True
        for term in (t.strip() for t in expression.split("&&")):
            if term == "always()":
                always = True
                continue
            match = re.fullmatch(r"([\w.-]+)\s*(==|!=)\s*'([^']*)'", term)
            assert match, f"the simulated runner cannot evaluate {term!r}"
            equal = self.value(match[1]) == match[3]
            holds = holds and (equal if match[2] == "==" else not equal)
        return holds and (always or not self.failed)

    # --- running -------------------------------------------------------------------------

    def environment(self, output: Path) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "RUNNER_", "PYTEST_", "NNVIZ_"))
        }
        path = [str(p) for p in self.path_prefix] + [str(Path(sys.executable).parent)]
        return {
            **base,
            "PATH": os.pathsep.join([*path, base.get("PATH", "")]),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_EVENT_PATH": str(self.root / "event.json"),
            "GITHUB_REPOSITORY": "octo/models",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_SHA": "0123abc",
            "GITHUB_RUN_ID": "4242",
            "RUNNER_TEMP": str(self.temp),
            **self.extra_env,
        }

    def run(self, only: set[str] | None = None) -> SimulatedRunner:
        for index, step in enumerate(ACTION["runs"]["steps"]):
            name = step["name"]
            if only is not None and step.get("id", name) not in only:
                continue
            if not self.condition(step.get("if")):
                self.log.append(StepRun(name, ran=False))
                continue
            if "uses" in step:
                self.simulate_upload(step)
                continue
            assert "${{" not in step["run"], f"{name}: expression inside run:"
            output = self.root / f"output-{index}"
            output.touch()
            env = self.environment(output)
            env.update({k: self.substitute(str(v)) for k, v in step.get("env", {}).items()})
            script = self.root / f"step-{index}.sh"
            script.write_text(step["run"], encoding="utf-8")
            cwd = self.workspace / self.substitute(step.get("working-directory", "."))
            result = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            self.log.append(StepRun(name, True, result.returncode, result.stdout, result.stderr))
            if "id" in step:
                self.steps[step["id"]] = parse_outputs(output.read_text(encoding="utf-8"))
            self.failed = self.failed or result.returncode != 0
        return self

    def simulate_upload(self, step: dict[str, Any]) -> None:
        assert step["uses"].startswith("actions/upload-artifact@")
        options = {k: self.substitute(str(v)) for k, v in step["with"].items()}
        folder = Path(options["path"])
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        self.uploads.append({**options, "files": "\n".join(files)})
        self.log.append(StepRun(step["name"], ran=True))
        self.steps[step["id"]] = {"artifact-url": ARTIFACT_URL, "artifact-id": "42"}

    # --- what GitHub would have seen ------------------------------------------------------

    @property
    def commands(self) -> list[str]:
        """Every workflow-command line the steps printed on stdout."""
        lines = (line for run in self.log for line in run.stdout.splitlines())
        return [line for line in lines if line.startswith("::")]

    def outputs(self) -> dict[str, str]:
        return {name: self.substitute(spec["value"]) for name, spec in ACTION["outputs"].items()}

    def step(self, name: str) -> StepRun:
        return next(run for run in self.log if run.name == name)


def parse_outputs(text: str) -> dict[str, str]:
    """`$GITHUB_OUTPUT` lines: `key=value`, or `key<<DELIMITER` ... `DELIMITER`."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            outputs[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            outputs[key] = value
    return outputs


def demo_workspace(root: Path) -> Path:
    """A checkout with examples/ci-demo in it (a copy: the run writes artifacts)."""
    target = root / "workspace" / "examples" / "ci-demo"
    ignore = shutil.ignore_patterns(".nnviz-artifacts", "__pycache__", ".pytest_cache")
    shutil.copytree(DEMO, target, ignore=ignore)
    return target


def snapshot_call_line() -> int:
    lines = (REPO / DEMO_TEST).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if "nnviz_snapshot(" in line)


# --- the whole action on examples/ci-demo ---------------------------------------------------


MODEL_FILE = "examples/ci-demo/tests/ci_demo_model.py"
PR_EVENT = {"pull_request": {"number": 17, "head": {"repo": {"full_name": "octo/models"}}}}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> SimulatedRunner:
    """The action on the demo in a pull request; `gh` is a fake that records the comment."""
    root = tmp_path_factory.mktemp("demo-run")
    demo_workspace(root)
    inputs = {"working-directory": "examples/ci-demo", "install": "false"}
    env = fake_gh(root)
    return SimulatedRunner(root, inputs, PR_EVENT, [root / "bin"], env).run()


def fake_gh(root: Path, existing: str = "", fail: int = 0) -> dict[str, str]:
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH, encoding="utf-8")
    gh.chmod(0o755)
    return {"GH_LOG": str(root / "gh.log"), "GH_EXISTING": existing, "GH_FAIL": str(fail)}


def model_line(text: str) -> int:
    lines = (REPO / MODEL_FILE).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_one_error_annotation_on_the_snapshot_call(demo_run: SimulatedRunner) -> None:
    errors = [line for line in demo_run.commands if line.startswith("::error")]
    assert len(errors) == 1, demo_run.log
    assert errors[0].startswith(
        f"::error file={DEMO_TEST},line={snapshot_call_line()},"
        "title=nnviz%3A architecture drift in test_tinynet_architecture::"
    )
    assert "features.3  Conv2d  kernel_size (3, 3) → (5, 5)" in errors[0]
    # ... printed by the annotation step, not by the plugin during the pytest run.
    assert errors[0] in demo_run.step("Annotate the drifting tests").stdout


def test_a_warning_on_the_model_line_that_changed(demo_run: SimulatedRunner) -> None:
    """The changed conv is the 4th element of `self.features = nn.Sequential(...)`: its line."""
    warnings = [line for line in demo_run.commands if line.startswith("::warning file=")]
    line = model_line("nn.Conv2d(8, 16, kernel_size=5")
    assert warnings == [
        f"::warning file={MODEL_FILE},line={line},"
        "title=nnviz%3A features.3 changed the architecture::"
        "~ features.3  Conv2d  kernel_size (3, 3) → (5, 5); padding (1, 1) → (2, 2)%0A"
        "(snapshot test: tests/test_demo.py::test_tinynet_architecture)"
    ]


def test_summary_has_the_changelog_and_a_mermaid_picture(demo_run: SimulatedRunner) -> None:
    summary = demo_run.summary.read_text(encoding="utf-8")
    assert summary.count("## nnviz:") == 1, "the plugin and the action both wrote a summary"
    assert summary.startswith("## nnviz: 1 architecture drift\n")
    assert "~ features.3  Conv2d  kernel_size (3, 3) → (5, 5)" in summary
    mermaid = re.search(r"```mermaid\n(.*?)\n```", summary, re.S)
    assert mermaid and mermaid[1].startswith("flowchart") and "features.3" in mermaid[1]
    assert f"[download the `nnviz-drift` artifact]({ARTIFACT_URL})" in summary
    blob = f"https://github.com/octo/models/blob/0123abc/{DEMO_TEST}#L{snapshot_call_line()}"
    assert blob in summary


def test_the_pull_request_comment_is_a_reviewers_page(demo_run: SimulatedRunner) -> None:
    calls = (demo_run.root / "gh.log").read_text(encoding="utf-8").splitlines()
    assert calls[0].startswith("api --paginate repos/octo/models/issues/17/comments --jq")
    assert calls[1].startswith("api repos/octo/models/issues/17/comments --method POST -F body=@")
    body = (demo_run.root / "gh.log.body").read_text(encoding="utf-8")
    assert body.startswith(f"{COMMENT_MARKER}\n## nnviz: 1 architecture drift\n")
    # A warning line: the parameter count moves by far more than 10 %.
    assert "⚠️ **test_tinynet_architecture** moves the parameter count by +129.8%" in body
    test_link = f"https://github.com/octo/models/blob/0123abc/{DEMO_TEST}#L{snapshot_call_line()}"
    assert (
        f"| [`test_tinynet_architecture`]({test_link}) | `TinyNet` | 1 | 0 | 0 | 0 "
        "| +2,048 (+129.8%) |"
    ) in body
    assert "open `tests/test_demo/test_tinynet_architecture.diff.html`" in body
    assert (
        "gh run download 4242 -n nnviz-drift -D .nnviz-artifacts && nnviz accept .nnviz-artifacts"
    ) in body
    assert "(snapshots under `examples/ci-demo/`)" in body
    assert "<details open><summary>1. test_tinynet_architecture: 1 change</summary>" in body
    model_link = f"https://github.com/octo/models/blob/0123abc/{MODEL_FILE}#L"
    assert f"Model code: [`{MODEL_FILE}:" in body and model_link in body
    assert "```mermaid\nflowchart" in body and "</details>" in body
    assert len(body.encode()) <= 65_536
    # The README's excerpt of this comment is the real thing, line for line where not shortened.
    readme = (REPO / "README.md").read_text(encoding="utf-8").split("## Use in GitHub Actions")[1]
    excerpt = re.search(r"```markdown\n(.*?)```", readme, re.S)
    assert excerpt
    kept = [line for line in excerpt[1].splitlines() if "…" not in line and line.strip()]
    kept = [line.strip() for line in kept if not line.startswith(("(a Mermaid", "    "))]
    assert [line for line in kept if line not in body] == []


def test_outputs_and_the_uploaded_drawings(demo_run: SimulatedRunner) -> None:
    assert demo_run.steps["report"]["drift-count"] == "1"
    outputs = demo_run.outputs()
    assert outputs["drift-count"] == "1"
    assert outputs["artifact-url"] == ARTIFACT_URL
    report = DriftReport.load(outputs["report-path"])
    assert [d.nodeid for d in report.drifts] == ["tests/test_demo.py::test_tinynet_architecture"]
    (upload,) = demo_run.uploads
    assert upload["name"] == "nnviz-drift" and upload["retention-days"] == "14"
    stem = "tests/test_demo/test_tinynet_architecture"
    assert set(upload["files"].splitlines()) >= {
        "report.json",
        f"{stem}.diff.pdf",
        f"{stem}.diff.svg",
        f"{stem}.diff.html",
        f"{stem}.new.json",
    }


def test_the_action_fails_because_pytest_failed(demo_run: SimulatedRunner) -> None:
    assert demo_run.steps["pytest"]["exit-code"] == "1"
    last = demo_run.step("Fail when the snapshot tests failed")
    assert last.ran and last.returncode == 1
    assert "tests/test_demo.py::test_tinynet_architecture fails the policy: drifted" in last.stderr
    assert "nnviz: pytest exited with status 1" in last.stderr


@pytest.mark.parametrize(
    ("policy", "fails", "says"),
    [
        ("removed", False, "every drift passes the fail-on policy 'removed'"),
        ("removed,params>100%", True, "fails the policy: params +129.8% (limit 100%)"),
        ("none", False, "every drift passes"),
    ],
)
def test_fail_on_decides_which_drifts_fail_the_job(
    demo_run: SimulatedRunner, tmp_path: Path, policy: str, fails: bool, says: str
) -> None:
    steps = {k: demo_run.steps[k] for k in ("pytest", "report")}
    runner = SimulatedRunner(tmp_path, {"fail-on": policy}, steps=steps)
    runner.run(only={"Fail when the snapshot tests failed"})
    step = runner.step("Fail when the snapshot tests failed")
    assert (step.returncode != 0) is fails, step
    assert says in step.stdout + step.stderr


def test_clean_run_passes_without_upload(tmp_path: Path) -> None:
    demo_workspace(tmp_path)
    # pytest-args are split like a shell would: the quoted -k expression stays one argument.
    inputs = {
        "working-directory": "examples/ci-demo",
        "install": "false",
        "pytest-args": "--nnviz-update -k 'tinynet and architecture'",
        "artifacts-dir": "out dir",
    }
    runner = SimulatedRunner(tmp_path, inputs).run()
    assert not runner.failed, runner.log
    assert runner.steps["pytest"]["exit-code"] == "0"
    assert runner.outputs()["drift-count"] == "0"
    assert runner.outputs()["report-path"].endswith("/examples/ci-demo/out dir/report.json")
    assert runner.uploads == [] and runner.commands == []
    assert "## nnviz: no architecture drift" in runner.summary.read_text(encoding="utf-8")
    assert not runner.step("Fail when the snapshot tests failed").ran


def test_pytest_failing_before_any_report_still_fails_and_says_so(tmp_path: Path) -> None:
    demo_workspace(tmp_path)
    inputs = {
        "working-directory": "examples/ci-demo",
        "install": "false",
        "pytest-args": "--no-such-option",
    }
    runner = SimulatedRunner(tmp_path, inputs).run()
    assert runner.steps["pytest"]["exit-code"] == "4"  # pytest's usage error
    assert runner.outputs()["drift-count"] == "0" and runner.outputs()["report-path"] == ""
    assert runner.failed and runner.uploads == [] and runner.commands == []
    summary = runner.summary.read_text(encoding="utf-8")
    assert summary == "## nnviz: pytest failed (status 4) before writing a drift report\n"


def test_unbalanced_quotes_in_pytest_args_fail_clearly(tmp_path: Path) -> None:
    demo_workspace(tmp_path)
    inputs = {"working-directory": "examples/ci-demo", "install": "false", "pytest-args": "-k 'a"}
    runner = SimulatedRunner(tmp_path, inputs).run()
    step = runner.step("Run the snapshot tests")
    assert step.returncode == 1
    assert "nnviz: cannot split the pytest-args input: No closing quotation" in step.stderr
    assert runner.step("Fail when the snapshot tests failed").returncode == 1


# --- the sticky PR comment, against a fake `gh` ---------------------------------------------

FAKE_GH = r"""#!/usr/bin/env bash
# Records every call; answers the comment listing with $GH_EXISTING; fails writes on $GH_FAIL.
echo "$*" >> "$GH_LOG"
for arg in "$@"; do
  case "$arg" in body=@*) cp "${arg#body=@}" "$GH_LOG.body" ;; esac
done
case "$*" in
  *--paginate*) [ -n "$GH_EXISTING" ] && echo "$GH_EXISTING"; exit 0 ;;
  *) exit "${GH_FAIL:-0}" ;;
esac
"""


def comment_run(
    tmp_path: Path,
    drifts: int,
    *,
    fork: bool = False,
    existing: str = "",
    fail: int = 0,
    inputs: dict[str, str] | None = None,
) -> tuple[SimulatedRunner, list[str], str]:
    env = fake_gh(tmp_path, existing, fail)
    log = Path(env["GH_LOG"])
    report = make_report([make_drift(i) for i in range(drifts)]).save(tmp_path / "report.json")
    head = "someone/models" if fork else "octo/models"
    event = {"pull_request": {"number": 17, "head": {"repo": {"full_name": head}}}}
    runner = SimulatedRunner(
        tmp_path,
        inputs or {},
        event=event,
        path_prefix=[tmp_path / "bin"],
        extra_env=env,
        steps={
            "report": {"report-path": str(report), "drift-count": str(drifts)},
            "upload": {"artifact-url": ARTIFACT_URL} if drifts else {},
        },
    )
    runner.run(only={"Update the pull-request comment"})
    calls = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    body_file = Path(f"{log}.body")
    body = body_file.read_text(encoding="utf-8") if body_file.exists() else ""
    return runner, calls, body


def test_comment_is_posted_once_with_the_marker(tmp_path: Path) -> None:
    runner, calls, body = comment_run(tmp_path, drifts=2)
    assert not runner.failed, runner.log
    assert calls[0].startswith("api --paginate repos/octo/models/issues/17/comments")
    assert calls[1].startswith("api repos/octo/models/issues/17/comments --method POST -F body=@")
    assert body.startswith(f"{COMMENT_MARKER}\n## nnviz: 2 architecture drifts\n")
    assert f"[download the `nnviz-drift` artifact]({ARTIFACT_URL})" in body
    assert len(body.encode()) <= 65_536


def test_comment_is_updated_in_place(tmp_path: Path) -> None:
    runner, calls, _ = comment_run(tmp_path, drifts=1, existing="987")
    assert not runner.failed, runner.log
    assert calls[1].startswith("api repos/octo/models/issues/comments/987 --method PATCH")


def test_a_fixed_drift_updates_the_old_comment_but_never_creates_one(tmp_path: Path) -> None:
    runner, calls, body = comment_run(tmp_path / "a", drifts=0, existing="987")
    assert calls[1].startswith("api repos/octo/models/issues/comments/987 --method PATCH")
    assert body.startswith(f"{COMMENT_MARKER}\n## nnviz: no architecture drift any more\n")
    runner, calls, _ = comment_run(tmp_path / "b", drifts=0)
    assert not runner.failed and len(calls) == 1  # only the lookup


def test_comment_always_and_never(tmp_path: Path) -> None:
    runner, calls, body = comment_run(tmp_path / "a", drifts=0, inputs={"comment": "always"})
    assert calls[1].startswith("api repos/octo/models/issues/17/comments --method POST")
    assert "no architecture drift any more" in body
    runner, calls, _ = comment_run(tmp_path / "b", drifts=2, inputs={"comment": "never"})
    assert calls == [] and not runner.step("Update the pull-request comment").ran
    runner, calls, _ = comment_run(tmp_path / "c", drifts=2, inputs={"comment": "sometimes"})
    assert runner.failed and calls == []
    assert runner.commands == [
        "::error title=nnviz::comment must be always, on-drift or never, not 'sometimes'"
    ]


def test_fork_pull_requests_fall_back_without_failing(tmp_path: Path) -> None:
    runner, calls, _ = comment_run(tmp_path, drifts=1, fork=True)
    assert not runner.failed and calls == []
    assert "::notice title=nnviz::fork pull request" in runner.commands[0]


def test_a_read_only_token_warns_but_does_not_fail(tmp_path: Path) -> None:
    runner, calls, _ = comment_run(tmp_path, drifts=1, fail=1)
    assert not runner.failed, runner.log
    assert len(calls) == 2
    assert runner.commands[0].startswith("::warning title=nnviz::could not post")


def test_install_step_installs_the_action_folder(tmp_path: Path) -> None:
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python").write_text('#!/bin/sh\necho "$@" > "$SHIM_LOG"\n', encoding="utf-8")
    (shim / "python").chmod(0o755)
    log = tmp_path / "python.log"
    runner = SimulatedRunner(tmp_path, {}, path_prefix=[shim], extra_env={"SHIM_LOG": str(log)})
    runner.run(only={"Install nnviz"})
    assert not runner.failed, runner.log
    assert log.read_text(encoding="utf-8").split() == [
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
        str(REPO),
    ]
