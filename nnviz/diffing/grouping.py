"""Identical changes across repeated blocks as one line: `+ blocks.{0..15}.aa  Identity ×16`.

Works on the changelog's text items (an entry's own lines plus its `↳` followers). Two items are
the same change in sibling blocks when they read the same once every numeric component of every
module path in them is blanked out (`blocks.3.attn` and `blocks.7.attn`); such items become one,
each blank showing the set of numbers it took (`{0..11}`, `{0,2,5}`) and each of its own lines
ending with `×N`. Then changes that read the same after their name (a class swapped at
`blocks.{0..11}.norm1`, `blocks.{0..11}.norm2` and `norm`; one view in three calls of a scope)
join into one line naming every place in brace patterns (`nnviz.diffing.places`: a pattern is
every combination of its sets, as in a shell). Nothing but names is ever blanked, so two lines
with different values never merge.
"""

from __future__ import annotations

import re

from nnviz.diffing.blocks import span
from nnviz.diffing.folding import INSIDE
from nnviz.diffing.places import compress, expand

# a dotted path with at least one component that starts with a letter (never a float)
_NAME = re.compile(r"(?<![\w.])(?:\d+\.)*[A-Za-z_][\w:#]*(?:\.[\w:#]+)*")
_INDEX = re.compile(r"(?:(?<=\.)|^)\d+(?=\.|:|#|$)")
_TIMES = re.compile(r" ×(\d+)$")
_HEADS = ("~ ", "+ ", "- ", "→ ")
_PLACED = ("~ ", "+ ", "- ", "↳ ")

Item = list[str]


def _split(line: str) -> tuple[str, list[int]]:
    """The line with the numbers in its module paths blanked (`{}`), and those numbers."""
    numbers: list[int] = []

    def blank_name(found: re.Match[str]) -> str:
        def blank(index: re.Match[str]) -> str:
            numbers.append(int(index.group()))
            return "{}"

        return _INDEX.sub(blank, found.group())

    return _NAME.sub(blank_name, line.replace("{", "{{").replace("}", "}}")), numbers


def _times(line: str, n: int) -> str:
    if n < 2 or not line.startswith(_HEADS):
        return line
    found = _TIMES.search(line)
    if found:
        return line[: found.start()] + f" ×{int(found.group(1)) * n}"
    return f"{line} ×{n}"


def group_items(items: list[Item]) -> list[Item]:
    """Items whose own lines differ only in the numbers of their module paths, as one item
    each; their `↳` followers (indented lines) are pooled and grouped alike."""
    groups: dict[tuple[str, ...], list[tuple[list[list[int]], list[str]]]] = {}
    order: list[tuple[str, ...] | Item] = []
    for item in items:
        own = [line for line in item if _own(line)]
        if not own or own[0].startswith("→ "):  # renames: runs of them fold into one elsewhere
            order.append(item)
            continue
        split = [_split(line) for line in own]
        key = tuple(text for text, _ in split)
        if key not in groups:
            groups[key] = []
            order.append(key)
        followers = [line for line in item if not _own(line)]
        groups[key].append(([numbers for _, numbers in split], followers))
    out: list[Item] = []
    for slot in order:
        if isinstance(slot, list):
            out.append(slot)
            continue
        members = groups[slot]
        if not _one_index(members) or _name_sets(slot[0], members) > 1:
            # numbers that vary apart: sets would lose who goes with whom; two sets in one name
            # read as every combination, which join_places spells when that is what they are
            out.extend(_fill(slot, numbers) + followers for numbers, followers in members)
            continue
        lines = []
        for i, template in enumerate(slot):
            columns = zip(*(numbers[i] for numbers, _ in members), strict=True)
            text = template.format(*(span(c) for c in columns))
            lines.append(_times(text, len(members)))
        pooled = [line for _, followers in members for line in followers]
        out.append([*lines, *(group_lines(pooled) if len(members) > 1 else pooled)])
    return out


def _one_index(members: list[tuple[list[list[int]], list[str]]]) -> bool:
    """Whether every number that varies across the members varies with the first such one
    (`blocks.3.attn … blocks.3.norm`): then the sets read unambiguously."""
    rows = [[n for line in numbers for n in line] for numbers, _ in members]
    varying = [c for c in zip(*rows, strict=True) if len(set(c)) > 1]
    return all(c == varying[0] for c in varying)


def _name_sets(template: str, members: list[tuple[list[list[int]], list[str]]]) -> int:
    """How many of the blanks in the name of the first line (before its title) vary."""
    blanks = template.partition("  ")[0].replace("{{", "").replace("}}", "").count("{}")
    rows = [numbers[0][:blanks] for numbers, _ in members]
    return sum(1 for column in zip(*rows, strict=True) if len(set(column)) > 1)


def _fill(templates: tuple[str, ...], numbers: list[list[int]]) -> list[str]:
    return [t.format(*line) for t, line in zip(templates, numbers, strict=True)]


def group_lines(lines: list[str]) -> list[str]:
    """Follower lines that differ only in the numbers of their module paths, as one line."""
    indents = {len(line) - len(line.lstrip(" ")) for line in lines}
    if len(indents) != 1:
        return lines
    pad = " " * indents.pop()
    items = join_places(group_items([[line[len(pad) :]] for line in lines]))
    return [pad + line for item in items for line in item]


def join_places(items: list[Item]) -> list[Item]:
    """Items whose one own line reads the same after its name, as one line naming every place
    (`~ a.{0..11}.norm1, norm  LayerNorm  class … ×13`), their `↳` followers pooled; `↳` lines
    alike (without a count)."""
    keyed: dict[tuple[str, ...], list[tuple[str, int, list[str], str]]] = {}
    slots: list[tuple[str, ...] | Item] = []
    for item in items:
        own = [line for line in item if _own(line)]
        parsed = _place(own[0]) if own and all(_own(line, False) for line in own[1:]) else None
        if parsed is None:
            slots.append(item)
            continue
        symbol, name, rest, n = parsed
        key = (symbol, _sized(_settings(rest)[0]), *own[1:])
        if key not in keyed:
            keyed[key] = []
            slots.append(key)
        keyed[key].append((name, n, [line for line in item if not _own(line)], rest))
    out: list[Item] = []
    for slot in slots:
        if isinstance(slot, list):
            out.append(slot)
            continue
        places = keyed[slot]
        if len(places) == 1:
            name, total, followers, rest = places[0]
        else:
            name = compress([n for place, *_ in places for n in expand(place)])
            total = sum(n for _, n, *_ in places)
            followers = [line for _, _, lines, _ in places for line in lines]
            rests = [rest for *_, rest in places]
            rest = _merged_sizes(rests) if _sized(rests[0]) != rests[0] else rests[0]
            rest = _merged_settings([rest, *rests[1:]]) if _CLASS_NOTE.match(rest) else rest
        line = f"{slot[0]} {name}  {rest}"
        counted = slot[0] != "↳" and total > 1
        out.append([f"{line} ×{total}" if counted else line, *slot[2:], *followers])
    return out


# a class change whose note says the settings only one of the two classes has
_CLASS_NOTE = re.compile(r"^(?P<head>\S+  class \S+ → \S+) \((?P<note>[^()]*)\)$")


_SIZE = re.compile(r" \((\d+) nodes?, (-?[\d.]+[KMB]?) params\)")
_UNITS = {"K": 1e3, "M": 1e6, "B": 1e9}


def _sized(rest: str) -> str:
    """A line's text with the parameter count of its added or removed module blanked (the same
    block, as many nodes, in stages of several widths: `(30 nodes, 914 params)`, `(30 nodes,
    3.3K params)`); a different node count is a different block."""
    return _SIZE.sub(lambda m: f" ({m.group(1)} nodes, … params)", rest)


def _merged_sizes(rests: list[str]) -> str:
    """One text for lines equal but for their modules' sizes: each size as it is when all
    agree, else its range (`(30 nodes, 914–3.3K params)`)."""
    found = [_SIZE.search(rest) for rest in rests]
    if not all(found):
        return rests[0]
    spans = []
    for i, unit in ((1, "nodes"), (2, "params")):
        values = sorted({m.group(i) for m in found if m}, key=_amount)
        one = len(values) == 1
        if one and unit == "nodes" and values[0] == "1":
            unit = "node"
        spans.append(f"{values[0]} {unit}" if one else f"{values[0]}–{values[-1]} {unit}")
    first = found[0]
    assert first is not None
    return f"{rests[0][: first.start()]} ({', '.join(spans)}){rests[0][first.end() :]}"


def _amount(text: str) -> float:
    unit = _UNITS.get(text[-1:], 1.0)
    return float(text[:-1] if text[-1:] in _UNITS else text) * unit


def _settings(rest: str) -> tuple[str, list[str]]:
    """A line's text after its name with the values of a class change's own settings blanked
    (`class BasicConv2d → ConvNormAct (in_channels=…, out_channels=…)`: the same swap at every
    place, each with its own channels), and its note's parts."""
    found = _CLASS_NOTE.match(rest)
    if found is None:
        return rest, []
    parts = re.split(r"(; |, )", found["note"])
    blank = [p.partition("=")[0] + "=…" if "=" in p else p for p in parts]
    return f"{found['head']} ({''.join(blank)})", parts


def _merged_settings(rests: list[str]) -> str:
    """One text for lines equal but for their settings' values: a value all places share stays,
    one that differs reads `key=…`."""
    split = [_settings(rest) for rest in rests]
    if any(not parts for _, parts in split) or len({len(parts) for _, parts in split}) != 1:
        return rests[0]
    columns = zip(*(parts for _, parts in split), strict=True)
    note = "".join(c[0] if len(set(c)) == 1 else c[0].partition("=")[0] + "=…" for c in columns)
    head = _CLASS_NOTE.match(rests[0])
    return f"{head['head']} ({note})" if head else rests[0]


def _own(line: str, heads: bool = True) -> bool:
    """Whether a line says the item's own change (its head lines, when `heads`, and the summary
    of what it changed inside) rather than a consequence."""
    return (heads and not line.startswith(" ")) or line.startswith(INSIDE)


def _place(line: str) -> tuple[str, str, str, int] | None:
    """`~ name  rest ×N` as (symbol, name, rest, N); None for other lines (renames)."""
    if not line.startswith(_PLACED):
        return None
    name, sep, rest = line[2:].partition("  ")
    if not sep:
        return None
    found = _TIMES.search(rest)
    n = int(found.group(1)) if found else 1
    return line[0], name, rest[: found.start()] if found else rest, n
