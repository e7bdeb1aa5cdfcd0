"""Render the README's example pictures into docs/images/ with nnviz itself.

    python scripts/make_images.py            # all pictures, PNG at 72 dpi
    python scripts/make_images.py --dpi 96 --out /tmp/pictures resnet18

Each picture is one `nnviz.draw` call, the same as the CLI line printed beside it; models are
traced once each and built with weights=None (nothing is downloaded).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import nnviz

ROOT = Path(__file__).resolve().parent.parent

# (file name, model, -i input, draw options, the equivalent command line)
PICTURES: list[tuple[str, str, str | None, dict[str, Any], str]] = [
    ("resnet18.png", "resnet18", None, {}, "nnviz resnet18"),
    ("efficientnet_b0_1.png", "efficientnet_b0", None, {"depth": 1}, "nnviz efficientnet_b0 -d 1"),
    ("efficientnet_b0_2.png", "efficientnet_b0", None, {"depth": 2}, "nnviz efficientnet_b0 -d 2"),
    ("efficientnet_b0_3.png", "efficientnet_b0", None, {"depth": 3}, "nnviz efficientnet_b0 -d 3"),
    (
        "efficientnet_b0_full.png",
        "efficientnet_b0",
        None,
        {"depth": -1},
        "nnviz efficientnet_b0 -d -1",
    ),
    (
        "efficientnet_b0_collapse.png",
        "efficientnet_b0",
        None,
        {"depth": -1, "collapse": ["features"]},
        "nnviz efficientnet_b0 -d -1 -c features",
    ),
    ("convnext_tiny.png", "convnext_tiny", None, {}, "nnviz convnext_tiny"),
    (
        "resnet18_layer2-0.png",
        "resnet18",
        None,
        {"layer": "layer2.0"},
        "nnviz resnet18 -l layer2.0",
    ),
    (
        "convnext_tiny_features-3-0-block.png",
        "convnext_tiny",
        None,
        {"layer": "features.3.0.block"},
        "nnviz convnext_tiny -l features.3.0.block",
    ),
    ("resnet18_edges.png", "resnet18", "default", {}, "nnviz resnet18 -i default"),
    (
        "nested_specs.png",
        "nested",
        "image16",
        {"depth": -1},
        "a model returning nested lists and tuples, -i image16 -d -1",
    ),
]


def nested_model() -> Any:
    """A small model whose values are tuples and lists of tensors (drawn as tables on edges)."""
    from torch import nn

    class Split(nn.Module):
        def forward(self, x: Any) -> Any:
            a, b = x.chunk(2, dim=1)
            return [a, (b, a + b)]

    class Nested(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.split = Split()

        def forward(self, x: Any) -> Any:
            parts = self.split(self.conv(x))
            return parts[1][1].mean((2, 3)), parts

    return Nested()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only pictures whose file name contains these")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--dpi", type=int, default=72, help="PNG resolution (default 72)")
    options = parser.parse_args(argv)
    graphs: dict[tuple[str, str | None], nnviz.Graph] = {}
    for filename, model, inputs, draw_options, command in PICTURES:
        if options.names and not any(n in filename for n in options.names):
            continue
        start = time.perf_counter()
        key = (model, inputs)
        if key not in graphs:
            target = nested_model() if model == "nested" else model
            graphs[key] = nnviz.trace(target, name=model, inputs=inputs)
        path = nnviz.draw(
            graphs[key], options.out / filename, style={"dpi": options.dpi}, **draw_options
        )
        seconds = time.perf_counter() - start
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  "
            f"({command}, {seconds:.1f} s)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
