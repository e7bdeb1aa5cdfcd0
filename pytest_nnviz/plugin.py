"""The pytest plugin's surface: options, the `nnviz_snapshot` fixture and the session hooks.

Registered through the `pytest11` entry point `nnviz`. The hooks only wire: options are declared
and read here, and every hook hands its work to the modules that do it: `location` (test →
snapshot file), `engine` (compare → write → draw), `assertion` (the fixture's value), `sources`
(model code lines of changed modules), `session` (options, records, xdist merge), `report` (end
of session: unused files, counts, report.json, GitHub Actions output) and `shard` (the run record
`nnviz report merge` decides from).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_nnviz.engine import UpdateMode
from pytest_nnviz.report import Conclusion, conclude, is_worker
from pytest_nnviz.session import Options, SessionState

if TYPE_CHECKING:
    from pytest_nnviz.assertion import NNVizSnapshot

STATE = pytest.StashKey[SessionState]()
CONCLUSION = pytest.StashKey[Conclusion | None]()


UPDATE_MODES = ("all", "new")


class _UpdateMode(argparse.Action):
    """`--nnviz-update` alone means `all`; `--nnviz-update=new` or `=all` names a mode."""

    def __call__(self, parser: Any, namespace: Any, value: Any, option: Any = None) -> None:
        setattr(namespace, self.dest, value or "all")


FLAGS: dict[str, dict[str, Any]] = {
    "--nnviz-update": {
        "action": _UpdateMode,
        "nargs": "?",
        "metavar": "all|new",
        "help": "Write missing, changed and unreadable snapshots, delete unused ones, and pass; "
        "--nnviz-update=new writes only missing snapshots. Without it nnviz writes no snapshot "
        "(only the pending <test>.new.json beside each drift, for nnviz review/accept).",
    },
    "--nnviz-artifacts": {
        "metavar": "DIR",
        "help": "Folder for drift artifacts (diff drawings, new snapshots, report.json). "
        "Default: the nnviz_artifacts ini option, else .nnviz-artifacts/ under the rootdir.",
    },
    "--nnviz-warn-unused": {
        "action": "store_true",
        "help": "Only report snapshot files no test used, instead of failing the session.",
    },
    "--nnviz-shard": {
        "action": "store_true",
        "help": "This session is one shard of a split suite (implied by pytest-split's "
        "--splits): snapshot files its tests did not use are only recorded in report.json, "
        "never failed on or deleted; `nnviz report merge` decides over all the shards.",
    },
    "--nnviz-no-github": {
        "action": "store_true",
        "help": "On GitHub Actions, do not print annotations or write the step summary (for a "
        "later step, such as the nnviz action, that reports from report.json itself).",
    },
}
"""The command-line options of the `nnviz` group: flag → `addoption` settings."""

INI: dict[str, tuple[str | None, object, str]] = {
    "nnviz_update": (
        None,
        "none",
        "Update mode when --nnviz-update is not given: none (default) or new (write missing "
        "snapshots). Ignored on CI (the CI environment variable is set): CI never writes "
        "unless --nnviz-update is on the command line.",
    ),
    "nnviz_ignore": (
        "linelist",
        [],
        "Change fields no snapshot compares, as nnviz diff --ignore (e.g. spec, hparams.eps).",
    ),
    "nnviz_strict": (
        "bool",
        False,
        "Count information as drift too (scalar shape arithmetic, container attributes that "
        "change nothing below them), as nnviz diff --strict.",
    ),
    "nnviz_inputs": (
        None,
        "",
        "Example inputs (an -i string, e.g. image64) for every nnviz_snapshot call that gives "
        "no inputs=: tensor shapes become part of each snapshot, and a model that cannot run "
        "on them fails its test.",
    ),
    "nnviz_tracer": (
        None,
        "auto",
        "The tracer every nnviz_snapshot call insists on unless it passes tracer=: auto "
        "(default), fx, eager or export; a model that tracer cannot trace fails its test.",
    ),
    "nnviz_fail_on": (
        None,
        "any",
        "Which drifts fail their test, as the Action's fail-on: any (default), or terms such as "
        "checkpoint (only when old checkpoints stop loading even with the key map: renames "
        "pass), macs>+5%, activations>+10% (a cost term needs inputs), removed, params>5%; a "
        "drift that passes stays in report.json for review.",
    ),
    "nnviz_exportable": (
        "bool",
        False,
        "Record in every snapshot whether torch.export succeeds on the example inputs (and if "
        "not, the first reason and its file:line), unless a call passes exportable=: a PR that "
        "makes the model no longer exportable then drifts.",
    ),
    "nnviz_artifacts": (
        None,
        ".nnviz-artifacts",
        "Folder for nnviz drift artifacts, relative to the rootdir (default .nnviz-artifacts).",
    ),
}
"""The ini options: name → (type, default, help)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nnviz", "nnviz architecture snapshots")
    for flag, settings in FLAGS.items():
        group.addoption(flag, **settings)
    for name, (kind, default, text) in INI.items():
        parser.addini(name, text, type=kind, default=default)  # type: ignore[arg-type]


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(args: list[str]) -> None:
    # A bare `--nnviz-update` before a test path must not take the path as its mode.
    for index, arg in enumerate(args[:-1]):
        if arg == "--nnviz-update" and args[index + 1] not in UPDATE_MODES:
            args[index] = "--nnviz-update=all"


def pytest_configure(config: pytest.Config) -> None:
    artifacts = config.getoption("nnviz_artifacts")
    base = config.invocation_params.dir if artifacts else config.rootpath
    options = Options(
        rootdir=config.rootpath,
        artifacts_dir=(base / (artifacts or str(config.getini("nnviz_artifacts")))).resolve(),
        repository=_repository(config.rootpath),
        update=_update_mode(config),
        ignore=tuple(str(f) for f in config.getini("nnviz_ignore")),
        strict=bool(config.getini("nnviz_strict")),
        inputs=str(config.getini("nnviz_inputs")).strip() or None,
        tracer=_tracer(config),
        fail_on=str(config.getini("nnviz_fail_on")).strip() or "any",
        exportable=bool(config.getini("nnviz_exportable")),
        warn_unused=bool(config.getoption("nnviz_warn_unused")),
        shard=bool(config.getoption("nnviz_shard") or config.getoption("splits", None)),
        github=not config.getoption("nnviz_no_github"),
    )
    config.stash[STATE] = state = SessionState(options)
    config.pluginmanager.register(OutcomeRecorder(state), "nnviz-outcomes")


def _update_mode(config: pytest.Config) -> UpdateMode:
    given = config.getoption("nnviz_update")
    if given is None:
        given = "none" if os.environ.get("CI") else str(config.getini("nnviz_update"))
    if given not in ("none", *UPDATE_MODES):
        raise pytest.UsageError(f"nnviz: unknown update mode {given!r} (use all or new)")
    mode: UpdateMode = given  # type: ignore[assignment]
    return mode


def _tracer(config: pytest.Config) -> str:
    from nnviz.tracers import TRACERS

    tracer = str(config.getini("nnviz_tracer")).strip() or "auto"
    if tracer not in TRACERS:
        raise pytest.UsageError(
            f"nnviz: unknown nnviz_tracer {tracer!r} (use {', '.join(TRACERS)})"
        )
    return tracer


def _repository(rootdir: Path) -> Path:
    from nnviz.review import repository_root

    workspace = os.environ.get("GITHUB_WORKSPACE")
    if workspace and rootdir.resolve().is_relative_to(Path(workspace).resolve()):
        return Path(workspace).resolve()
    return repository_root(rootdir)


@pytest.fixture
def nnviz_snapshot(request: pytest.FixtureRequest) -> NNVizSnapshot:
    """Fail the test when a model's architecture drifts from its stored snapshot.

        def test_resnet(nnviz_snapshot):
            nnviz_snapshot(torchvision.models.resnet18())

    Call it as `nnviz_snapshot(model, inputs=..., name=..., depth=..., ignore=[...],
    tracer=...)`; what it asks for (shapes, a tracer) is recorded or the test fails; it
    returns the `GraphDiff` (falsy when identical). Create or accept snapshots with
    `pytest --nnviz-update`, or review the pending changes with `nnviz review`.
    """
    from pytest_nnviz.assertion import NNVizSnapshot

    return NNVizSnapshot(request.node, request.config.stash[STATE])


def pytest_collection_finish(session: pytest.Session) -> None:
    from pytest_nnviz.location import locate

    tests = session.config.stash[STATE].tests
    for item in session.items:
        tests[item.nodeid] = locate(item.nodeid, Path(item.path))


class OutcomeRecorder:
    """The hooks whose arguments carry no config: bound to this session's state instead."""

    def __init__(self, state: SessionState) -> None:
        self.state = state

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.state.deselected.update(item.nodeid for item in items)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self.state.collect_errors = self.state.collect_errors or report.failed

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.state.record_outcome(report.nodeid, report.when, report.outcome)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist, on the controller: take over a finished worker's records."""
    payload = getattr(node, "workeroutput", {}).get("nnviz")
    if payload:
        node.config.stash[STATE].merge(payload)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = config.stash[STATE]
    if is_worker(config):
        config.workeroutput["nnviz"] = state.payload()  # type: ignore[attr-defined]
    else:
        config.stash[CONCLUSION] = conclude(session, state)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    conclusion = config.stash.get(CONCLUSION, None)
    if conclusion is None:
        return
    terminalreporter.section("nnviz")
    for line in [conclusion.summary, *conclusion.lines]:
        terminalreporter.write_line(line)
    for annotation in conclusion.annotations:
        terminalreporter.write_line(annotation)
