"""Screenshots of the interactive HTML page in headless Chromium, for docs/images/.

    python scripts/html_screenshots.py            # writes docs/images/html_*.png
    python scripts/html_screenshots.py --out /tmp/shots

The pages are the ones `nnviz resnet18 -i default -o r.html` and `nnviz diff old.json new.json
-o d.html` write (resnet18 with weights=None; the new side has a 5x5 conv in layer3.1 and one
more block in layer2). Chromium is driven as in tests/browser (tests/browser/chromium.py).
"""

from __future__ import annotations

import sys

# This folder is sys.path[0] when run as a script; keep it from shadowing anything.
sys.path[:] = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))

import chromium  # noqa: E402

import nnviz  # noqa: E402


def graphs() -> tuple[nnviz.Graph, nnviz.Graph]:
    import torchvision
    from torch import nn

    old = nnviz.trace("resnet18", inputs="default")
    model = torchvision.models.resnet18(weights=None)
    model.layer3[1].conv2 = nn.Conv2d(256, 256, 5, padding=2, bias=False)
    model.layer2.add_module("2", torchvision.models.resnet.BasicBlock(128, 128))
    return old, nnviz.trace(model, name="resnet18", inputs="default")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    old, new = graphs()
    with tempfile.TemporaryDirectory() as tmp, chromium.browser() as context:
        model = nnviz.draw(old, Path(tmp) / "resnet18.html")
        opened = chromium.open_page(context, model)
        page = opened.page
        page.screenshot(path=out / "html_first_view.png")
        drawn = opened.renders()
        page.locator('g.node[id="layer1.0"]').click()
        opened.wait_render(drawn)
        page.screenshot(path=out / "html_expanded.png")
        drawn = opened.renders()
        page.fill("#search", "layer3.1.conv2")
        page.press("#search", "Enter")
        opened.wait_render(drawn)
        page.screenshot(path=out / "html_search.png")
        diff = nnviz.draw(nnviz.diff(old, new), Path(tmp) / "diff.html")
        opened = chromium.open_page(context, diff)
        opened.page.locator("#change-list a").last.click()
        opened.page.screenshot(path=out / "html_diff.png")
        assert not opened.errors, opened.errors
    for name in ("first_view", "expanded", "search", "diff"):
        print(out / f"html_{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
