"""The interactive page of a model in headless Chromium: offline, same first view as the PDF,
expand/collapse by clicking, search, details, state in the URL fragment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import chromium
import pytest

import nnviz
from nnviz import transform
from nnviz.graph import Graph


@pytest.fixture(scope="module")
def page_file(resnet18: Graph, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return nnviz.draw(resnet18, tmp_path_factory.mktemp("html") / "resnet18.html")


def test_the_page_opens_offline_at_the_pdfs_first_view(
    browser: Any, page_file: Path, resnet18: Graph
) -> None:
    opened = chromium.open_page(browser, page_file)
    assert opened.errors == []
    assert opened.requests == [page_file.resolve().as_uri()]  # the file itself, nothing else
    first = transform.collapse_depth(resnet18, 2)
    assert opened.node_count() == len(first.nodes) == 17
    drawn = opened.page.eval_on_selector_all("#canvas g.node", "gs => gs.map(g => g.id)")
    assert sorted(drawn) == sorted(n.id for n in first.nodes)


def test_clicking_a_module_expands_it_and_its_title_collapses_it(
    browser: Any, page_file: Path, resnet18: Graph
) -> None:
    opened = chromium.open_page(browser, page_file)
    before = opened.node_count()
    inside = [n for n in resnet18.nodes if n.scope.startswith("layer1.0")]
    drawn = opened.renders()
    opened.page.locator('g.node[id="layer1.0"]').click()
    opened.wait_render(drawn)
    assert opened.node_count() == before - 1 + len(inside) > before
    assert "layer1.0" not in opened.page.eval_on_selector_all("g.node", "gs => gs.map(g => g.id)")
    drawn = opened.renders()
    opened.page.locator('g.cluster[id="cluster:layer1.0"] text').first.click()
    opened.wait_render(drawn)
    assert opened.node_count() == before
    assert opened.errors == []


def test_search_finds_a_hidden_module_and_centres_it(browser: Any, page_file: Path) -> None:
    opened = chromium.open_page(browser, page_file)
    drawn = opened.renders()
    opened.page.fill("#search", "layer3.1.conv2")
    opened.page.press("#search", "Enter")
    opened.wait_render(drawn)
    current = opened.page.locator("#canvas g.current")
    assert current.get_attribute("id") == "layer3.1.conv2"
    node, canvas = current.bounding_box(), opened.page.locator("#canvas").bounding_box()
    assert abs(node["x"] + node["width"] / 2 - (canvas["x"] + canvas["width"] / 2)) < 20
    assert abs(node["y"] + node["height"] / 2 - (canvas["y"] + canvas["height"] / 2)) < 20
    details = opened.page.locator("#details").inner_text()
    assert "torch.nn.Conv2d" in details and "kernel_size" in details and "(3, 3)" in details
    assert opened.page.locator("#hits").inner_text().endswith("found") is False


def test_the_url_fragment_restores_expansion_and_selection(browser: Any, page_file: Path) -> None:
    opened = chromium.open_page(browser, page_file)
    opened.page.click("#fit")  # the page opens at a readable scale, showing the top
    drawn = opened.renders()
    opened.page.locator('g.node[id="layer2.0"]').click()
    opened.wait_render(drawn)
    opened.page.locator('g.node[id="layer2.0.conv1"]').click()
    fragment = opened.page.evaluate("location.hash")
    count = opened.node_count()
    again = chromium.open_page(browser, page_file, fragment)
    assert again.node_count() == count
    assert again.page.locator("#canvas g.selected").get_attribute("id") == "layer2.0.conv1"
    assert "layer2.0.conv1" in again.page.locator("#details h3").inner_text()


def test_jupyter_shows_the_page_in_a_frame_and_large_graphs_as_svg(
    browser: Any, resnet18: Graph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = resnet18._repr_mimebundle_()
    assert bundle["text/html"].startswith('<iframe sandbox="allow-scripts" srcdoc="')
    notebook = tmp_path / "notebook.html"
    notebook.write_text(f"<!DOCTYPE html><body>{bundle['text/html']}</body>")
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(notebook.as_uri())
    frame = page.frame_locator("iframe")
    frame.locator("body[data-renders]").wait_for(timeout=chromium.TIMEOUT_MS)
    assert frame.locator("#canvas g.node").count() == 17 and errors == []
    from nnviz.render import notebook

    monkeypatch.setattr(notebook, "INLINE_LIMIT", 1000)
    bundle = resnet18._repr_mimebundle_()
    assert "text/html" not in bundle and bundle["image/svg+xml"].lstrip().startswith("<?xml")


def test_expanding_a_module_that_only_wraps_one_module_opens_both(
    browser: Any, tmp_path: Path
) -> None:
    from torch import nn

    class Wrap(nn.Module):  # like maxvit's stages: one child holds everything
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))

        def forward(self, x: Any) -> Any:
            return self.inner(x)

    graph = nnviz.trace(nn.Sequential(Wrap(), nn.Flatten()), name="wrapped")
    opened = chromium.open_page(browser, nnviz.draw(graph, tmp_path / "w.html", depth=1))
    assert opened.node_count() == 4  # input, 0, 1, output
    drawn = opened.renders()
    opened.page.locator('g.node[id="0"]').click()
    opened.wait_render(drawn)
    drawn_ids = opened.page.eval_on_selector_all("g.node", "gs => gs.map(g => g.id)")
    assert sorted(drawn_ids) == sorted(
        ["input:input", "0.inner.0", "0.inner.1", "0.inner.2", "1", "output"]
    )


def test_a_shared_module_called_twice_collapses_into_two_nodes_as_in_the_pdf(
    browser: Any, tmp_path: Path
) -> None:
    from torch import nn

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
            self.mid = nn.Linear(4, 4)

        def forward(self, x: Any) -> Any:  # two calls of `block` apart: two pieces
            return self.block(self.mid(self.block(x))) + x

    graph = nnviz.trace(Twice(), name="twice")
    first = transform.collapse_depth(graph, 1)
    opened = chromium.open_page(browser, nnviz.draw(graph, tmp_path / "t.html", depth=1))
    drawn = opened.page.eval_on_selector_all("#canvas g.node", "gs => gs.map(g => g.id)")
    assert sorted(drawn) == sorted(n.id for n in first.nodes)
    assert {"block", "block:1"} <= set(drawn)
    assert opened.page.locator("#canvas g.edge").count() == len(first.edges)


def test_the_depth_selector_shows_the_depth_drawn(browser: Any, page_file: Path) -> None:
    opened = chromium.open_page(browser, page_file)
    depth = opened.page.locator("#depth")
    assert depth.input_value() == "2"  # the page opens at the PDF's depth, and says so
    drawn = opened.renders()
    opened.page.locator('g.node[id="layer1.0"]').click()  # one module opened by hand
    opened.wait_render(drawn)
    assert depth.input_value() == ""
    assert depth.locator("option:checked").inner_text() == "custom"
    drawn = opened.renders()
    depth.select_option("1")
    opened.wait_render(drawn)
    assert depth.input_value() == "1" and opened.errors == []


def test_a_modules_panel_says_what_it_costs_over_all_its_calls(
    browser: Any, tmp_path: Path
) -> None:
    """A module (cluster) shows its compute and activations beside its parameters, as a node
    does: the sum over every op it runs (`nnviz.costs.per_module`)."""
    import torchvision

    from nnviz import costs

    graph = nnviz.trace(torchvision.models.resnet18(), inputs="image64")
    opened = chromium.open_page(browser, nnviz.draw(graph, tmp_path / "r.html"))
    opened.page.locator('g.cluster[id="cluster:layer1"] text').first.click()
    details = opened.page.locator("#details").inner_text()
    layer1 = costs.per_module(graph)["layer1"]
    assert layer1.macs == 2 * 2 * (64 * 64 * 3 * 3 * 16 * 16)  # 4 convs 64->64, 3x3, on 16x16
    assert costs.macs_text(layer1.macs) in details and "compute" in details
    assert costs.bytes_text(layer1.out_bytes) in details and "activations" in details
    assert opened.errors == []
