"""The `nnviz_snapshot` fixture's value: call it with a model, get the `GraphDiff` back.

Each call locates its snapshot file, traces the model, runs the snapshot engine, records the
result for the session report and fails the test (pointing at the caller's line) when the
snapshot is missing, unreadable or drifted.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest

import nnviz
from nnviz import costs
from nnviz.diffing.changelog import parts
from nnviz.driftreport import PENDING
from nnviz.errors import NNVizError
from nnviz.graph import Graph
from nnviz.policy import Policy, checkpoint_reasons
from pytest_nnviz.asks import Ask, asked, trace_as_asked
from pytest_nnviz.engine import Check, artifact_stem, perform_check
from pytest_nnviz.location import locate, relative
from pytest_nnviz.session import SessionState, SnapshotResult

if TYPE_CHECKING:
    from nnviz.diffing.model import GraphDiff

MAX_CHANGELOG_LINES = 9
"""Longer changelogs are cut in the failure message; the full one is in report.json."""


class NNVizSnapshot:
    """Compares models with the snapshots of one test; see `nnviz_snapshot`."""

    def __init__(self, item: pytest.Item, state: SessionState) -> None:
        self._item = item
        self._state = state
        self._location = locate(item.nodeid, item.path)
        self._unnamed = 0
        self._taken: set[Path] = set()

    def __call__(
        self,
        model: Any,
        *,
        inputs: Any = None,
        name: str | None = None,
        depth: int | None = None,
        ignore: tuple[str, ...] | list[str] = (),
        tracer: str | None = None,
        memory_limit: int | str | None = None,
        fail_on: str | None = None,
        exportable: bool | None = None,
        max_macs: float | None = None,
    ) -> GraphDiff:
        """Trace `model` and compare it with this call's snapshot.

        `model`: an `nn.Module`, a MODEL spec (`"resnet18"`) or a `Graph`; `inputs`: example
        inputs (an `-i` string or tensors) so tensor shapes are part of the snapshot; `name`:
        the snapshot's name when a test takes several; `depth`: keep modules down to this depth;
        `ignore`: change fields not to compare (as `nnviz diff --ignore`, added to the
        `nnviz_ignore` ini option); `tracer`: `fx` or `eager` to insist on one (default: the
        `nnviz_tracer` ini option, `auto`). Without `inputs` the `nnviz_inputs` ini option
        applies. `memory_limit`: the most a CPU copy of a meta model may allocate when it cannot
        run on meta (`8GB`; default: the memory available). `fail_on`: which drifts fail the
        test, as the Action's `fail-on` (default: the `nnviz_fail_on` ini option, `any`);
        `"checkpoint"` fails only when old checkpoints stop loading even with the key map (a
        rename passes, and stays in report.json for review), and also when the architecture
        is the same but the state-dict keys are not. `exportable`: record whether
        `torch.export` succeeds on the inputs (default: the `nnviz_exportable` ini option); a
        model that stops exporting then drifts, with the reason and its `file:line`. What was
        asked (shapes, a tracer, exportability) is recorded or the test fails with one line and
        nothing is written (`pytest_nnviz.asks`),
        as when the model cannot be traced. `fail_on` takes cost terms too (`macs>+5%`,
        `activations>+10%`), and `max_macs` is a compute budget in multiply-accumulates (`4.2e9`)
        the model must stay within (the figure in the message); both need the cost, so inputs
        (else the test fails in one line). Returns the `GraphDiff` from the stored snapshot
        (falsy: identical).
        """
        __tracebackhide__ = True
        line = self._call_line()
        snapshot = self._claim(name)
        policy, asks = self._asks(inputs, tracer, fail_on, exportable, max_macs)
        graph, unmet = trace_as_asked(model, asks, depth, memory_limit)
        if graph is None or unmet:
            pytest.fail("\n".join(unmet), pytrace=False)
        if max_macs is not None:
            _budget(graph, max_macs)
        check = self._check(graph, snapshot, ignore, any(a.kind == "export" for a in asks))
        self._state.results.append(self._result(check, line, model, graph))
        return self._verdict(check, policy, graph)

    # --- the steps of a call -----------------------------------------------------------------

    def _asks(
        self,
        inputs: Any,
        tracer: str | None,
        fail_on: str | None,
        exportable: bool | None,
        max_macs: float | None,
    ) -> tuple[Policy, tuple[Ask, ...]]:
        """The call's policy and what it asks the trace to record (the ini options filled in)."""
        __tracebackhide__ = True
        options = self._state.options
        try:
            policy = Policy.parse(fail_on if fail_on is not None else options.fail_on)
        except NNVizError as exc:
            pytest.fail(f"nnviz: {exc}", pytrace=False)
        asks = asked(
            inputs=inputs,
            tracer=tracer,
            ini_inputs=options.inputs,
            ini_tracer=options.tracer,
            checkpoint=policy.checkpoint,
            exportable=exportable,
            ini_exportable=options.exportable,
            cost=_cost_asked(fail_on, options.fail_on, policy, max_macs),
        )
        return policy, asks

    def _check(
        self, graph: Graph, snapshot: Path, ignore: tuple[str, ...] | list[str], exporting: bool
    ) -> Check:
        """Run the engine; fail when the stored snapshot cannot guard the asked exportability."""
        __tracebackhide__ = True
        options = self._state.options
        stem = artifact_stem(snapshot, options.rootdir, options.artifacts_dir)
        rules = (*options.ignore, *ignore)
        try:
            check = perform_check(
                graph, snapshot, stem, update=options.update, ignore=rules, strict=options.strict
            )
        except NNVizError as exc:  # an unknown ignore field: the user's line, not a traceback
            pytest.fail(f"nnviz: {exc}", pytrace=False)
        if exporting and check.status == "passed" and _unrecorded_export(check.diff):
            pytest.fail(
                f"nnviz: {options.relative(check.snapshot)} records no exportability, "
                f"so it cannot guard it; record it: pytest --nnviz-update "
                f"{shlex.quote(self._rerun_id())}",
                pytrace=False,
            )
        return check

    def _verdict(self, check: Check, policy: Policy, graph: Graph) -> GraphDiff:
        """Fail as the policy says, else the diff from the stored snapshot."""
        __tracebackhide__ = True
        if check.status == "drifted" and check.diff is not None:
            reasons = policy.diff_reasons(check.diff.to_dict())
            if reasons:
                pytest.fail(self._message(check, reasons))
            return check.diff  # the policy lets it pass; report.json keeps it for review
        if not check.ok:
            pytest.fail(self._message(check))
        if check.status == "passed" and check.diff is not None:
            if policy.checkpoint:
                self._checkpoint_loads(check)
            if policy.asks_cost:
                self._cost_known(check)  # the same architecture, but a cost term cannot compare
            return check.diff
        # Written just now: the stored snapshot is the current graph.
        return nnviz.diff(graph, graph)

    # --- where -----------------------------------------------------------------------------

    def _claim(self, name: str | None) -> Path:
        __tracebackhide__ = True
        if name is None:
            path = self._location.snapshot(index=self._unnamed)
            self._unnamed += 1
        else:
            path = self._location.snapshot(name)
        if path in self._taken:
            pytest.fail(
                f"nnviz: two nnviz_snapshot calls in this test use {path.name}; "
                "give each a different name=",
                pytrace=False,
            )
        self._taken.add(path)
        return path

    def _call_line(self) -> int:
        # The innermost frame in the test's own file, so helpers in other files still point
        # at the test; else the direct caller.
        caller = sys._getframe(2)
        test_file = str(self._item.path)
        frame: FrameType | None = caller
        while frame is not None:
            if frame.f_code.co_filename == test_file:
                return frame.f_lineno
            frame = frame.f_back
        return caller.f_lineno

    # --- what to tell ------------------------------------------------------------------------

    def _result(self, check: Check, line: int, model: object, graph: Graph) -> SnapshotResult:
        options = self._state.options
        drifted = check.status == "drifted" and check.diff is not None
        sources = []
        if drifted and check.diff is not None:
            from pytest_nnviz import sources as lines

            if not isinstance(model, (str, Graph)):
                changed = lines.changed_modules(check.diff)
                sources = lines.definition_lines(model, changed, options.repository)
            calls = lines.changed_calls(check.diff)
            sources += lines.call_lines(graph, calls, options.repository)
        return SnapshotResult(
            nodeid=self._item.nodeid,
            file=options.relative(self._item.path),
            line=line,
            snapshot=options.relative(check.snapshot),
            status=check.status,
            digest=check.digest if drifted else None,
            artifacts={k: relative(p, options.artifacts_dir) for k, p in check.artifacts.items()},
            sources=sources,
            diff=check.diff.to_dict() if drifted and check.diff is not None else None,
        )

    def _message(self, check: Check, reasons: list[str] | None = None) -> str:
        snapshot = self._state.options.relative(check.snapshot)
        fix = f"pytest --nnviz-update {shlex.quote(self._rerun_id())}"
        if check.status == "missing":
            lines = [f"nnviz: no snapshot {snapshot} yet", f"Create it with: {fix}"]
            if PENDING in check.artifacts:
                lines.append(f"or accept the pending one: nnviz accept {self._artifacts_shown()}")
            return "\n".join(lines)
        if check.status == "failed":
            return (
                f"nnviz: snapshot {snapshot} is unreadable: {check.problem}\nReplace it with: {fix}"
            )
        assert check.diff is not None
        said = parts(check.diff.to_dict())
        # the changes, the totals line, the checkpoint verdict, exportability, what is not drift
        changes, summary = list(said.body), said.totals
        information = [*said.checkpoint[:1], *said.export[:1], *said.info[:1]]
        if len(changes) > MAX_CHANGELOG_LINES - 1:
            cut = len(changes) - MAX_CHANGELOG_LINES + 2
            changes = [*changes[: MAX_CHANGELOG_LINES - 2], f"... {cut} more lines in report.json"]
        lines = [f"nnviz: the architecture drifted from {snapshot}", *changes, summary]
        lines += information
        if reasons and reasons != ["drifted"]:  # a policy other than `any` said why
            lines.append(f"fails the policy: {', '.join(reasons)}")
        drawing = check.artifacts.get("pdf") or check.artifacts.get("svg")
        if drawing:
            lines.append(f"Diff drawing: {self._shown(drawing)}")
        if "html" in check.artifacts:
            page = self._shown(check.artifacts["html"])
            lines.append(f"Interactive diff (open in a browser): {page}")
        if check.artifact_problems:
            lines.append(f"(drawing not written: {check.artifact_problems[0]})")
        if PENDING in check.artifacts:
            lines.append(f"Review it with: nnviz review {self._artifacts_shown()}")
        lines.append(f"Accept the change with: {fix}")
        return "\n".join(lines)

    def _checkpoint_loads(self, check: Check) -> None:
        """Fail when old checkpoints stop loading though the architecture is the same."""
        __tracebackhide__ = True
        assert check.diff is not None
        reasons = checkpoint_reasons(check.diff.to_dict())
        if reasons:
            fix = f"pytest --nnviz-update {shlex.quote(self._rerun_id())}"
            where = self._state.options.relative(check.snapshot)
            pytest.fail(f"nnviz: {where}: {'; '.join(reasons)}\nRe-record it with: {fix}")

    def _cost_known(self, check: Check) -> None:
        """Fail when a policy's cost term cannot compare with the stored snapshot (one line)."""
        __tracebackhide__ = True
        assert check.diff is not None
        unknown = check.diff.cost.unknown_line()
        if unknown:
            fix = f"pytest --nnviz-update {shlex.quote(self._rerun_id())}"
            where = self._state.options.relative(check.snapshot)
            pytest.fail(f"nnviz: {where}: {unknown.split(':')[0]}\nRe-record it with: {fix}")

    def _rerun_id(self) -> str:
        """The node id as the user's shell sees it (relative to where pytest was started)."""
        test_path = self._shown(self._item.path)
        rest = self._item.nodeid.partition("::")[2]
        return f"{test_path}::{rest}" if rest else test_path

    def _shown(self, path: Path) -> str:
        return relative(path, self._item.config.invocation_params.dir)

    def _artifacts_shown(self) -> str:
        return shlex.quote(self._shown(self._state.options.artifacts_dir))


def _unrecorded_export(diff: GraphDiff | None) -> bool:
    """Whether the stored side of a comparison lacks the exportability the call asked for."""
    change = None if diff is None else diff.export
    return change is not None and change.old is None


def _cost_asked(
    fail_on: str | None, ini: str, policy: Policy, max_macs: float | None
) -> str | None:
    """How the call asked for the cost, if it did (`max_macs=4e+09`, `fail_on='macs>+5%'`)."""
    __tracebackhide__ = True
    if max_macs is not None:
        if isinstance(max_macs, bool) or not isinstance(max_macs, (int, float)) or max_macs < 0:
            pytest.fail(f"nnviz: max_macs={max_macs!r} is not a number of MACs", pytrace=False)
        return f"max_macs={max_macs:g}"
    if not policy.asks_cost:
        return None
    return f"fail_on={fail_on!r}" if fail_on is not None else f"nnviz_fail_on = {ini} (ini)"


def _budget(graph: Graph, max_macs: float) -> None:
    """Fail when the traced model needs more MACs than `max_macs`, with the figures."""
    __tracebackhide__ = True
    total = costs.total(graph)
    if total.macs > max_macs:
        over = total.macs / max_macs - 1 if max_macs else float("inf")
        pytest.fail(
            f"nnviz: {graph.name} needs {costs.macs_text(total.macs)} ({total.macs:,} MACs), "
            f"over its budget max_macs={max_macs:g} ({costs.macs_text(int(max_macs))}) by "
            f"{over:.1%}",
            pytrace=False,
        )
