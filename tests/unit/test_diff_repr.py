"""A GraphDiff reads well in a notebook and a REPL: one line of repr, the changelog as markdown,
the interactive page as HTML; `to_dict()` is named for what it returns."""

from __future__ import annotations

import json

from support import traced

import nnviz


def test_a_diff_shows_its_changelog_not_its_fields() -> None:
    d = nnviz.diff(traced("resnet18"), traced("resnet18", num_classes=10))
    changelog = d.to_text()
    assert repr(d) == f"<GraphDiff resnet18 → resnet18: {changelog.splitlines()[-2]}>"
    assert (
        repr(d)
        == "<GraphDiff resnet18 → resnet18: 1 changed · params 11,689,512 → 11,181,642 (-507,870)>"
    )
    assert d._repr_markdown_() == f"```text\n{changelog}```\n"
    assert "~ fc  Linear  out_features 1000 → 10" in d._repr_markdown_()
    html = d._repr_html_()
    assert html is not None and html.startswith("<iframe")
    same = nnviz.diff(traced("resnet18"), traced("resnet18"))
    assert repr(same).startswith("<GraphDiff resnet18 → resnet18: identical")


def test_to_dict_is_the_json_document_as_a_dict() -> None:
    d = nnviz.diff(traced("resnet18"), traced("resnet18", num_classes=10))
    doc = d.to_dict()
    assert isinstance(doc, dict) and doc["format"] == "nnviz-diff"
    assert json.loads(json.dumps(doc)) == doc
    assert not hasattr(d, "to_json")
