"""Many module paths as a few brace patterns that name every one of them, and back.

`join([Places.of("enc.block.0.ln"), Places.of("enc.block.1.ln"), ...])` gives
`enc.block.{0,1}.ln, ...`: a pattern reads as the shell reads braces, every combination of its
sets (`encoder.block.{0,1}.layer.{0..2}.layer_norm` is six places), so the names of the joined
places are exactly the names given, never one more and never one less. `compress` and `expand`
are the same as text (brace patterns a user wrote, or a test).
"""

from __future__ import annotations

import re

from nnviz.diffing.records import Pattern, Places, component_text

_BRACES = re.compile(r"\{([^{}]*)\}")
_MAX_PASSES = 8  # each pass can only merge; real paths settle in two or three


def join(places: list[Places]) -> Places:
    """Every place of `places` as few patterns as name them all, in the order the names first
    appear; a set stands for a whole component (`{query,key,value}`) or for the number ending
    one name (`encoder_layer_{0..11}`, `norm{1,2}`)."""
    patterns: list[Pattern] = []
    for name in dict.fromkeys(n for p in places for n in p.names()):
        patterns.append(tuple((part,) for part in name.split(".")))
    for _ in range(_MAX_PASSES):
        merged = False
        for position in range(max((len(p) for p in patterns), default=0) - 1, -1, -1):
            patterns, changed = _merge_at(patterns, position)
            merged = merged or changed
        if not merged:
            break
    return Places(tuple(patterns))


def compress(names: list[str]) -> str:
    """The names as comma-separated brace patterns (`join` as text)."""
    patterns = join([Places.of(n) for n in names]).patterns
    return ", ".join(".".join(component_text(c) for c in p) for p in patterns)


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


def expand(text: str) -> list[str]:
    """Every name a brace-pattern text stands for (`a.{0..2}.b, c` -> a.0.b, a.1.b, a.2.b, c)."""
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
