"""The click options more than one subcommand takes, each written once so that it reads, parses
and behaves the same wherever it appears: `-o` (the output file; each command says what it
writes there), `-i` (trace with data), `-S`/`--engine` (how a drawing looks and which Graphviz
lays it out: `nnviz draw` and the drawing `nnviz diff -o` writes), `-q`, and the pending
changes `nnviz accept` and `nnviz reject` pick (`[DIR|REPORT] [TEST_ID]...`).

Each is a decorator: `@options.inputs` adds `-i` as the `inputs` parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def out(help: str) -> Callable[[F], F]:
    """`-o/--out FILE` as the `out` parameter; `help` says what the command writes there."""
    return click.option("-o", "--out", type=click.Path(dir_okay=False), help=help)


def inputs(command: F) -> F:
    """`-i/--input INPUT` as the `inputs` parameter: the `-i` language of
    `nnviz.tracers.inputs`, checked before anything is traced."""
    return click.option(
        "-i",
        "--input",
        "inputs",
        metavar="INPUT",
        help="Trace MODEL with data, so that every edge shows its shape and a diff compares "
        "shapes too: default, image<side>, image<h>x<w>, tensor<d1>x<d2>...[:dtype], "
        "key:value;key:value, or a torch expression, e.g. -i default, -i tensor1x16:int64, "
        "-i 'x:image64;y:tensor1x10'. Snapshots keep what they were traced with.",
    )(command)


def drawing(command: F) -> F:
    """`-S/--style KEY=VALUE` (repeatable, as `styles`) and `--engine` (as `engine`)."""
    command = click.option(
        "--engine",
        type=click.Choice(["embedded", "system"]),
        help="Graphviz to run: embedded (bundled with pygraphviz, the default) or system "
        "(`dot` on PATH). Also NNVIZ_ENGINE.",
    )(command)
    return click.option(
        "-S",
        "--style",
        "styles",
        multiple=True,
        metavar="KEY=VALUE",
        help="Drawing style, e.g. -S rankdir=LR -S node_title_font_size=18. Repeatable; an "
        "unknown key lists the valid ones.",
    )(command)


def quiet(command: F) -> F:
    """`-q/--quiet` as the `quiet` parameter."""
    return click.option(
        "-q",
        "--quiet",
        is_flag=True,
        help="Print nothing but errors; the exit code still tells the result.",
    )(command)


def pending(command: F) -> F:
    """`[DIR|REPORT] [TEST_ID]...` as `target` and `test_ids`: the artifacts folder (or its
    report.json, or left out) and the tests whose pending changes to take."""
    command = click.argument("test_ids", nargs=-1, metavar="[TEST_ID]...")(command)
    return click.argument("target", required=False, metavar="[DIR|REPORT]")(command)
