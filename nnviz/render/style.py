"""Drawing style: every knob `-S key=value` can turn, as a frozen, validated dataclass.

The keys and defaults are the original nnviz's, plus `rankdir` (TB or LR), `dpi` (for PNG),
`max_ops` and `bookkeeping` (what the drawing folds). `parse_style(["node_title_font_size=30",
"rankdir=LR"])` converts and validates each pair and raises `StyleError` with one line listing the
valid keys on an unknown key or a bad value. A plain dataclass rather than a pydantic model:
every drawing needs a style, and importing pydantic costs more than drawing resnet152 from JSON.

Values that Graphviz copies into its output (font names, colours, node styles, margins, pen
widths) are checked against what Graphviz accepts before they reach it: Graphviz writes them into
the SVG unescaped, so a value holding `"` or `<` would make the SVG ill-formed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nnviz.errors import StyleError

_FONT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.,:+-]{0,99}")
"""A font name or fontconfig pattern (`DejaVu Sans`, `Helvetica-Bold`, `Arial:bold`)."""
_COLOR = re.compile(
    r"(#[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?"  # #rrggbb, #rrggbbaa
    r"|(/[A-Za-z0-9]+/)?[A-Za-z][A-Za-z0-9]{0,39}"  # a name, optionally in a scheme: /x11/red
    r"|[0-9.]+[, ]+[0-9.]+[, ]+[0-9.]+)"  # H,S,V
)
_NODE_STYLES = frozenset(
    {"filled", "rounded", "dashed", "dotted", "solid", "bold", "invis", "striped", "wedged",
     "diagonals", "radial"}
)  # fmt: skip
_NUMBER = r"[0-9]+(\.[0-9]*)?|\.[0-9]+"
_MARGIN = re.compile(rf"({_NUMBER})(,({_NUMBER}))?")
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def _font(value: str) -> str | None:
    return (
        None
        if _FONT.fullmatch(value)
        else "not a font name (letters, digits, spaces and _ . , : + -)"
    )


def _color(value: str) -> str | None:
    if _COLOR.fullmatch(value):
        return None
    return "not a Graphviz colour (a name such as gray, #rrggbb or 'H,S,V')"


def _node_style(value: str) -> str | None:
    if all(part.strip() in _NODE_STYLES for part in value.split(",")):
        return None
    return f"not a node style (comma-separated: {', '.join(sorted(_NODE_STYLES))})"


def _margin(value: str) -> str | None:
    return None if _MARGIN.fullmatch(value) else "not a margin (inches: 0.2 or 0.2,0.1)"


def _thickness(value: str) -> str | None:
    if re.fullmatch(_NUMBER, value) and float(value) > 0:
        return None
    return "not a positive number"


def _between(low: int, high: int | None = None) -> Callable[[int], str | None]:
    def check(value: int) -> str | None:
        if value < low or (high is not None and value > high):
            return f"should be at least {low}" + (f" and at most {high}" if high else "")
        return None

    return check


def _one_of(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in choices else "should be " + " or ".join(map(repr, choices))

    return check


def _key(default: Any, doc: str, check: Callable[[Any], str | None] | None = None) -> Any:
    return dataclasses.field(default=default, metadata={"doc": doc, "check": check})


@dataclasses.dataclass(frozen=True)
class Style:
    """How a graph is drawn. Immutable; build a changed copy with `dataclasses.replace`.

    Constructing one converts and validates every value (`Style(dpi="150")` has `dpi == 150`);
    a bad value raises `StyleError` naming the key and listing the valid ones.
    """

    fontname: str = _key("Arial", "Font of every label.", _font)
    default_node_color: str = _key(
        "gray", "Fill colour of input and output nodes (ops get a colour per family).", _color
    )
    default_edge_color: str = _key("black", "Colour of edges.", _color)
    node_style: str = _key("rounded,filled", "Graphviz node style.", _node_style)
    node_margin: str = _key("0.2,0.1", "Horizontal,vertical node margin (inches).", _margin)
    edge_thickness: str = _key("2.0", "Edge pen width.", _thickness)
    graph_title_font_size: int = _key(48, "Font size of the graph title.", _between(1))
    node_title_font_size: int = _key(24, "Font size of node titles.", _between(1))
    cluster_title_font_size: int = _key(18, "Font size of cluster titles.", _between(1))
    show_title: bool = _key(True, "Draw the graph title.")
    show_specs: bool = _key(True, "Label edges with tensor shapes when traced.")
    show_node_name: bool = _key(True, "Show each node's qualified name.")
    show_node_params: bool = _key(True, "Show each node's parameter count.")
    show_node_cost: bool = _key(
        True, "Show each node's compute (MACs) and its share, when traced with inputs."
    )
    show_node_arguments: bool = _key(True, "Show each node's arguments.")
    show_node_source: bool = _key(True, "Show each node's source (torch.nn.Conv2d).")
    show_clusters: bool = _key(True, "Draw modules as nested shaded clusters.")
    legend: bool = _key(
        True, "Explain the marks drawn (double border, %, residual) under the title."
    )
    rankdir: str = _key("TB", "Flow direction: TB or LR.", _one_of("TB", "LR"))
    dpi: int = _key(96, "Resolution of PNG output.", _between(1, 1200))
    max_ops: int = _key(
        60,
        "A drawn module running more ops than this shows each run of consecutive ops as one "
        "node; -1 shows every op.",
        _between(-1),
    )
    bookkeeping: str = _key(
        "fold",
        "Scalar bookkeeping (shape reads and int arithmetic): fold it into the ops that use it, "
        "or show every such op as a node.",
        _one_of("fold", "show"),
    )

    def __post_init__(self) -> None:
        for key in style_fields().values():
            raw = getattr(self, key.name)
            value, problem = _convert(key, raw)
            check = key.metadata["check"]
            problem = problem or (check(value) if check is not None else None)
            if problem:
                raise StyleError(
                    f"bad value {raw!r} for style key {key.name!r}: {problem}; "
                    f"valid keys: {', '.join(style_keys())}"
                )
            object.__setattr__(self, key.name, value)


def _convert(key: dataclasses.Field[Any], value: Any) -> tuple[Any, str | None]:
    """A `-S` text (or a Python value) as the key's type (`"30"` -> 30, `"no"` -> False), or
    what is wrong with it."""
    kind = key.type  # a string: the annotations are postponed
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        text = str(value).strip().lower() if isinstance(value, (str, int)) else ""
        if text in _TRUE or text in _FALSE:
            return text in _TRUE, None
        return value, "should be a boolean (true or false)"
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value, None
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", value):
            return int(value), None
        return value, "should be a whole number"
    return value, None if isinstance(value, str) else "should be text"


def style_fields() -> dict[str, dataclasses.Field[Any]]:
    """Every key with its default and `metadata["doc"]`, in declaration order."""
    return {key.name: key for key in dataclasses.fields(Style)}


def style_keys() -> list[str]:
    """The valid `-S` keys, in declaration order."""
    return list(style_fields())


def make_style(values: Mapping[str, Any] | Style | None = None) -> Style:
    """A `Style` from a mapping of overrides (or a Style, returned as is)."""
    if isinstance(values, Style):
        return values
    values = dict(values or {})
    unknown = [key for key in values if key not in style_fields()]
    if unknown:
        raise StyleError(f"unknown style key {unknown[0]!r}; valid keys: {', '.join(style_keys())}")
    return Style(**values)


def parse_style(pairs: Iterable[str]) -> Style:
    """A `Style` from `key=value` strings (later pairs win), each converted to its key's type."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise StyleError(
                f"style {pair!r} is not KEY=VALUE; valid keys: {', '.join(style_keys())}"
            )
        values[key] = value.strip()
    return make_style(values)
