"""`nnviz report`, `nnviz accept`, `nnviz review`: the pytest plugin's drift report, read,
accepted and walked one change at a time."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nnviz.cli import options
from nnviz.cli.shell import (
    cli,
    one_line_errors,
)

if TYPE_CHECKING:
    from nnviz.review import Pending


class _ReportGroup(click.Group):
    """`nnviz report REPORT|DIR [OPTIONS]` presents a report (the `show` subcommand, its name
    left out); `nnviz report merge DIR... -o OUT` merges the reports of a sharded suite."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((a for a in args if a not in ("--help", "-h")), None)
        if first is not None and first not in self.commands:
            args = ["show", *args]
        return super().parse_args(ctx, args)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        show = self.commands["show"]
        with click.Context(show, info_name=ctx.info_name, parent=ctx.parent) as sub:
            show.format_help(sub, formatter)
        with formatter.section("Merging shards"):
            formatter.write_text(
                "nnviz report merge DIR... -o OUT: one report from the artifact folders of a "
                "sharded suite (see nnviz report merge --help)."
            )


@cli.group("report", cls=_ReportGroup)
def report_group() -> None:
    """Present the pytest plugin's drift report, or merge the reports of a sharded suite."""


@report_group.command("show")
@click.argument("report", metavar="REPORT|DIR")
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(["text", "markdown", "comment", "github"]),
    default="text",
    show_default=True,
    help="text: a plain changelog per drift; markdown: the reviewer's page for "
    "$GITHUB_STEP_SUMMARY (table, warnings, accept commands, changelogs, Mermaid); comment: the "
    "same page as the sticky pull-request comment (marker line, 60000 bytes, a 'no drift any "
    "more' note when clean); github: ::error workflow commands on each drifting test's line and "
    "::warning on the model code that defines each changed module.",
)
@click.option(
    "--root",
    help="pytest's rootdir relative to the repository checkout, prefixed to annotation paths. "
    "Default: the current folder relative to $GITHUB_WORKSPACE on GitHub Actions, else the "
    "report's own record.",
)
@click.option("--artifact-url", help="Link to the uploaded drawings, shown in the markdown.")
@click.option(
    "--artifact-name",
    default="nnviz-drift",
    show_default=True,
    help="Name of the uploaded artifact, for the `gh run download` command in the markdown.",
)
@click.option(
    "--run-id",
    help="The Actions run to download the artifact from. Default: $GITHUB_RUN_ID.",
)
@click.option(
    "--warn-params",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Percent: a ⚠️ line for a drift that moves the parameter count by more than this.",
)
@click.option(
    "--fail-on",
    metavar="POLICY",
    help="Exit 1 when a drift matches POLICY (any, none, changed, added, removed, renamed, "
    "params>N%, params>N; comma-separated) or the report holds another failure (missing or "
    "unreadable snapshots, unused files, other failing tests), e.g. --fail-on removed,params>5%.",
)
@click.option(
    "--max-bytes",
    type=click.IntRange(min=2000),
    help="Fold the markdown to at most this many bytes (default 1000000; 60000 for comment).",
)
@click.pass_context
def report_command(
    ctx: click.Context,
    report: str,
    output_format: str,
    root: str | None,
    artifact_url: str | None,
    artifact_name: str,
    run_id: str | None,
    warn_params: float,
    fail_on: str | None,
    max_bytes: int | None,
) -> None:
    """Present the pytest plugin's drift report (report.json) as text, markdown or annotations.

    Example: `nnviz report .nnviz-artifacts/report.json --format comment`. Exits 0 whether or
    not the report holds drifts (the tests already failed) unless --fail-on says otherwise, 2
    when the report cannot be read.
    """
    with one_line_errors(ctx):
        from nnviz import driftreport, github, policy

        rules = policy.Policy.parse(fail_on) if fail_on is not None else None
        drifts = driftreport.DriftReport.load(driftreport.report_path(report))
        if root is None:  # on GitHub: where pytest ran in the checkout; else the report says
            root = github.workspace_root() if os.environ.get("GITHUB_WORKSPACE") else drifts.root
        how = github.Presentation(
            artifact_url=artifact_url,
            artifact_name=artifact_name,
            run_id=run_id or os.environ.get("GITHUB_RUN_ID") or None,
            source_url=github.source_url(),
            root=root,
            warn_params=warn_params / 100,
        )
        if output_format == "github":
            output = "".join(f"{line}\n" for line in github.workflow_commands(drifts, root=root))
        elif output_format == "markdown":
            output = github.page(drifts, how, limit=max_bytes or github.SUMMARY_LIMIT)
        elif output_format == "comment":
            output = github.comment(drifts, how, limit=max_bytes or github.COMMENT_LIMIT)
        else:
            output = driftreport.text(drifts)
        click.echo(output, nl=False)
        failures = [] if rules is None else policy.verdict(drifts, rules)
    for line in failures:
        click.echo(line, err=True)
    ctx.exit(1 if failures else 0)


@report_group.command("merge")
@click.argument("folders", nargs=-1, required=True, metavar="DIR...")
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="OUT",
    help="The merged artifacts folder (created; an earlier merged folder there is replaced).",
)
@click.pass_context
def merge_command(ctx: click.Context, folders: tuple[str, ...], output: str) -> None:
    """Merge the artifact folders of a sharded suite (one per CI matrix job) into one.

    The merged folder holds one report.json (every drift once, with its pending snapshot and
    drawings, the counts of all shards) that `nnviz report`, `nnviz review` and `nnviz accept`
    read as one run's. A snapshot file is unused only when no shard used it and the shards
    together ran every test. Shards of different commits, or overlapping tests that disagree,
    are refused (exit 2). Example: `nnviz report merge shards/* -o .nnviz-artifacts`.
    """
    with one_line_errors(ctx):
        from nnviz import driftreport, reportmerge

        shards = reportmerge.load(folders)
        merged = reportmerge.merge(shards)
        folder = reportmerge.write(shards, merged, output)
        line = driftreport.text(merged).splitlines()[0]
        click.echo(f"{line} (merged {driftreport.plural(len(shards), 'shard')} into {folder})")
        if merged.run and merged.run.partial:
            click.echo(f"unused snapshots not judged: {'; '.join(merged.run.partial)}")


def _chosen(target: str | None, test_ids: tuple[str, ...]) -> tuple[str, list[Pending]]:
    """The artifacts folder and the pending changes of the tests named (all when none is).
    `nnviz accept test.py::t` takes a test id for the folder: the folder is optional."""
    from nnviz import review

    folder, ids = target or review.ARTIFACTS_DIR, list(test_ids)
    if target is not None and ("::" in target or not Path(target).exists()):
        folder, ids = review.ARTIFACTS_DIR, [target, *test_ids]
    return folder, review.select(review.load_pending(folder), ids)


@cli.command("accept")
@options.pending
@click.option(
    "--remove-unused",
    is_flag=True,
    help="Also delete the snapshot files the report calls unused (a whole run, or the merge of "
    "shards that together ran every test).",
)
@click.pass_context
def accept_command(
    ctx: click.Context, target: str | None, test_ids: tuple[str, ...], remove_unused: bool
) -> None:
    """Accept pending architecture changes: write each drift's new snapshot over the stored one.

    DIR is the artifacts folder (default .nnviz-artifacts) or its report.json, also one
    downloaded from CI: `gh run download RUN -n nnviz-drift -D .nnviz-artifacts && nnviz accept
    .nnviz-artifacts`. TEST_IDs (a node id, or a test file) pick some; default all. A snapshot
    changed since the run compared it is refused with one line and left as it is; the others go
    on. Run it in the repository. Exits 0 when all were accepted, 1 when one was refused.
    """
    with one_line_errors(ctx):
        from nnviz import review

        folder, chosen = _chosen(target, test_ids)
        if remove_unused:
            for path in review.remove_unused(folder):
                click.echo(f"removed unused {path}")
        if not chosen:
            click.echo("nnviz: no pending changes")
        tally = review.accept_all(chosen, click.echo)
        if chosen:
            click.echo(tally.line())
    ctx.exit(1 if tally.refused else 0)


@cli.command("reject")
@options.pending
@click.pass_context
def reject_command(ctx: click.Context, target: str | None, test_ids: tuple[str, ...]) -> None:
    """Reject pending architecture changes: drop each drift's new snapshot, keep the stored one.

    DIR is the artifacts folder (default .nnviz-artifacts) or its report.json; TEST_IDs (a node
    id, or a test file) pick some; default all. The stored snapshots are never touched: the
    tests keep failing until the model is fixed (or the change is accepted after a new run).
    """
    with one_line_errors(ctx):
        from nnviz import review

        _, chosen = _chosen(target, test_ids)
        if not chosen:
            click.echo("nnviz: no pending changes")
            return
        tally = review.reject_all(chosen, click.echo)
        click.echo(tally.line())


@cli.command("review")
@click.argument("folder", required=False, metavar="[DIR]")
@click.pass_context
def review_command(ctx: click.Context, folder: str | None) -> None:
    """Walk the pending architecture changes one by one: a accept, r reject, s skip, d open the
    diff drawing, q quit.

    DIR is the artifacts folder (default .nnviz-artifacts) or its report.json. Without a
    terminal it prints each pending change with the exact command that accepts it, and changes
    nothing. Example: `pytest; nnviz review`.
    """
    with one_line_errors(ctx):
        from nnviz import review
        from nnviz.render import engine

        target = folder or review.ARTIFACTS_DIR
        pending = review.load_pending(target)
        colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        if not pending:
            click.echo("nnviz: no pending changes")
            return
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            for change in pending:
                click.echo(review.describe(change))
                click.echo(f"accept with: {review.accept_command(target, change.drift.nodeid)}\n")
            click.echo(f"nnviz: {len(pending)} pending; nothing changed (no terminal to ask in)")
            return
        with review.terminal_keys() as key:
            tally = review.review(
                pending,
                show=lambda change, i, n: click.echo(
                    f"\n[{i}/{n}] " + review.describe(change, colour)
                ),
                key=key,
                echo=click.echo,
                open_file=engine.open_with_default_app,
            )
        click.echo(tally.line())
    ctx.exit(1 if tally.refused else 0)
