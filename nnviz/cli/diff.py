"""`nnviz diff OLD NEW`: the structural diff of two architectures, printed and drawn."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from nnviz.cli import options
from nnviz.cli.shell import (
    SNAPSHOT_SUFFIX,
    cli,
    graphviz_messages,
    one_line_errors,
    progress,
    warnings_as_lines,
)
from nnviz.collector import gc_paused, kept

if TYPE_CHECKING:
    from nnviz.diffing.model import GraphDiff


@cli.command("diff")
@click.argument("old")
@click.argument("new")
@options.out(
    "Also draw the highlighted union graph here (.pdf .svg .png .dot .gv): added green, "
    "removed red and dashed, changed orange, renamed blue, unchanged grey, e.g. -o diff.pdf; "
    "-o diff.html writes the interactive page (changelog links, expand, search); "
    "a .json path gets the diff document instead."
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
@options.inputs
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
@click.option(
    "--key-map",
    "key_map",
    type=click.Path(dir_okay=False),
    help="Write the state-dict key map here as JSON (old key -> new key for every renamed or "
    "moved tensor, null for a key no longer used) so old checkpoints load into NEW; when no map "
    "can mend the break, a warning says why, and the map is written only if keys are renamed, "
    "for a load with strict=False, e.g. --key-map map.json.",
)
@options.drawing
@options.quiet
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
    key_map: str | None,
    styles: tuple[str, ...],
    engine: str | None,
    quiet: bool,
) -> None:
    """Compare two architectures and print what changed; exit 0 if identical, 1 if not.

    OLD and NEW are snapshot .json files or MODEL specs (resnet18, pkg.module:callable,
    path/file.py:callable). Weights, train/eval mode and source locations never count.
    Example: `nnviz diff main.json branch.json -o diff.pdf`. Errors exit 2.
    """
    with one_line_errors(ctx), gc_paused():  # a short process: no cycle collection needed
        import nnviz
        from nnviz import preflight
        from nnviz.fs import check_writable
        from nnviz.render.style import parse_style

        style = parse_style(styles)  # everything checkable is checked before anything is traced
        if out:
            preflight.check(outputs=[out], style=style, engine=engine, diff=True)
        if key_map:
            check_writable(key_map)
        for spec in (old, new):
            if not spec.endswith(SNAPSHOT_SUFFIX):
                progress(quiet, f"tracing {spec} ...")
        with warnings_as_lines(quiet):
            result = nnviz.diff(old, new, ignore=ignore, strict=strict, inputs=inputs)
        kept(result)  # never freed object by object: the process ends after the command
        if key_map:
            _write_key_map(result, key_map, quiet)
        if out:
            with graphviz_messages(quiet):
                written = nnviz.draw(result, out, context=context, style=style, engine=engine)
            progress(quiet, f"wrote {written}")
        if not quiet:
            if output_format == "json":
                import json

                click.echo(json.dumps(result.to_dict(), indent=1, ensure_ascii=False))
            elif output_format == "markdown":
                click.echo(result.to_markdown(), nl=False)
            else:
                colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
                text = result.to_text(verbose, colour=colour)
                click.echo(text, nl=False)
    ctx.exit(0 if result.identical else 1)


def _write_key_map(result: GraphDiff, path: str, quiet: bool) -> None:
    """The key map as JSON at `path` (atomic), or one warning line saying why none is written;
    where no map mends the break but keys are renamed, the map of a non-strict load, with a
    warning saying so."""
    import json

    from nnviz.errors import CheckpointError
    from nnviz.fs import atomic_write

    verdict = result.checkpoint
    assert verdict is not None  # every diff computes one
    try:
        mapping = verdict.key_map()
    except CheckpointError as exc:
        if verdict.status == "unknown" or not verdict.renamed:
            if not quiet:
                click.echo(f"nnviz: warning: {exc}; {path} not written", err=True)
            return
        mapping = verdict.key_map(strict=False)
        if not quiet:
            click.echo(
                f"nnviz: warning: no key map for a strict load: {verdict.why_no_map()}; {path} "
                "is the map for load_state_dict(state, strict=False), which leaves them at "
                "initialisation",
                err=True,
            )
    atomic_write(path, json.dumps(mapping, indent=1, ensure_ascii=False) + "\n")
    progress(quiet, f"wrote {path} ({len(mapping)} keys)")
