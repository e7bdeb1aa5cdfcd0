"""Every rendering of one diff counts and lists the same entries.

Hypothesis draws small edits of a real model (children swapped, a layer inserted or removed, a
child renamed, a class swapped, a kernel widened with or without the padding that keeps the
shapes), traces both sides with data, and reads each rendering as a reader would: the text
changelog's totals line and its entry lines, the JSON document's `summary`, the markdown
section's table, the PR comment's table row and annotation, and the interactive page's list.
The readings here parse rendered text on purpose: they are the ground truth of what a reviewer
sees, computed apart from the records that produced it.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import traced
from torch import nn

import nnviz
from nnviz import github
from nnviz.diffing.changelog import ORPHANS, changelog, markdown
from nnviz.diffing.places import expand
from nnviz.driftreport import Drift, DriftReport, Summary
from nnviz.graph import Graph
from nnviz.render.htmlview import diff_view
from nnviz.render.style import Style

STATUSES = ("changed", "added", "removed", "renamed")
INPUT = "tensor1x4x8x8"

# A model is a list of named blocks, each a list of layers; every layer keeps 4 channels, so any
# edit still runs (a wider kernel without more padding shrinks the picture: shapes follow). A
# block's settings (`Block(tag=, scale=, note=)`) change nothing below it: attribute-only
# information, not drift.
Layer = tuple[str, int]  # (kind, kernel)
Spec = list[tuple[str, list[Layer]]]
SETTINGS = ("tag", "scale", "note")


class Block(nn.Sequential):
    """A container with settings of its own that its children never read."""

    def __init__(self, *layers: nn.Module, tag: str = "a", scale: float = 1.0, note: int = 0):
        super().__init__(*layers)
        self.tag, self.scale, self.note = tag, scale, note


BASE: Spec = [
    ("stem", [("conv", 3), ("bn", 0), ("relu", 0)]),
    ("body", [("conv", 3), ("relu", 0), ("maxpool", 3), ("conv", 1)]),
    ("head", [("conv", 3), ("gelu", 0), ("avgpool", 3)]),
]
SWAP_CLASS = {
    "relu": "gelu",
    "gelu": "tanh",
    "tanh": "relu",
    "maxpool": "avgpool",
    "avgpool": "maxpool",
    "bn": "identity",
    "identity": "bn",
    "conv": "conv",
    "dropout": "identity",
}
INSERTS = ("dropout", "relu", "identity", "conv")


def layer(kind: str, kernel: int) -> nn.Module:
    if kind == "conv":
        return nn.Conv2d(4, 4, kernel, padding=kernel // 2)
    if kind == "wideconv":  # kernel 5 with the padding of 3: the picture shrinks
        return nn.Conv2d(4, 4, 5, padding=1)
    if kind in ("maxpool", "avgpool"):
        pool = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
        return pool(3, stride=1, padding=1)
    simple = {
        "bn": lambda: nn.BatchNorm2d(4),
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "tanh": nn.Tanh,
        "identity": nn.Identity,
        "dropout": nn.Dropout,
    }
    return simple[kind]()


def _setting(name: str, value: int) -> Any:
    return {"tag": f"t{value}", "scale": float(value), "note": value}[name]


def build(spec: Spec) -> nn.Module:
    blocks = []
    for name, layers in spec:
        settings = [(k, n) for k, n in layers if k in SETTINGS]  # (setting, its new value)
        built = [layer(k, n) for k, n in layers if k not in SETTINGS]
        blocks.append((name, Block(*built, **{k: _setting(k, n) for k, n in settings})))
    tail = [("pool", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten())]
    return nn.Sequential(OrderedDict([*blocks, *tail]))


@st.composite
def edits(draw: st.DrawFn) -> Spec:
    """BASE after 1-3 edits."""
    spec = [(name, list(layers)) for name, layers in BASE]
    for _ in range(draw(st.integers(1, 3))):
        block = draw(st.integers(0, len(spec) - 1))
        _, layers = spec[block]
        what = draw(
            st.sampled_from(
                ["swap", "insert", "remove", "rename", "class", "kernel", "swap_blocks", "set"]
            )
        )
        real = [entry for entry in layers if entry[0] not in SETTINGS]
        layers[:] = real + [entry for entry in layers if entry[0] in SETTINGS]
        at = draw(st.integers(0, max(0, len(real) - 1)))
        if what == "swap" and len(real) > 1:
            other = (at + 1) % len(real)
            layers[at], layers[other] = layers[other], layers[at]
        elif what == "insert":
            kind = draw(st.sampled_from(INSERTS))
            layers.insert(draw(st.integers(0, len(real))), (kind, 3 if kind == "conv" else 0))
        elif what == "remove" and len(real) > 1:
            del layers[at]
        elif what == "rename":
            taken = {n for n, _ in spec}
            spec[block] = (
                next(n for n in ("trunk", "neck", "tail", "core") if n not in taken),
                layers,
            )
        elif what == "class" and real:
            kind, kernel = layers[at]
            layers[at] = (SWAP_CLASS.get(kind, kind), kernel)
        elif what == "kernel" and any(k == "conv" for k, _ in layers):
            index = next(i for i, (k, _) in enumerate(layers) if k == "conv")
            layers[index] = draw(st.sampled_from([("conv", 5), ("wideconv", 5), ("conv", 1)]))
        elif what == "set":  # one to three of the block's own settings
            for name in draw(st.sets(st.sampled_from(SETTINGS), min_size=1)):
                layers.append((name, draw(st.integers(2, 3))))
        elif what == "swap_blocks" and len(spec) > 1:
            other = (block + 1) % len(spec)
            spec[block], spec[other] = spec[other], spec[block]
    return spec


# --- the readings --------------------------------------------------------------------------------

_TOTAL = re.compile(r"(\d+) (changed|added|removed|renamed|downstream)\b")
_SYMBOLS = {"~": "changed", "+": "added", "-": "removed", "→": "renamed"}


def text_totals(text: str) -> dict[str, int]:
    line = next(line for line in text.splitlines() if " · params " in line)
    found = {kind: int(n) for n, kind in _TOTAL.findall(line.split(" · ")[0])}
    return {s: found.get(s, 0) for s in (*STATUSES, "downstream")}


_MOVE = re.compile(r"^→ (.*) (?:moved|renamed) to (.*?)(?: \(\d+ layers\))?$")


def text_entries(text: str) -> list[str]:
    """The place of each top-level entry (`~ head.0  Conv2d ...`; `→ a moved to b`, with the
    change line of the same place that may follow it, is one entry at `b`)."""
    out: list[str] = []
    renamed = None
    for line in text.splitlines():
        moved = _MOVE.match(line)
        if moved:
            out.append(moved[2])
            renamed = moved[2]
            continue
        if line[:2] in ("~ ", "+ ", "- "):
            place = line[2:].split("  ")[0]
            if place != renamed:
                out.append(place)
        renamed = None
    return out


def page_name(change: dict[str, Any]) -> str:
    """A page list item's place, as `text_entries` reads the text's."""
    name = re.sub(r" ×\d+$", "", change["name"])
    moved = _MOVE.match("→ " + name)
    return moved[2] if moved else name


def json_counts(doc: dict[str, Any]) -> dict[str, int]:
    summary = doc["summary"]
    return {**{s: summary[s] for s in STATUSES}, "downstream": summary["propagated"]}


def markdown_counts(section: str) -> dict[str, int]:
    rows = dict(
        re.findall(
            r"^\| (changed|added|removed|renamed|downstream) \| (\d+) \|$", section, re.MULTILINE
        )
    )
    return {s: int(rows.get(s, 0)) for s in (*STATUSES, "downstream")}


def comment_row(doc: dict[str, Any]) -> tuple[dict[str, int], str]:
    """The PR comment's table row for this drift, and its annotation's first line."""
    drift = Drift(
        nodeid="tests/test_m.py::test_m",
        file="tests/test_m.py",
        line=3,
        snapshot="tests/__nnviz_snapshots__/test_m/test_m.json",
        diff=doc,
    )
    report = DriftReport(summary=Summary(drifted=1), drifts=[drift])
    body = github.comment(report)
    row = next(
        line
        for line in body.splitlines()
        if line.startswith("| [`test_m`]") or line.startswith("| `test_m`")
    )
    cells = [c.strip() for c in row.strip("|").split("|")]
    counts = dict(zip(STATUSES, map(int, cells[2:6]), strict=True))
    annotation = github.workflow_commands(report)[0]
    section = re.search(r"<summary>1\. test_m: (.*)</summary>", body)
    assert section is not None, body
    return counts, f"{annotation} ({section[1]})"


def page_list(result: nnviz.diffing.model.GraphDiff) -> list[dict[str, Any]]:
    return diff_view(result, Style(), context=1)["changes"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits())
def test_every_rendering_counts_and_lists_the_same_entries(spec: Spec) -> None:
    agree(spec)


def agree(spec: Spec) -> None:
    """Diff BASE against `spec` traced, and check that every rendering agrees."""
    agree_on(_base(), nnviz.trace(build(spec), inputs=INPUT))


@functools.cache
def _base() -> Graph:
    """BASE traced, once: every example diffs against it."""
    return nnviz.trace(build(BASE), inputs=INPUT)


def agree_on(old: Graph, new: Graph) -> None:
    """Diff two graphs and check that every rendering counts and lists the same entries."""
    result = nnviz.diff(old, new)
    doc = result.to_dict()
    text = changelog(doc)
    listed = page_list(result)
    # information: the page lists (and the text shows) one place per module the summary counts
    attributes = [c for c in listed if c.get("info") == "attribute"]
    places = sum(len(expand(page_name(c))) for c in attributes)
    assert places == doc["summary"]["info"].get("attribute", 0), (listed, text)
    shown = [line for line in text.splitlines() if line.startswith("  ~ ")]
    assert len(shown) == len(attributes), text
    if result.identical:
        assert all(v == 0 for v in json_counts(doc).values()), text
        return
    totals = text_totals(text)
    assert json_counts(doc) == totals, text
    assert markdown_counts(markdown(doc)) == totals, text
    row, annotation = comment_row(doc)
    assert row == {s: totals[s] for s in STATUSES}, text
    changes = sum(totals[s] for s in STATUSES)
    said = f"{changes} change{'' if changes == 1 else 's'}"
    assert annotation.count(f"({said})") == 2, (annotation, text)  # annotation, PR section

    drift = [c for c in listed if "info" not in c and c["status"] != "downstream"]
    # what follows no entry is one item on the page, under one heading in the text
    orphans = [c for c in listed if c["status"] == "downstream"]
    assert len(orphans) == text.splitlines().count(ORPHANS) <= 1, (listed, text)
    assert [page_name(c) for c in drift] == text_entries(text), (listed, text)
    names = [n for c in drift for n in expand(page_name(c)) if " … " not in page_name(c)]
    assert len(names) == len(set(names)), listed  # no place listed twice


@pytest.mark.parametrize(
    "spec",
    [
        # the issue's drift: a kernel 3 -> 5, a Dropout inserted, a pool swapped
        (
            [
                ("stem", BASE[0][1]),
                ("body", [("conv", 5), ("relu", 0), ("dropout", 0), ("avgpool", 3), ("conv", 1)]),
                ("head", BASE[2][1]),
            ]
        ),
        # two swapped Sequential children
        [BASE[1], BASE[0], BASE[2]],
        # three settings of two blocks: information, two modules
        [(n, [*layers, ("tag", 2), ("scale", 3), ("note", 2)]) for n, layers in BASE[:2]]
        + [BASE[2]],
    ],
)
def test_the_issues_drifts_agree(spec: Spec) -> None:
    agree(spec)


@pytest.mark.parametrize(("old", "new"), [("resnet18", "resnet34"), ("resnet34", "resnet18")])
def test_torchvision_upgrades_agree(old: str, new: str) -> None:
    agree_on(traced(old), traced(new))  # resnet18 -> 34: each added block listed once
