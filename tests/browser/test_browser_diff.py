"""The interactive page of a diff in headless Chromium: the changelog links to the changes, the
summary is in the header, unchanged regions fold and unfold; hostile names stay text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import chromium
import pytest
import torchvision
from torch import nn

import nnviz
from nnviz import snapshot
from nnviz.graph import Graph


@pytest.fixture(scope="module")
def diff_file(resnet18: Graph, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = torchvision.models.resnet18(weights=None)
    model.layer3[1].conv2 = nn.Conv2d(256, 256, 5, padding=2, bias=False)
    changed = nnviz.trace(model, name="resnet18")
    return nnviz.draw(nnviz.diff(resnet18, changed), tmp_path_factory.mktemp("d") / "d.html")


def test_the_diff_page_lists_the_changes_and_a_click_selects_the_node(
    browser: Any, diff_file: Path
) -> None:
    opened = chromium.open_page(browser, diff_file)
    page = opened.page
    assert "1 changed" in page.locator("#summary").inner_text()
    assert "params 11,689,512 → 12,738,088 (+1,048,576)" in page.locator("#summary").inner_text()
    items = page.locator("#change-list li")
    assert items.count() == 1
    assert "kernel_size (3, 3) → (5, 5)" in items.first.inner_text()
    page.locator("#canvas").click(position={"x": 5, "y": 5})  # nothing selected yet
    assert page.locator("#canvas g.selected").count() == 0
    items.first.locator("a").click()
    selected = page.locator("#canvas g.selected")
    assert selected.get_attribute("id") == "layer3.1.conv2"
    assert "kernel_size" in page.locator("#details").inner_text()
    assert opened.errors == [] and len(opened.requests) == 1


def test_unchanged_regions_unfold_and_fold_again(browser: Any, diff_file: Path) -> None:
    opened = chromium.open_page(browser, diff_file)
    folded = opened.node_count()
    drawn = opened.renders()
    opened.page.check("#unchanged")
    opened.wait_render(drawn)
    assert opened.node_count() > folded
    drawn = opened.renders()
    opened.page.uncheck("#unchanged")
    opened.wait_render(drawn)
    assert opened.node_count() == folded


HOSTILE = {
    "path": "</script><img src=x onerror=alert(1)>",
    "class": "<b>bold</b>&amp;",
    "op": '"]; evil [label="x',
    "arg": "\u2028</SCRIPT>\u2029<!--",
    "name": "<svg onload=alert(2)>",
}


def _hostile_snapshot() -> Graph:
    path, cls, op, arg = HOSTILE["path"], HOSTILE["class"], HOSTILE["op"], HOSTILE["arg"]
    doc = {
        "format": "nnviz-graph",
        "version": 1,
        "meta": {"name": HOSTILE["name"]},
        "modules": [
            {"path": "", "class": "m.Root", "params": 7},
            {"path": path, "class": f"pkg.{cls}", "params": 7, "hparams": {"h": {"$repr": arg}}},
        ],
        "nodes": [
            {"id": "input:x", "kind": "input", "op": "x"},
            {"id": path, "kind": "module", "op": f"pkg.{cls}", "module": path},
            {"id": "f", "kind": "function", "op": f"ns.{op}", "scope": path},
            {"id": "output", "kind": "output", "op": "output"},
        ],
        "edges": [
            {"source": "input:x", "target": path, "slots": ["0"]},
            {"source": path, "target": "f", "slots": ["0"]},
            {"source": "f", "target": "output", "slots": ["0"]},
        ],
    }
    return snapshot.loads(json.dumps(doc))


def test_hostile_names_render_literally(browser: Any, tmp_path: Path) -> None:
    page_file = nnviz.draw(_hostile_snapshot(), tmp_path / "hostile.html", depth=-1)
    opened = chromium.open_page(browser, page_file)
    page = opened.page
    assert opened.errors == [] and len(opened.requests) == 1
    assert page.locator("img, #canvas script, body > svg").count() == 0  # no injected markup
    texts = page.eval_on_selector_all("#canvas text", "ts => ts.map(t => t.textContent)")
    drawn = " ".join(texts).replace("\xa0", " ")
    for text in (HOSTILE["path"], HOSTILE["class"], HOSTILE["op"], HOSTILE["name"]):
        assert text in drawn, text
    assert page.locator("#title").inner_text() == HOSTILE["name"]
    page.locator('g.cluster[id^="cluster:"] text').first.click()  # collapse the hostile module
    page.locator("#search").fill("onerror")
    page.press("#search", "Enter")
    assert HOSTILE["path"] in page.locator("#details h3").inner_text()
    assert "\u2028</SCRIPT>\u2029<!--" in page.locator("#details").inner_text()
