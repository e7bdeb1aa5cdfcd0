"""`nnviz MODEL` / `nnviz draw MODEL`: load, trace and draw a model (or a snapshot)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from nnviz.cli.shell import (
    SNAPSHOT_SUFFIX,
    cli,
    graphviz_messages,
    one_line_errors,
    progress,
    warnings_as_lines,
)
from nnviz.errors import ModelBuildError, NNVizWarning
from nnviz.fs import check_writable
from nnviz.graph import gc_paused
from nnviz.tracers import TRACERS


@cli.command("draw")
@click.argument("model")
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False),
    help="Output file; its extension picks the format (.pdf .svg .png .dot .gv .json, .html: "
    "one interactive page that works offline, or .txt: a table of modules with output shape, "
    "params, MACs and activations; - prints that table). Defaults to MODEL.pdf here.",
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
        import nnviz
        from nnviz import models
        from nnviz.render import engine as graphviz_engine
        from nnviz.render.output import draw_graph
        from nnviz.render.style import parse_style
        from nnviz.tracers.budget import parse_size
        from nnviz.tracers.inputs import parse_inputs

        # Everything checkable is checked before torch is imported (seconds) and the model traced.
        spec = models.parse_spec(model)
        args = models.parse_arguments(arguments)
        to_stdout = out == "-"
        target = (
            Path(out) if out and not to_stdout else Path(_default_name(spec.title(args), layer))
        )
        target = target.with_suffix(".txt") if to_stdout else target
        if not out:
            target = target.with_suffix(".pdf")
        graphviz_engine.format_of(target)
        style = parse_style(styles)
        if inputs is not None:
            parse_inputs(inputs)
        parse_size(memory_limit)
        for path in (target, target.with_suffix(SNAPSHOT_SUFFIX)) if dump_json else (target,):
            if not (to_stdout and path == target):
                check_writable(path)
        if spec.kind == "torchvision":
            models.check_torchvision_name(spec.target)
        progress(quiet, f"tracing {model} ...")
        with warnings_as_lines(drop=(NNVizWarning,) if quiet else ()):
            try:
                graph = nnviz.trace(
                    model, args=args, inputs=inputs, tracer=tracer, memory_limit=memory_limit
                )
            except ModelBuildError as exc:
                raise ModelBuildError(f"{exc}{models.read_as_strings(arguments)}") from None
        if to_stdout:
            from nnviz import transform
            from nnviz.render.table import summary

            click.echo(summary(transform.select(graph, layer) if layer else graph, depth), nl=False)
            return
        if target.suffix.lower() != SNAPSHOT_SUFFIX:
            progress(quiet, f"laying out {len(graph)} nodes ...")
        # Snapshots hold the full graph (or the -l selection): -d and -c only shape the picture.
        with graphviz_messages(quiet):
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
            progress(quiet, f"wrote {path}")
        if show:
            problem = graphviz_engine.open_with_default_app(written[0])
            if problem and not quiet:
                click.echo(f"nnviz: {problem}", err=True)


def _default_name(model_name: str, layer: str | None) -> str:
    return f"{model_name}_{layer.replace('.', '-')}" if layer else model_name
