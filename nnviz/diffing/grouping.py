"""Identical changes across repeated blocks as one entry: `+ blocks.{0..15}.aa  Identity ×16`.

Works on the changelog's records (`nnviz.diffing.records`). Two entries are the same change in
sibling blocks when they are equal once every numbered component of every module path in them
(their places, the nodes an input reads, the places inside a swapped module) is blanked
(`blocks.3.attn` and `blocks.7.attn`); such entries become one, each blank holding the set of
numbers it took (`{0..11}`, `{0,2,5}`), counted `×N`. Then entries that are equal but for their
places (a class swapped at `blocks.{0..11}.norm1`, `blocks.{0..11}.norm2` and `norm`; one view
in three calls of a scope) join into one naming every place (`nnviz.diffing.places`: a pattern
is every combination of its sets, as in a shell). Only places are ever blanked, so two entries
with different values never merge — except an added module's parameter count (the same block in
stages of several widths: a range) and the values of a swapped class's own settings
(`in_channels=…`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nnviz.diffing.places import join
from nnviz.diffing.records import ABSENT, VARIES, Entry, FieldChange, Inside, Orphans, Places, Size

Item = Entry | Orphans


def _blanked(entry: Entry, numbers: list[int]) -> tuple[Entry, int]:
    """The entry (without followers) with every numbered place component blank, the numbers in
    `numbers` (its own places' first), and how many blanks its own places have."""
    places = entry.places.blanked(numbers)
    own = len(numbers)
    changes = tuple(_unkeyed(c).map_places(lambda p: p.blanked(numbers)) for c in entry.changes)
    inside = _map_inside(entry.inside, lambda p: p.blanked(numbers))
    return replace(entry, places=places, changes=changes, inside=inside, followers=()), own


def _unkeyed(change: FieldChange) -> FieldChange:
    """The change named by its field and slot only (the slot's numbers are blanked apart)."""
    return replace(change, key=change.field) if change.slot is not None else change


def _filled(template: Entry, columns: list[tuple[int, ...]]) -> Entry:
    it = iter(columns)
    places = template.places.filled(it)
    changes = tuple(c.map_places(lambda p: p.filled(it)) for c in template.changes)
    inside = _map_inside(template.inside, lambda p: p.filled(it))
    return replace(template, places=places, changes=changes, inside=inside)


def _map_inside(inside: Inside | None, f: Any) -> Inside | None:
    if inside is None:
        return None
    modules = tuple((m, what, tuple(f(p) for p in ps)) for m, what, ps in inside.modules)
    swaps = tuple((f(p), old, new) for p, old, new in inside.swaps)
    return Inside(modules, swaps, inside.ops)


def group_items(items: list[Item]) -> list[Item]:
    """Entries equal but for the numbers of their module paths, as one entry each; their
    followers pooled and grouped alike. Renames stay apart (runs of them fold elsewhere)."""
    groups: dict[str, tuple[Entry, int, list[tuple[list[int], Entry]]]] = {}
    order: list[str | Item] = []
    for item in items:
        if not isinstance(item, Entry) or item.was is not None:
            order.append(item)
            continue
        numbers: list[int] = []
        template, own = _blanked(item, numbers)
        key = repr(template)
        if key not in groups:
            groups[key] = (template, own, [])
            order.append(key)
        groups[key][2].append((numbers, item))
    out: list[Item] = []
    for slot in order:
        if not isinstance(slot, str):
            out.append(slot)
            continue
        template, own, members = groups[slot]
        columns = list(zip(*(numbers for numbers, _ in members), strict=True))
        varying = [c for c in columns if len(set(c)) > 1]
        in_name = sum(1 for c in columns[:own] if len(set(c)) > 1)
        if any(c != varying[0] for c in varying) or in_name > 1:
            # numbers that vary apart: sets would lose who goes with whom; two sets in one name
            # read as every combination, which join_places says when that is what they are
            out.extend(item for _, item in members)
            continue
        pooled = [f for _, item in members for f in item.followers]
        if len(members) > 1:
            pooled = group_followers(pooled)
        entry = _filled(template, columns)
        count = template.count * len(members) if template.kind != "follows" else 1
        out.append(replace(entry, followers=tuple(pooled), count=count))
    return out


def group_followers(followers: list[Any]) -> list[Any]:
    """Follower entries that differ only in the numbers of their module paths, or only in their
    places, as one entry (counted lines stay as they are)."""
    entries = [f for f in followers if isinstance(f, Entry)]
    if len(entries) != len(followers):
        return followers
    return join_places(group_items(list(entries)))  # type: ignore[return-value]


def join_places(items: list[Item]) -> list[Item]:
    """Entries equal after their places, as one entry naming every place (`~ a.{0..11}.norm1,
    norm  LayerNorm  class … ×13`), their followers pooled; followers alike (without a count)."""
    keyed: dict[str, list[Entry]] = {}
    slots: list[str | Item] = []
    for item in items:
        if not isinstance(item, Entry) or item.was is not None:
            slots.append(item)
            continue
        key = _key(item)
        if key not in keyed:
            keyed[key] = []
            slots.append(key)
        keyed[key].append(item)
    out: list[Item] = []
    for slot in slots:
        if not isinstance(slot, str):
            out.append(slot)
            continue
        members = keyed[slot]
        if len(members) == 1:
            out.append(members[0])
            continue
        first = members[0]
        out.append(
            replace(
                first,
                places=join([m.places for m in members]),
                changes=_merged_settings(members),
                size=_merged_sizes(members),
                followers=tuple(f for m in members for f in m.followers),
                count=sum(m.count for m in members) if first.kind != "follows" else 1,
            )
        )
    return out


def _key(entry: Entry) -> str:
    """What an entry says after its places: an added module's parameter count left out, a
    swapped class's own settings without their values."""
    size = entry.size and Size(entry.size.nodes, ())
    changes = _settings_blank(tuple(_unkeyed(c) for c in entry.changes))
    return repr(
        replace(entry, places=Places(()), size=size, changes=changes, followers=(), count=1)
    )


def _settings_blank(changes: tuple[FieldChange, ...]) -> tuple[FieldChange, ...]:
    if len(changes) != 1 or changes[0].settings is None:
        return changes
    (c,) = changes
    blank = tuple((k, ABSENT if v is ABSENT else VARIES) for k, v in c.settings or ())
    return (replace(c, settings=blank),)


def _merged_settings(members: list[Entry]) -> tuple[FieldChange, ...]:
    """A swapped class's own settings: a value all places share stays, one that differs is
    `…` (`in_channels=…`)."""
    first = members[0].changes
    if len(first) != 1 or first[0].settings is None:
        return first
    columns = zip(*(m.changes[0].settings or () for m in members), strict=True)
    settings = tuple(
        c[0] if all(repr(s) == repr(c[0]) for s in c) else (c[0][0], VARIES) for c in columns
    )
    return (replace(first[0], settings=settings),)


def _merged_sizes(members: list[Entry]) -> Size | None:
    sizes = [m.size for m in members]
    if any(s is None for s in sizes):
        return members[0].size
    nodes = sorted({n for s in sizes if s for n in s.nodes})
    params = sorted({n for s in sizes if s for n in s.params})
    return Size(tuple(nodes), tuple(params))
