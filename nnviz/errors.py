"""One exception hierarchy: the CLI maps every `NNVizError` to one line on stderr and exit 2."""

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
    """Graphviz failed, or the output format is unknown."""


class SelectionError(NNVizError):
    """A `-l` layer or `-c` prefix that names no module of the graph."""
