"""Many module paths as a few brace patterns that name every one of them, and back.

`compress(["enc.block.0.ln", "enc.block.1.ln", "enc.block.0.ff.ln", ...])` gives
`enc.block.{0,1}.ln, ...`: a pattern reads as the shell reads braces, every combination of its
sets (`encoder.block.{0,1}.layer.{0..2}.layer_norm` is six places), so `expand` of the
compressed text gives back exactly the names given, never one more and never one less. Pure text.
"""

from __future__ import annotations

import re

from nnviz.diffing.blocks import span

_BRACES = re.compile(r"\{([^{}]*)\}")
_MAX_PASSES = 8  # each pass can only merge; real paths settle in two or three

Pattern = tuple[tuple[str, ...], ...]
"""A path as its dot-separated components, each a tuple of alternatives."""


def compress(names: list[str]) -> str:
    """The names as comma-separated brace patterns, in the order the names first appear; a set
    stands for a whole component (`{query,key,value}`) or for the number ending one name
    (`encoder_layer_{0..11}`, `norm{1,2}`)."""
    patterns: list[Pattern] = []
    for name in dict.fromkeys(names):
        patterns.append(tuple((part,) for part in name.split(".")))
    for _ in range(_MAX_PASSES):
        merged = False
        for position in range(max((len(p) for p in patterns), default=0) - 1, -1, -1):
            patterns, changed = _merge_at(patterns, position)
            merged = merged or changed
        if not merged:
            break
    return ", ".join(".".join(_component(alts) for alts in p) for p in patterns)


def _merge_at(patterns: list[Pattern], position: int) -> tuple[list[Pattern], bool]:
    """Patterns equal but for the component at `position` as one pattern (first one's place)."""
    groups: dict[tuple[object, ...], list[Pattern]] = {}
    for p in patterns:
        # a set stands for one component of a longer path, never for a whole name
        mergeable = len(p) > 1 and position < len(p)
        key = (len(p), p[:position], p[position + 1 :]) if mergeable else (p,)
        groups.setdefault(key, []).append(p)
    out: list[Pattern] = []
    for members in groups.values():
        if len(members) == 1:
            out.append(members[0])
            continue
        alts = tuple(dict.fromkeys(a for m in members for a in m[position]))
        out.append((*members[0][:position], alts, *members[0][position + 1 :]))
    return out, len(out) != len(patterns)


_NUMBERED = re.compile(r"^(.*?)(0|[1-9]\d*)$")


def _component(alts: tuple[str, ...]) -> str:
    """One component's alternatives: `{0..11}`, `encoder_layer_{0,1}` (one name, numbered, as
    the drawing titles sibling blocks), else `{query,key,value}`."""
    if len(alts) == 1:
        return alts[0]
    numbered = [m for m in map(_NUMBERED.match, alts) if m is not None]
    stems = {m.group(1) for m in numbered}
    if len(numbered) == len(alts) and len(stems) == 1:
        return numbered[0].group(1) + span(int(m.group(2)) for m in numbered)
    return "{" + ",".join(alts) + "}"


def expand(text: str) -> list[str]:
    """Every name a `compress` text stands for (`a.{0..2}.b, c` -> a.0.b, a.1.b, a.2.b, c)."""
    out: list[str] = []
    for pattern in _split_top(text):
        names = [""]
        rest = pattern
        for found in _BRACES.finditer(pattern):
            head = rest[: found.start() - (len(pattern) - len(rest))]
            rest = pattern[found.end() :]
            names = [n + head + alt for n in names for alt in _members(found.group(1))]
        out.extend(n + rest for n in names)
    return out


def _split_top(text: str) -> list[str]:
    """`a.{0,1}.b, c` -> [`a.{0,1}.b`, `c`]: commas outside braces separate patterns."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _members(spec: str) -> list[str]:
    lo, dots, hi = spec.partition("..")
    if dots and lo.isdigit() and hi.isdigit() and "," not in spec:
        return [str(i) for i in range(int(lo), int(hi) + 1)]
    return spec.split(",")
