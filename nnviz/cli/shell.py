"""The `nnviz` command group and what every subcommand shares: the drawing-first group (`nnviz
MODEL` is `nnviz draw MODEL`), the error mapping (`NNVizError` → one stderr line, exit 2;
`--debug` shows the traceback), warnings as `nnviz: warning:` lines, progress on a TTY, and
`main`, the console-script entry point.
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import click

from nnviz import __version__
from nnviz.errors import NNVizError, NNVizWarning

SNAPSHOT_SUFFIX = ".json"


class _DrawingGroup(click.Group):
    """The `nnviz` command: it draws (`nnviz MODEL [OPTIONS]`, the `draw` subcommand without its
    name) and holds the other subcommands; its help shows the drawing options too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = _debug_first(args)
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


def _debug_first(args: list[str]) -> list[str]:
    """`--debug` is the group's option, accepted anywhere before a `--`: `nnviz resnet18
    --debug` and `nnviz diff a.json b.json --debug` mean `nnviz --debug ...`."""
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args
    return ["--debug", *(a for a in args[:end] if a != "--debug"), *args[end:]]


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


def progress(quiet: bool, message: str) -> None:
    """Status lines for people watching a terminal; silent when stderr is a file or pipe."""
    if not quiet and sys.stderr.isatty():
        click.echo(f"nnviz: {message}", err=True)


@contextlib.contextmanager
def warnings_as_lines(quiet: bool = False) -> Iterator[None]:
    """Show nnviz's own warnings (e.g. failed data tracing) as one `nnviz: warning:` line each,
    none with -q; library warnings from torch and friends are noise on the command line and
    are dropped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NNVizWarning)
        yield
    for warning in caught:
        if issubclass(warning.category, NNVizWarning) and not quiet:
            click.echo(f"nnviz: warning: {' '.join(str(warning.message).split())}", err=True)


def graphviz_messages(quiet: bool) -> contextlib.AbstractContextManager[object]:
    """-q: Graphviz's own warnings go too; its errors still raise and are reported."""
    return contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext()


class one_line_errors:
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
            from nnviz.builds import explain

            message = explain(exc) or (
                f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)"
            )
        else:
            return
        click.echo(f"nnviz: error: {' '.join(message.split())}", err=True)
        sys.exit(2)


def main() -> None:
    """Console-script entry point: every error, click's usage errors included, is one line
    `nnviz: error: ...` on stderr and exit code 2."""
    from nnviz.collector import ending

    ending()  # one command, then the process ends: what it builds is never rescanned
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
