"""First drawings explain themselves: a legend for the marks drawn, and a collapsed block that
hides a residual (skip) connection says so."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import torch
from support import traced
from torch import nn

import nnviz
from nnviz.render import Style, render, to_dot
from nnviz.transform import collapse_depth, collapse_prefixes

SVG = "{http://www.w3.org/2000/svg}"


def svg_texts(dot: str) -> list[str]:
    data = render(dot, "svg", "embedded")
    assert isinstance(data, bytes)
    root = ET.fromstring(data)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def skips_at(depth: int) -> dict[str, list[str]]:
    shown = collapse_depth(traced("resnet18"), depth)
    return {n.id: n.meta["skips"] for n in shown.nodes if n.meta.get("skips")}


def test_resnet_blocks_at_the_default_depth_still_show_their_skips() -> None:
    assert skips_at(2) == {
        "layer1.0": ["identity"],
        "layer1.1": ["identity"],
        **{f"layer{i}.0": ["downsample"] for i in (2, 3, 4)},
        **{f"layer{i}.1": ["identity"] for i in (2, 3, 4)},
    }
    assert skips_at(1)["layer2"] == ["0.downsample", "identity"]
    # Collapsing a stage of collapsed blocks keeps what they hide.
    stage = collapse_prefixes(collapse_depth(traced("resnet18"), 2), ["layer3"])
    assert stage.node("layer3").meta["skips"] == ["downsample", "identity"]


def test_the_drawing_marks_the_blocks_and_explains_its_marks() -> None:
    shown = collapse_depth(traced("resnet18"), 2)
    texts = svg_texts(to_dot(shown))
    assert texts.count("↻ residual: identity skip") == 5
    assert texts.count("↻ residual: skip via downsample") == 3
    legend = [t for t in texts if t.startswith(("double border:", "params n (x%)", "↻ residual:"))]
    assert [t.split(":")[0] for t in legend if not t.startswith("↻ residual: ")] == [
        "double border",
        "params n (x%)",
    ]
    assert "↻ residual: the collapsed block adds its input back (a skip connection)" in texts
    # -S legend=false drops the legend, not the marks.
    quiet = svg_texts(to_dot(shown, Style(legend=False)))
    assert not [t for t in quiet if t.startswith(("double border:", "params n (x%)"))]
    assert quiet.count("↻ residual: skip via downsample") == 3


def test_only_the_marks_drawn_are_explained() -> None:
    full = to_dot(traced("resnet18"), Style(show_node_params=False))  # nothing collapsed
    assert "double border" not in full and "residual" not in full and "(x%)" not in full
    plain = to_dot(collapse_depth(traced("alexnet"), 1))  # collapsed, but no skip inside
    assert "double border" in plain and "residual" not in plain


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(y)


class Wrapper(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.inner(x, y) if isinstance(self.inner, TwoInputs) else self.inner(x + y)


class Parallel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(x)


def test_a_sum_of_separate_inputs_is_no_skip_and_alike_branches_are_no_downsample() -> None:
    separate = collapse_depth(nnviz.trace(Wrapper(TwoInputs())), 1)
    assert not separate.node("inner").meta.get("skips")
    parallel = collapse_depth(nnviz.trace(Wrapper(Parallel())), 1)
    assert parallel.node("inner").meta["skips"] == ["branch"]
