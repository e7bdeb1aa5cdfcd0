"""The `nnviz` command: thin click shells over the public API, one module per family of
subcommands (`draw`, `diff`, `review`: report/accept/review) on the group and error mapping of
`nnviz.cli.shell`.

Every command parses its options, calls the library, and maps `NNVizError` to one line on stderr
and exit code 2 (`--debug` shows the traceback instead).
"""

from __future__ import annotations

from nnviz.cli import diff, draw, review
from nnviz.cli.draw import draw_command
from nnviz.cli.shell import cli, main

__all__ = ["cli", "diff", "draw", "draw_command", "main", "review"]
