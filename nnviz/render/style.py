"""Drawing style: every knob `-S key=value` can turn, as a typed pydantic model.

The keys and defaults are the original nnviz's, plus `rankdir` (TB or LR) and `dpi` (for PNG).
`parse_style(["node_title_font_size=30", "rankdir=LR"])` validates each pair and raises
`StyleError` with one line listing the valid keys on an unknown key or a bad value.

Values that Graphviz copies into its output (font names, colours, node styles, margins, pen
widths) are checked against what Graphviz accepts before they reach it: Graphviz writes them into
the SVG unescaped, so a value holding `"` or `<` would make the SVG ill-formed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


class Style(BaseModel):
    """How a graph is drawn. Immutable; build a changed copy with `model_copy(update=...)`."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    fontname: str = Field("Arial", description="Font of every label.")
    default_node_color: str = Field(
        "gray", description="Fill colour of input and output nodes (ops get a colour per family)."
    )
    default_edge_color: str = Field("black", description="Colour of edges.")
    node_style: str = Field("rounded,filled", description="Graphviz node style.")
    node_margin: str = Field("0.2,0.1", description="Horizontal,vertical node margin (inches).")
    edge_thickness: str = Field("2.0", description="Edge pen width.")
    graph_title_font_size: int = Field(48, gt=0, description="Font size of the graph title.")
    node_title_font_size: int = Field(24, gt=0, description="Font size of node titles.")
    cluster_title_font_size: int = Field(18, gt=0, description="Font size of cluster titles.")
    show_title: bool = Field(True, description="Draw the graph title.")
    show_specs: bool = Field(True, description="Label edges with tensor shapes when traced.")
    show_node_name: bool = Field(True, description="Show each node's qualified name.")
    show_node_params: bool = Field(True, description="Show each node's parameter count.")
    show_node_arguments: bool = Field(True, description="Show each node's arguments.")
    show_node_source: bool = Field(True, description="Show each node's source (torch.nn.Conv2d).")
    show_clusters: bool = Field(True, description="Draw modules as nested shaded clusters.")
    legend: bool = Field(
        True, description="Explain the marks drawn (double border, %, residual) under the title."
    )
    rankdir: Literal["TB", "LR"] = Field("TB", description="Flow direction: TB or LR.")
    dpi: int = Field(96, gt=0, le=1200, description="Resolution of PNG output.")
    max_ops: int = Field(
        60,
        ge=-1,
        description="A drawn module running more ops than this shows each run of consecutive "
        "ops as one node; -1 shows every op.",
    )
    bookkeeping: Literal["fold", "show"] = Field(
        "fold",
        description="Scalar bookkeeping (shape reads and int arithmetic): fold it into the ops "
        "that use it, or show every such op as a node.",
    )

    @field_validator("fontname")
    @classmethod
    def _font(cls, value: str) -> str:
        if not _FONT.fullmatch(value):
            raise ValueError("not a font name (letters, digits, spaces and _ . , : + -)")
        return value

    @field_validator("default_node_color", "default_edge_color")
    @classmethod
    def _color(cls, value: str) -> str:
        if not _COLOR.fullmatch(value):
            raise ValueError("not a Graphviz colour (a name such as gray, #rrggbb or 'H,S,V')")
        return value

    @field_validator("node_style")
    @classmethod
    def _node_style(cls, value: str) -> str:
        unknown = [part for part in value.split(",") if part.strip() not in _NODE_STYLES]
        if unknown:
            raise ValueError(
                f"not a node style (comma-separated: {', '.join(sorted(_NODE_STYLES))})"
            )
        return value

    @field_validator("node_margin")
    @classmethod
    def _margin(cls, value: str) -> str:
        if not _MARGIN.fullmatch(value):
            raise ValueError("not a margin (inches: 0.2 or 0.2,0.1)")
        return value

    @field_validator("edge_thickness")
    @classmethod
    def _thickness(cls, value: str) -> str:
        if not re.fullmatch(_NUMBER, value) or float(value) <= 0:
            raise ValueError("not a positive number")
        return value


def style_keys() -> list[str]:
    """The valid `-S` keys, in declaration order."""
    return list(Style.model_fields)


def make_style(values: Mapping[str, Any] | Style | None = None) -> Style:
    """A `Style` from a mapping of overrides (or a Style, returned as is)."""
    if isinstance(values, Style):
        return values
    values = dict(values or {})
    unknown = [key for key in values if key not in Style.model_fields]
    if unknown:
        raise StyleError(f"unknown style key {unknown[0]!r}; valid keys: {', '.join(style_keys())}")
    try:
        return Style(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise StyleError(
            f"bad value {values.get(key)!r} for style key {key!r}: "
            f"{err['msg'].removeprefix('Value error, ')}; "
            f"valid keys: {', '.join(style_keys())}"
        ) from None


def parse_style(pairs: Iterable[str]) -> Style:
    """A `Style` from `key=value` strings (later pairs win); pydantic converts the values."""
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
