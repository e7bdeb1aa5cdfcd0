"""Every error and warning nnviz raises, all exported from `nnviz`.

One exception hierarchy: the CLI maps every `NNVizError` to one line on stderr and exit 2, and
prints every `NNVizWarning` as one `nnviz: warning:` line.
"""

from __future__ import annotations


class NNVizError(Exception):
    """Base of every error nnviz raises on purpose; `str(error)` is a complete one-line message."""


class ModelSpecError(NNVizError):
    """A MODEL argument that names nothing loadable (unknown name, bad path, missing callable)."""


class ModelBuildError(NNVizError):
    """Importing a model's file or calling its constructor failed, or it returned a non-module."""


class TraceError(NNVizError):
    """The tracer could not turn the model into a graph."""


class InputSpecError(NNVizError):
    """An `-i` input or `-a` argument string that does not parse."""


class SnapshotError(NNVizError):
    """A snapshot file that is unreadable, malformed, or of an unsupported format version."""


class StyleError(NNVizError):
    """An unknown style key or a value of the wrong type."""


class RenderError(NNVizError):
    """Graphviz failed, the output format is unknown, or `nnviz.draw` was given a keyword the
    drawing cannot honour (`depth` for a diff, `context` for a graph)."""


class SelectionError(NNVizError):
    """A `-l` layer or `-c` prefix that names no module of the graph."""


class OutputError(NNVizError, OSError):
    """A file nnviz was asked to write cannot be written (a file in the way of its folder, no
    permission, disk full)."""


class DriftReportError(NNVizError):
    """A drift report that is unreadable, malformed, or of an unsupported format version."""


class PolicyError(NNVizError):
    """A `fail-on` policy (`nnviz report --fail-on`, the Action's input) that does not parse."""


class CheckpointError(NNVizError):
    """No key map can make old checkpoints load: shapes changed, new keys have no old weights,
    or the verdict is unknown (an older snapshot)."""


class NNVizWarning(UserWarning):
    """Base of nnviz's own warnings; each message is one line, which the CLI prints as
    `nnviz: warning: ...`."""


class TracerWarning(NNVizWarning):
    """The tracer fell back from torch.fx to the eager tracer."""


class DataTraceWarning(NNVizWarning):
    """Running the model on the example inputs failed; the graph has no shapes. `inputs` says
    which inputs (`x=tensor(1x32)`) and `reason` where and why (`at conv1: RuntimeError: ...`),
    for a caller that must refuse the graph (the pytest plugin) rather than warn."""

    def __init__(self, message: str, inputs: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.inputs = inputs
        self.reason = reason


class TracersDifferWarning(NNVizWarning):
    """The two sides of a diff were traced by different tracers (fx and eager agree on ids and
    ops, not on every scalar detail), so a difference may come from the tracers."""


# Every error is public as `nnviz.<Name>` (httpx's habit): tracebacks and reprs say so too.
for _cls in list(globals().values()):
    if isinstance(_cls, type) and issubclass(_cls, (NNVizError, NNVizWarning)):
        _cls.__module__ = "nnviz"
del _cls
