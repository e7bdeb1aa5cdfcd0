"""Read the lines of an `nnviz diff` text report, as a reviewer would (bench/truthdiff.py judges
them). Nothing here imports nnviz or torch.

A change line is `MARK NAMES  TITLE  DETAIL`: MARK is `~ + - →`, NAMES a comma-separated list
whose braces expand (`blocks.{0..11}.{norm1,norm2}`), DETAIL one or more changes joined by `; `.
A folded `↳` line hangs under the change line above it (its *parent*): a consequence with its own
name (`↳ NAME  DETAIL`), or a summary without one: `↳ inside: ...` (what changed inside the
parent's modules, names relative to them) and `↳ output shapes follow in N nodes (...)` /
`↳ inputs rewired in N nodes (...)` (counted consequences).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

MARKERS = ("~ ", "+ ", "- ", "→ ")
INSIDE = "↳ inside: "
COUNTED = re.compile(r"^↳ (output shapes follow|inputs rewired) in \d+ nodes")
RENAME = re.compile(r"^(?P<old>\S+)(?: … (?P<old_end>\S+))? (?:renamed|moved) to (?P<new>\S+)")
_GROUP = re.compile(r"\{([^{}]*)\}")
_OPS = re.compile(r"^(?P<mark>[+−~-])\d+ ops? \((?P<kinds>.*)\)$")
_MODULES = re.compile(r"^(?P<mark>[+−~-]) (?P<names>.+?) (?P<what>\(.*\)|\S+)$")
_SWAP = re.compile(r"^(?P<name>\S+) (?P<old>\S+) → (?P<new>\S+)$")


def _members(spec: str) -> list[str]:
    """`0..2` -> 0, 1, 2; `0,2,5` -> 0, 2, 5; `norm1,norm2` -> norm1, norm2."""
    out: list[str] = []
    for part in spec.split(","):
        lo, dots, hi = part.partition("..")
        if dots and lo.strip().isdigit() and hi.strip().isdigit():
            out += [str(i) for i in range(int(lo), int(hi) + 1)]
        else:
            out.append(part.strip())
    return out


def expand(name: str, detail: str = "") -> list[tuple[str, str]]:
    """`blocks.{0..2}.aa` -> `blocks.0.aa`, `blocks.1.aa`, `blocks.2.aa` (`{1,3}` likewise), each
    with its own detail (the same group in `input 0 blocks.{0..2}.x` follows). Several groups in
    one name read as every combination, as in a shell (`enc.block.{0,1}.layer.{0,1}.ln`: four)."""
    groups = list(_GROUP.finditer(name))
    if not groups:
        return [(name, detail)]
    sets = [_members(g.group(1)) for g in groups]
    sets = [list(t) for t in zip(*itertools.product(*sets), strict=True)]
    out = []
    for values in zip(*sets, strict=True):
        n, d = name, detail
        for group, value in zip(groups, values, strict=True):
            token = group.group(0)
            n, d = (
                n.replace(token, value, 1),
                d.replace(token, value, -1 if name.count(token) == 1 else 1),
            )
        out.append((n, d))
    return out


def values(detail: str) -> list[str]:
    """The node names on either side of `A → B` in a change's detail (`input 0 A → B`, or
    without the slot, `input A → B`)."""
    words = detail.split(" ")
    slotted = words[0] in ("arg", "input") or (words[1:2] and words[1][:1].isdigit())
    rest = words[2:] if slotted and words[2:3] != ["→"] else words[1:]
    return [v.strip() for v in " ".join(rest).split(" → ")]


def label_of(detail: str) -> str:
    """What a change is about: `arg 1`, `input 0`, `output`, `class`, a field name."""
    words = detail.split(" ")
    return " ".join(words[:2]) if words[0] in ("arg", "input") else words[0]


def parse(line: str) -> tuple[str, list[tuple[str, str]]] | None:
    """(marker, [(name, one change's detail) per grouped member and change]) of a change line; a
    `→` line has one member: (old name, the whole line). None for other lines."""
    text = line.strip()
    if summary(text):
        return None
    folded = text.startswith("↳ ")  # a consequence, printed without the title column
    if folded:
        text = "~ " + text[2:]
    if text[:2] not in MARKERS or "… and " in text:
        return None
    marker, body = text[0], text[2:]
    if marker == "→":
        found = RENAME.match(body)
        return marker, [(found["old"] if found else "", body)]
    names, _, rest = body.partition("  ")  # `a.{0..3}.x, b.y  Title  detail; detail`
    detail = rest.strip() if folded else rest.partition("  ")[2].strip()
    detail = re.sub(r" ×\d+$", "", detail)  # a grouped line's count
    members = [m for name in names.split(", ") for m in expand(name.split(" ")[0], detail)]
    return marker, [(n, part) for n, d in members for part in changes(d)]


def changes(detail: str) -> list[str]:
    """The changes of one line's detail: split at `; ` outside brackets and quotes (`class A → B
    (a subclass; same settings)` is one)."""
    out, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(detail):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and detail.startswith("; ", i):
            out.append(detail[start:i])
            start = i + 2
    return [*out, detail[start:]]


@dataclass
class Line:
    """One report line with the change line it hangs under (for `↳` summaries)."""

    text: str
    parent: str | None  # the nearest change line above that is not a `↳` line
    parent_index: int | None


def walk(lines: list[str]) -> Iterator[Line]:
    parent: tuple[str, int] | None = None
    for i, line in enumerate(lines):
        text = line.strip()
        yield Line(line, *(parent or (None, None)))
        if text[:2] in MARKERS and "… and " not in text:
            parent = (line, i)


def summary(line: str) -> str | None:
    """`inside` for a `↳ inside:` line, `counted` for a counting consequence line, else None."""
    text = line.strip()
    if text.startswith(INSIDE):
        return "inside"
    return "counted" if COUNTED.match(text) else None


@dataclass(frozen=True)
class InsidePart:
    """One item of a `↳ inside:` line: modules (`+`, `−`, `~` by relative name, `swap` of a
    class), or ops counted by base name (`+ops`, `−ops`, `~ops`)."""

    kind: str
    names: tuple[str, ...]


def inside_parts(line: str) -> list[InsidePart]:
    """`− wi Linear; + wi_0, wi_1 Linear; act ReLU → NewGELU; +8 ops (mul ×4, add ×2, pow)`."""
    out = []
    for part in line.strip()[len(INSIDE) :].split("; "):
        mark_ops, mark_modules, swap = _OPS.match(part), _MODULES.match(part), _SWAP.match(part)
        if mark_ops:
            kinds = [k.split(" ×")[0] for k in mark_ops["kinds"].split(", ") if k != "…"]
            names = [n for k in kinds for n in k.split(" → ")]
            out.append(InsidePart(f"{mark_ops['mark'].replace('−', '-')}ops", tuple(names)))
        elif swap and not mark_modules:
            out.append(InsidePart("swap", (swap["name"],)))
        elif mark_modules:
            names = tuple(mark_modules["names"].split(", "))
            out.append(InsidePart(mark_modules["mark"].replace("−", "-"), names))
    return out


_OWN_OPS = re.compile(r"^(?:ops )?(?P<mark>[+−~-])\d+ \((?P<kinds>.*)\)$")


def op_counts(detail: str) -> list[str] | None:
    """The op base names of one part of a module's `ops +6 (contiguous ×2, …); −9 (…)` summary
    of its own ops added, removed or changed (`~1 (silu → gelu)`: both); None for other details."""
    found = _OWN_OPS.match(detail)
    if found is None:
        return None
    kinds = [k.split(" ×")[0] for k in found["kinds"].split(", ") if k != "…"]
    return [n for k in kinds for n in k.split(" → ")]


def subjects(line: str) -> list[str]:
    """The node names a change line is about (groups expanded, both ends of a move)."""
    parsed = parse(line)
    if parsed is None:
        return []
    marker, members = parsed
    if marker == "→":
        found = RENAME.match(members[0][1])
        return [found["old"], found["new"]] if found else []
    return list(dict.fromkeys(name for name, _ in members))


def all_subjects(lines: list[str]) -> list[str]:
    """Every node name the report points at: change lines' names, and the modules an `inside:`
    line names under its parent's names."""
    out = []
    for item in walk(lines):
        if summary(item.text) == "inside" and item.parent is not None:
            rel = [
                n for p in inside_parts(item.text) if not p.kind.endswith("ops") for n in p.names
            ]
            out += [f"{owner}.{r}" for owner in subjects(item.parent) for r in rel]
        else:
            out += subjects(item.text)
    return out


def distinct(lines: list[str]) -> int:
    """How many change lines remain when lines equal up to sibling indices (`blocks.3` vs
    `blocks.7`) count once: the length of a perfectly grouped report."""
    changes = [line.strip() for line in lines if parse(line) or summary(line)]
    return len({re.sub(r"\.\d+(?=[.:\s])", ".N", line) for line in changes})
