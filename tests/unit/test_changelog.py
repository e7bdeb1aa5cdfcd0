"""`nnviz.diffing.changelog` renders a diff document alone: the same text as the GraphDiff,
markdown within GitHub's limits, Mermaid that stays small and escaped."""

from __future__ import annotations

import json
import re

from support import traced

import nnviz
from nnviz.diffing import changelog as renderings
from nnviz.diffing import mermaid, wording
from nnviz.graph import Edge, Graph, Module, Node


def test_changelog_needs_only_the_json_document() -> None:
    result = nnviz.diff(traced("resnet18"), traced("resnet34"))
    doc = json.loads(json.dumps(result.to_dict()))  # what report.json holds
    assert renderings.changelog(doc) == result.to_text()
    assert renderings.markdown(doc) == result.to_markdown()
    lines = result.to_text().splitlines()
    # the blocks' contents are folded into one line each, the blocks of every stage into one
    # line naming each (their sizes differ by stage: a range)
    assert lines == [
        "+ layer{1,4}.2, layer2.{2,3}, layer3.{2..5}  BasicBlock (7 nodes, 74K–4.7M params) ×8",
        "    ↳ inputs rewired in 7 nodes (conv1 ×3, downsample.0 ×3, avgpool)",
        "8 added, 7 downstream · params 11,689,512 → 21,797,672 (+10,108,160)",
        "checkpoint: breaks — 96 new keys left at initialisation (layer1.2.conv1.weight, "
        "layer1.2.bn1.bias, layer1.2.bn1.weight, … 93 more)",
    ]


def test_markdown_of_a_big_diff_stays_within_github_limits() -> None:
    result = nnviz.diff(traced("resnet18"), traced("resnet152"))
    text = result.to_markdown()
    assert len(text) < 65_536
    chart = text.split("```mermaid\n")[1].split("```")[0]
    boxes = re.findall(r"^  (n\d+|more)\[", chart, flags=re.MULTILINE)
    assert 10 < len(boxes) <= 100
    assert text.startswith("### nnviz diff: `resnet18` → `resnet152`\n\n| | |\n")
    assert "| added |" in text and "| parameters | 11,689,512 → 60,192,808 (+48,503,296) |" in text


def test_identical_markdown_is_one_sentence() -> None:
    result = nnviz.diff(traced("resnet18"), traced("resnet18"))
    assert result.to_markdown() == (
        "### nnviz diff: `resnet18` → `resnet18`\n\n"
        "Identical: no architecture changes (71 nodes, 11,689,512 params).\n"
    )
    assert mermaid.mermaid(result.to_dict()) == ""


def _graph(op: str, name: str) -> Graph:
    return Graph(
        [
            Node("input:x", "input", "x"),
            Node(name, "function", op),
            Node("output", "output", "output"),
        ],
        [Edge("input:x", name, ("0",)), Edge(name, "output", ("0",))],
        [Module("", "m.M")],
        {"name": "m"},
    )


def test_mermaid_escapes_user_text() -> None:
    doc = nnviz.diff(_graph("f.a", 'a"<b>#1'), _graph("f.c", 'a"<b>#1')).to_dict()
    chart = mermaid.mermaid(doc)
    assert '"a#quot;#lt;b#gt;#35;1<br/>f.c<br/>op f.a → f.c"' in chart
    assert ":::changed" in chart and "classDef changed" in chart
    assert "<b>" not in chart


def test_human_numbers() -> None:
    assert [wording.human(n) for n in (512, 9500, 2_400_000, 3_000_000_000, -73984)] == [
        "512",
        "9.5K",
        "2.4M",
        "3B",
        "-74K",
    ]


def test_unknown_documents_are_refused() -> None:
    import pytest

    from nnviz.errors import NNVizError

    doc = nnviz.diff(traced("resnet18"), traced("resnet18")).to_dict()
    with pytest.raises(NNVizError, match=r"newer nnviz \(format version 3;"):
        renderings.changelog({**doc, "version": 3})
    assert renderings.changelog({**doc, "version": 1}).startswith("identical")
    with pytest.raises(NNVizError, match="not an nnviz diff document"):
        renderings.markdown({"format": "nnviz-graph"})


def _chain(n: int, op: str) -> Graph:
    """`n` blocks in a row, each calling its own function (`op` + its index): changes that no
    grouping can merge."""
    ids = [f"block{i}.f" for i in range(n)]
    return Graph(
        [
            Node("input:x", "input", "x"),
            *(Node(i, "function", f"{op}{k}", i.split(".")[0]) for k, i in enumerate(ids)),
        ],
        [Edge(a, b, ("0",)) for a, b in zip(["input:x", *ids], ids, strict=False)],
        [Module("", "m.M"), *(Module(i.split(".")[0], "m.Block") for i in ids)],
        {"name": "chain"},
    )


def test_markdown_of_a_huge_diff_is_folded() -> None:
    result = nnviz.diff(_chain(3000, "f." + "a" * 70), _chain(3000, "f." + "b" * 70))
    assert len(list(result)) == 3000
    text = result.to_markdown()
    assert len(text) < 65_536
    assert "more lines (see the JSON diff)" in text and "```mermaid" in text


def test_terminal_colours_by_line_kind() -> None:
    """Colours come from the records (what each line says), never from reading the text."""
    result = nnviz.diff(traced("resnet18"), traced("resnet34"))
    plain = result.to_text().splitlines()
    assert result.to_text(colour=True).splitlines() == [
        f"\x1b[32m{plain[0]}\x1b[0m",  # + added: green
        f"\x1b[2m{plain[1]}\x1b[0m",  # ↳ folded: dim
        plain[2],  # the totals as they are
        plain[3],  # and the checkpoint verdict
    ]
