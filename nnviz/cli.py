"""The `nnviz` command: thin click shells over the public API.

Every command parses its options, calls the library, and maps `NNVizError` to one line on stderr
and exit code 2 (`--debug` shows the traceback instead).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from nnviz import __version__
from nnviz.errors import ModelBuildError, NNVizError, NNVizWarning
from nnviz.fs import check_writable
from nnviz.tracers import TRACERS

SNAPSHOT_SUFFIX = ".json"


class _DrawingGroup(click.Group):
    """The `nnviz` command: it draws (`nnviz MODEL [OPTIONS]`, the `draw` subcommand without its
    name) and holds the other subcommands; its help shows the drawing options too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        global_opts = {"--help", "-h", "--version", "--debug"}
        first = next((a for a in args if a not in global_opts), None)
        if first is not None and first not in self.commands:
            index = args.index(first)
            args = [*args[:index], "draw", *args[index:]]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "MODEL [OPTIONS]")
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="  or:  ")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        draw = self.commands["draw"]
        with click.Context(draw, info_name="draw", parent=ctx) as draw_ctx:
            options = [p for p in draw.get_params(draw_ctx) if isinstance(p, click.Option)]
            rows = [r for p in options if (r := p.get_help_record(draw_ctx))]
        with formatter.section("Drawing options (nnviz MODEL [OPTIONS])"):
            formatter.write_dl([r for r in rows if not r[0].startswith("-h,")])
        super().format_options(ctx, formatter)  # the global options, then the commands


@click.group(cls=_DrawingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="nnviz")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Draw PyTorch models as hierarchical Graphviz diagrams, and diff their architectures.

    \b
    Draw a model: nnviz MODEL [OPTIONS]
      nnviz resnet18                      writes resnet18.pdf
      nnviz resnet18 -d 3 -o r18.svg      modules down to depth 3, as SVG
      nnviz mymodel.py:Net -i default     your model, with tensor shapes
    MODEL: a torchvision name, pkg.module:callable, path/file.py:callable or a
    snapshot .json.

    \b
    Compare two architectures: nnviz diff OLD NEW (see nnviz diff --help);
    review snapshot drift from pytest: nnviz review, nnviz accept, nnviz report.
    """
    ctx.obj = {"debug": debug}


@cli.command("draw")
@click.argument("model")
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False),
    help="Output file; its extension picks the format (.pdf .svg .png .dot .gv .json, or .html: "
    "one interactive page that works offline). Defaults to MODEL.pdf in the current folder.",
)
@click.option(
    "-j",
    "--json",
    "dump_json",
    is_flag=True,
    help="Also write the graph snapshot beside the drawing (wow.pdf -> wow.json).",
)
@click.option("-l", "--layer", help="Keep only this submodule (dotted path), e.g. layer2.0.")
@click.option(
    "-a",
    "--arg",
    "arguments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Constructor argument, a Python literal, e.g. -a num_classes=10. Repeatable.",
)
@click.option(
    "-i",
    "--input",
    "inputs",
    metavar="INPUT",
    help="Trace with data so that every edge shows its shape: default, image<side>, "
    "image<h>x<w>, tensor<d1>x<d2>...[:dtype], key:value;key:value, or a torch expression, "
    "e.g. -i default, -i tensor1x16:int64, -i 'x:image64;y:tensor1x10'.",
)
@click.option(
    "--tracer",
    type=click.Choice(TRACERS),
    default="auto",
    show_default=True,
    help="How to trace: fx (symbolic), eager (run the model on the -i input and record it), or "
    "auto: fx, and eager when fx fails (torchvision models bring their own example input), "
    "e.g. nnviz fasterrcnn_resnet50_fpn, or nnviz my.py:Net -i default --tracer eager.",
)
@click.option(
    "-d",
    "--depth",
    type=int,
    default=2,
    show_default=True,
    help="Collapse modules nested deeper than this into one node each; -1 draws everything, "
    "e.g. -d 1.",
)
@click.option(
    "-c",
    "--collapse",
    multiple=True,
    metavar="PREFIX",
    help="Collapse this module (dotted path) into one node, e.g. -c features. Repeatable.",
)
@click.option(
    "-S",
    "--style",
    "styles",
    multiple=True,
    metavar="KEY=VALUE",
    help="Drawing style, e.g. -S rankdir=LR -S node_title_font_size=18. Repeatable; an "
    "unknown key lists the valid ones.",
)
@click.option("-s", "--show", is_flag=True, help="Open the drawing with the default app.")
@click.option(
    "--engine",
    type=click.Choice(["embedded", "system"]),
    help="Graphviz to run: embedded (bundled with pygraphviz, the default) or system (`dot` "
    "on PATH). Also NNVIZ_ENGINE.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.pass_context
def draw_command(
    ctx: click.Context,
    model: str,
    out: str | None,
    dump_json: bool,
    layer: str | None,
    arguments: tuple[str, ...],
    inputs: str | None,
    tracer: str,
    depth: int,
    collapse: tuple[str, ...],
    styles: tuple[str, ...],
    show: bool,
    engine: str | None,
    quiet: bool,
) -> None:
    """Trace MODEL and draw it (the same as `nnviz MODEL`).

    MODEL is a torchvision name (resnet18), pkg.module:callable, path/file.py:callable, or a
    snapshot .json written earlier. Example: `nnviz resnet18 -a num_classes=10 -o r.json`.
    """
    with _errors(ctx):
        import nnviz
        from nnviz import models
        from nnviz.render import engine as graphviz_engine
        from nnviz.render.output import draw_graph
        from nnviz.render.style import parse_style
        from nnviz.tracers.inputs import parse_inputs

        # Everything checkable is checked before torch is imported (seconds) and the model traced.
        spec = models.parse_spec(model)
        args = models.parse_arguments(arguments)
        target = Path(out) if out else Path(_default_name(spec.title(args), layer) + ".pdf")
        graphviz_engine.format_of(target)
        style = parse_style(styles)
        if inputs is not None:
            parse_inputs(inputs)
        for path in (target, target.with_suffix(SNAPSHOT_SUFFIX)) if dump_json else (target,):
            check_writable(path)
        if spec.kind == "torchvision":
            models.check_torchvision_name(spec.target)
        _progress(quiet, f"tracing {model} ...")
        with _warnings_as_lines(drop=(NNVizWarning,) if quiet else ()):
            try:
                graph = nnviz.trace(model, args=args, inputs=inputs, tracer=tracer)
            except ModelBuildError as exc:
                raise ModelBuildError(f"{exc}{models.read_as_strings(arguments)}") from None
        if target.suffix.lower() != SNAPSHOT_SUFFIX:
            _progress(quiet, f"laying out {len(graph)} nodes ...")
        # Snapshots hold the full graph (or the -l selection): -d and -c only shape the picture.
        with _graphviz_messages(quiet):
            written = [
                draw_graph(
                    graph,
                    target,
                    depth=depth,
                    collapse=collapse,
                    layer=layer,
                    style=style,
                    engine=engine,
                )
            ]
        if dump_json and target.suffix.lower() != SNAPSHOT_SUFFIX:
            json_path = target.with_suffix(SNAPSHOT_SUFFIX)
            written.append(draw_graph(graph, json_path, layer=layer))
        for path in written:
            _progress(quiet, f"wrote {path}")
        if show:
            problem = graphviz_engine.open_with_default_app(written[0])
            if problem and not quiet:
                click.echo(f"nnviz: {problem}", err=True)


def _progress(quiet: bool, message: str) -> None:
    """Status lines for people watching a terminal; silent when stderr is a file or pipe."""
    if not quiet and sys.stderr.isatty():
        click.echo(f"nnviz: {message}", err=True)


def _default_name(model_name: str, layer: str | None) -> str:
    return f"{model_name}_{layer.replace('.', '-')}" if layer else model_name


@contextlib.contextmanager
def _warnings_as_lines(drop: tuple[type[Warning], ...] = ()) -> Iterator[None]:
    """Show nnviz's own warnings (e.g. failed data tracing) as one `nnviz: warning:` line each,
    except those of a `drop` class; library warnings from torch and friends are noise on the
    command line and are dropped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NNVizWarning)
        yield
    for warning in caught:
        if issubclass(warning.category, NNVizWarning) and not issubclass(warning.category, drop):
            click.echo(f"nnviz: warning: {' '.join(str(warning.message).split())}", err=True)


def _graphviz_messages(quiet: bool) -> contextlib.AbstractContextManager[object]:
    """-q: Graphviz's own warnings go too; its errors still raise and are reported."""
    return contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext()


class _errors:
    """Map typed errors to one line on stderr and exit 2; keep tracebacks for --debug."""

    def __init__(self, ctx: click.Context) -> None:
        self.debug = bool((ctx.find_root().obj or {}).get("debug"))

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, (click.exceptions.Exit, click.ClickException)):
            return
        if self.debug and isinstance(exc, Exception):
            # The traceback, then the same one line and exit code 2 (never 1: that is `diff`'s).
            import traceback

            traceback.print_exception(exc)
        if isinstance(exc, NNVizError):
            message = str(exc)
        elif isinstance(exc, KeyboardInterrupt):
            message = "interrupted"
        elif isinstance(exc, Exception):
            message = f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)"
        else:
            return
        click.echo(f"nnviz: error: {' '.join(message.split())}", err=True)
        sys.exit(2)


@cli.command("diff")
@click.argument("old")
@click.argument("new")
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False),
    help="Also draw the highlighted union graph here (.pdf .svg .png .dot .gv): added green, "
    "removed red and dashed, changed orange, renamed blue, unchanged grey, e.g. -o diff.pdf; "
    "-o diff.html writes the interactive page (changelog links, expand, search); "
    "a .json path gets the diff document instead.",
)
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="What to print: text (a review changelog), json (the nnviz-diff document of "
    "docs/diff-format.md) or markdown (table, changelog and a Mermaid flowchart for a PR).",
)
@click.option(
    "--context",
    type=int,
    default=3,
    show_default=True,
    help="In the drawing, how many hops of unchanged neighbours stay expanded around each "
    "change; -1 expands everything, e.g. --context 1.",
)
@click.option(
    "--ignore",
    multiple=True,
    metavar="FIELD",
    help="Do not count changes of this field: spec, inputs, args, hparams, parameters, class, "
    "op, or one key such as hparams.eps (or just eps). Repeatable, e.g. --ignore spec.",
)
@click.option(
    "-i",
    "--input",
    "inputs",
    metavar="INPUT",
    help="Trace MODEL arguments with this input (as for drawing) so that shapes are compared "
    "too, e.g. -i default. Snapshots keep what they were traced with.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Count information as drift too: scalar shape arithmetic and container attributes "
    "that change nothing below them (listed apart, exit 0 without --strict).",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="List every change on its own line: parameter shapes and outputs that follow a "
    "hyperparameter, each op inside a swapped module, each shape that follows upstream.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; only the exit code tells.")
@click.pass_context
def diff_command(
    ctx: click.Context,
    old: str,
    new: str,
    out: str | None,
    output_format: str,
    context: int,
    ignore: tuple[str, ...],
    inputs: str | None,
    strict: bool,
    verbose: bool,
    quiet: bool,
) -> None:
    """Compare two architectures and print what changed; exit 0 if identical, 1 if not.

    OLD and NEW are snapshot .json files or MODEL specs (resnet18, pkg.module:callable,
    path/file.py:callable). Weights, train/eval mode and source locations never count.
    Example: `nnviz diff main.json branch.json -o diff.pdf`. Errors exit 2.
    """
    with _errors(ctx):
        import nnviz

        for spec in (old, new):
            if not spec.endswith(SNAPSHOT_SUFFIX):
                _progress(quiet, f"tracing {spec} ...")
        with _warnings_as_lines(drop=(NNVizWarning,) if quiet else ()):
            result = nnviz.diff(old, new, ignore=ignore, strict=strict, inputs=inputs)
        if out:
            with _graphviz_messages(quiet):
                written = nnviz.draw(result, out, context=context)
            _progress(quiet, f"wrote {written}")
        if not quiet:
            if output_format == "json":
                import json

                click.echo(json.dumps(result.to_dict(), indent=1, ensure_ascii=False))
            elif output_format == "markdown":
                click.echo(result.to_markdown(), nl=False)
            else:
                text = result.to_text(verbose)
                if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
                    from nnviz.diffing.changelog import coloured

                    text = coloured(text)
                click.echo(text, nl=False)
    ctx.exit(0 if result.identical else 1)


@cli.command("report")
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
    with _errors(ctx):
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


def _artifacts_and_ids(target: str | None, test_ids: tuple[str, ...]) -> tuple[str, list[str]]:
    """`nnviz accept test.py::t` takes a test id for the folder: the folder is optional."""
    from nnviz.review import ARTIFACTS_DIR

    if target is not None and ("::" in target or not Path(target).exists()):
        return ARTIFACTS_DIR, [target, *test_ids]
    return target or ARTIFACTS_DIR, list(test_ids)


@cli.command("accept")
@click.argument("target", required=False, metavar="[DIR|REPORT]")
@click.argument("test_ids", nargs=-1, metavar="[TEST_ID]...")
@click.pass_context
def accept_command(ctx: click.Context, target: str | None, test_ids: tuple[str, ...]) -> None:
    """Accept pending architecture changes: write each drift's new snapshot over the stored one.

    DIR is the artifacts folder (default .nnviz-artifacts) or its report.json, also one
    downloaded from CI: `gh run download RUN -n nnviz-drift -D .nnviz-artifacts && nnviz accept
    .nnviz-artifacts`. TEST_IDs (a node id, or a test file) pick some; default all. A snapshot
    changed since the run compared it is refused with one line and left as it is; the others go
    on. Run it in the repository. Exits 0 when all were accepted, 1 when one was refused.
    """
    with _errors(ctx):
        from nnviz import review

        folder, ids = _artifacts_and_ids(target, test_ids)
        chosen = review.select(review.load_pending(folder), ids)
        if not chosen:
            click.echo("nnviz: no pending changes")
        tally = review.accept_all(chosen, click.echo)
        if chosen:
            click.echo(tally.line())
    ctx.exit(1 if tally.refused else 0)


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
    with _errors(ctx):
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


def main() -> None:
    """Console-script entry point: every error, click's usage errors included, is one line
    `nnviz: error: ...` on stderr and exit code 2."""
    try:
        code = cli.main(prog_name="nnviz", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # plain `nnviz`: the help, as click shows it
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # usage errors, bad option values, unreadable files
        message = exc.format_message()
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            message = f"{message.rstrip('.')}; see `{exc.ctx.command_path} --help`"
        click.echo(f"nnviz: error: {' '.join(message.split())}", err=True)
        sys.exit(2)
    except click.Abort:  # Ctrl-C or end of input while click itself was reading
        click.echo("nnviz: error: interrupted", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
