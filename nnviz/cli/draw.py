"""`nnviz MODEL` / `nnviz draw MODEL`: load, trace and draw a model (or a snapshot).

The command only parses: `nnviz.preflight` checks every argument before torch is imported,
`nnviz.trace` traces, `nnviz.draw` writes the drawing and the `-j` snapshot.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from nnviz.collector import gc_paused
from nnviz.errors import ModelBuildError
from nnviz.tracers import TRACERS

if TYPE_CHECKING:
    from nnviz.graph import Graph


@cli.command("draw")
@click.argument("model")
@options.out(
    "Output file; its extension picks the format (.pdf .svg .png .dot .gv .json, .html: "
    "one interactive page that works offline, or .txt: a table of modules with output shape, "
    "params, MACs and activations; - prints that table). Defaults to MODEL.pdf here."
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
@options.inputs
@click.option(
    "--tracer",
    type=click.Choice(TRACERS),
    default="auto",
    show_default=True,
    help="How to trace: fx (symbolic), eager (run the model on the -i input and record it), "
    "export (torch.export on the -i input; keeps named sizes such as -i tensorBx3x224x224 as "
    "symbols), or auto: fx, and eager when fx fails (torchvision models bring their own example "
    "input), export when -i names a size, "
    "e.g. nnviz fasterrcnn_resnet50_fpn, or nnviz my.py:Net -i default --tracer eager.",
)
@click.option(
    "--memory-limit",
    metavar="SIZE",
    help="The most a CPU copy of a meta model may allocate when the model cannot run on meta "
    "(.item(), data-dependent shapes); above it nnviz refuses in one line. Default: the memory "
    "this machine has available, e.g. --memory-limit 8GB.",
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
@options.drawing
@click.option("-s", "--show", is_flag=True, help="Open the drawing with the default app.")
@options.quiet
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
    memory_limit: str | None,
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
    # Drawing a snapshot is a short, torch-free process: no cycle collection needed (a fifth of
    # a 20,000-node drawing's CPU); a trace keeps it (torch makes cycles).
    paused = gc_paused() if model.lower().endswith(SNAPSHOT_SUFFIX) else contextlib.nullcontext()
    with one_line_errors(ctx), paused:
        from nnviz import models, preflight
        from nnviz.render.style import parse_style

        spec, args = models.parse_spec(model), models.parse_arguments(arguments)
        target = _target(out, spec.title(args), layer)
        beside = [target.with_suffix(SNAPSHOT_SUFFIX)] if dump_json else []
        style = parse_style(styles)
        preflight.check(
            model,
            outputs=[*([] if out == "-" else [target]), *beside],
            style=style,
            engine=engine,
            depth=depth,
            inputs=inputs,
            memory_limit=memory_limit,
            tracer=tracer,
        )
        progress(quiet, f"tracing {model} ...")
        with warnings_as_lines(quiet):
            graph = _trace(model, arguments, inputs, tracer, memory_limit)
        if out == "-":
            from nnviz import transform
            from nnviz.render.table import summary

            click.echo(summary(transform.select(graph, layer) if layer else graph, depth), nl=False)
            return
        drawing = {"depth": depth, "collapse": collapse, "style": style, "engine": engine}
        written = _draw(graph, [target, *beside], layer, drawing, quiet)
        if show:
            from nnviz.render import engine as graphviz_engine

            problem = graphviz_engine.open_with_default_app(written[0])
            if problem and not quiet:
                click.echo(f"nnviz: {problem}", err=True)


def _target(out: str | None, title: str, layer: str | None) -> Path:
    """The drawing's path: `-o`, else `MODEL.pdf` here (`MODEL_layer2-0.pdf` with `-l`); with
    `-o -` (the table on stdout) the name a `-j` snapshot takes, `MODEL.txt`."""
    if out and out != "-":
        return Path(out)
    name = f"{title}_{layer.replace('.', '-')}" if layer else title
    return Path(name).with_suffix(".txt" if out == "-" else ".pdf")


def _trace(
    model: str, arguments: tuple[str, ...], inputs: str | None, tracer: str, limit: str | None
) -> Graph:
    """`nnviz.trace`; a constructor's refusal notes the `-a` values that were read as strings."""
    import nnviz
    from nnviz import models

    args = models.parse_arguments(arguments)
    try:
        return nnviz.trace(model, args=args, inputs=inputs, tracer=tracer, memory_limit=limit)
    except ModelBuildError as exc:
        raise ModelBuildError(f"{exc}{models.read_as_strings(arguments)}") from None


def _draw(
    graph: Graph, paths: list[Path], layer: str | None, drawing: dict[str, Any], quiet: bool
) -> list[Path]:
    """The drawing at `paths[0]`, then the `-j` snapshot beside it (unless the drawing is that
    snapshot), each through `nnviz.draw`; the paths written."""
    import nnviz

    target, *beside = paths
    if target.suffix.lower() != SNAPSHOT_SUFFIX:
        progress(quiet, f"laying out {len(graph)} nodes ...")
    # Snapshots hold the full graph (or the -l selection): -d and -c only shape the picture.
    with graphviz_messages(quiet):
        written = [nnviz.draw(graph, target, layer=layer, **drawing)]
    written += [nnviz.draw(graph, path, layer=layer) for path in beside if path != target]
    for path in written:
        progress(quiet, f"wrote {path}")
    return written
