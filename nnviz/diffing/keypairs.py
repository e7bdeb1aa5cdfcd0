"""Which key of an old state dict loads into which key of the new model: the pairing behind the
checkpoint verdict (`nnviz.diffing.checkpoint`), from two graphs' module trees and the diff's
module matching alone.

In turn, each pass on what the previous ones left:
1. keys of matched modules (renamed or moved, `nnviz.diffing.matching`): the same local name,
   else, within a matched pair, the one leftover key of a shape (`gamma` -> `weight`);
2. the same key on the other side, as `load_state_dict` itself pairs what nothing claimed;
3. by local name, shape and module kind, then name and shape, as many old as new, in module
   order: a module the matching could not place still holds the same tensor (`_leftovers`);
4. under the nearest matched module holding each key, by shape and the likeness of names: a
   parameter moved into a new child module or out of one, at any depth (`_anchored`);
5. keys that paired by name but differ in shape re-pair along a chain of moved modules when the
   whole chain does (`_shifted`).
Passes 3 and 4 stay within the matching: a key pairs only with a key at the same place (its
nearest matched module, or that module's counterpart: `_Places`; an unmatched module whose
children all matched into one new module counts as matched to it: `_implied`), so a layer
removed in one block never lends its tensors to a layer added in another, nor a matched layer
its bias to a new one beside it. Two layers (modules without children) are one renamed layer
only when alike as the matching compares them (class and hyperparameters): a layer replaced by
another kind of the same shapes is a removal and an addition. And a layer's tensors never
split: an old layer whose keys would go to two new modules, or a new layer filled from two old
ones, keeps only the pairs of passes 1 and 2 (`_whole`). Scalars (`num_batches_tracked`) and
`_extra_state` never pair by shape alone: they say nothing about identity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from difflib import SequenceMatcher
from typing import Any

from nnviz.diffing.sides import canonical
from nnviz.graph import Graph, parent_path

Shape = tuple[int, ...] | None


def pair(old: Graph, new: Graph, modules: Mapping[str, str]) -> dict[str, str]:
    """Old key -> the new key it loads into (any shape), for every key some pass pairs, given
    the matched module paths (old path -> new path)."""
    before, after = _shapes(old), _shapes(new)
    pairs = _pairs(old, new, modules, after)
    taken = set(pairs.values())
    for key in before:  # what load_state_dict does with a key nothing else claimed: its name
        if key not in pairs and key in after and key not in taken:
            pairs[key] = key
            taken.add(key)
    kept = dict(pairs)
    if len(kept) == len(before) == len(after):
        return _shifted(old, new, kept, (before, after))  # every key placed: most diffs
    homes = _homes(old), _homes(new)
    places = _Places(old, new, {**modules, **_implied(old, new, modules)}, homes)
    pairs |= _leftovers(old, new, [k for k in before if k not in pairs], set(after) - taken, places)
    taken = set(pairs.values())
    olds, news = [k for k in before if k not in pairs], [k for k in after if k not in taken]
    pairs |= _anchored(places, places.modules, (olds, news), (before, after))
    pairs = _whole(pairs, kept, places)
    return _shifted(old, new, pairs, (before, after))


def _implied(old: Graph, new: Graph, modules: Mapping[str, str]) -> dict[str, str]:
    """Unmatched old modules whose children are all matched, into the children of one unmatched
    new module: that module, by the matching of its children (a block whose class was renamed,
    which the matching leaves unpaired: timm 1.0's LeViT `AttentionSubsample` ->
    `AttentionDownsample`, whose own `attention_biases` is the old one's)."""
    taken = set(modules.values())
    found: dict[str, str] = {}
    for path in old.modules:
        children = old.children(path) if path not in modules else ()
        if not children or any(child.path not in modules for child in children):
            continue
        parents = {parent_path(modules[child.path]) for child in children}
        target = parents.pop() if len(parents) == 1 else None
        if target is not None and target not in taken:
            found[path] = target
            taken.add(target)
    return found


class _Places:
    """Where each key lives as the matching sees it: its place (the new path of its module's
    nearest matched ancestor-or-self), and whether its module is a layer (no children) with
    its kind (class and hyperparameters)."""

    def __init__(
        self,
        old: Graph,
        new: Graph,
        modules: Mapping[str, str],
        homes: tuple[dict[str, str], dict[str, str]],
    ) -> None:
        self.graphs, self.modules, self.homes = (old, new), modules, homes
        self.matched = (modules.keys(), set(modules.values()))
        self._cache: tuple[dict[str, Any], dict[str, Any]] = ({}, {})

    def place(self, side: int, key: str) -> str | None:
        """The new path of the nearest matched module holding `key` (None: none is)."""
        anchor = _anchor(self.homes[side][key], self.matched[side])
        return self.modules[anchor] if side == 0 and anchor is not None else anchor

    def kind(self, side: int, key: str) -> tuple[bool, str]:
        """Whether `key`'s module is a layer (no children), and its kind: class, and for a
        layer its hyperparameters too."""
        path = self.homes[side][key]
        found = self._cache[side].get(path)
        if found is None:
            graph = self.graphs[side]
            module = graph.modules[path]
            leaf = not graph.children(path)
            text = canonical([module.class_name, dict(module.hparams) if leaf else None])
            found = self._cache[side][path] = (leaf, text)
        return found

    def alike(self, old: str, new: str) -> bool:
        """Whether old key `old` and new key `new` may be one tensor: not two layers of other
        kinds (a layer replaced by another of the same shapes)."""
        (leaf_a, kind_a), (leaf_b, kind_b) = self.kind(0, old), self.kind(1, new)
        return not (leaf_a and leaf_b) or kind_a == kind_b


def _shapes(graph: Graph) -> dict[str, Shape]:
    """Every state-dict key of `graph` and its shape, in module order."""
    return {
        scoped(path, name): shape
        for path, module in graph.modules.items()
        for name, shape in module.state_keys.items()
    }


def _pairs(
    old: Graph, new: Graph, modules: Mapping[str, str], after: Mapping[str, Shape]
) -> dict[str, str]:
    """Old key -> new key through the matched modules: the same local name, else, within a
    matched pair, the one leftover key of a shape on both sides."""
    pairs: dict[str, str] = {}
    for path, module in old.modules.items():
        target = modules.get(path)
        if target is None or target not in new.modules:
            continue
        mine, theirs = module.state_keys, new.modules[target].state_keys
        for name in mine:
            if name in theirs:
                pairs[scoped(path, name)] = scoped(target, name)
        left = [n for n in mine if n not in theirs], [n for n in theirs if n not in mine]
        for shape in {mine[n] for n in left[0]}:
            olds = [n for n in left[0] if mine[n] == shape]
            news = [n for n in left[1] if theirs[n] == shape]
            if len(olds) == len(news) == 1 and shape is not None:
                pairs[scoped(path, olds[0])] = scoped(target, news[0])
    return {o: n for o, n in pairs.items() if n in after}


def _leftovers(
    old: Graph,
    new: Graph,
    olds: list[str],
    news: Any,
    places: _Places | None,
    widths: tuple[int, ...] = (3, 2),
) -> dict[str, str]:
    """Keys still unpaired, paired when as many old as new keys share their place, local name,
    shape and module class (a layer's hyperparameters too), in module order: a module the
    matching could not place (a LayerNorm like every block's, moved under a wrapper or into a
    Sequential; transformers 5's ViT attention, `query`/`key`/`value` renamed
    `q_proj`/`k_proj`/`v_proj`) still holds the same tensor. What is left then pairs the same
    way by place, local name and shape alone, unless both are layers (a table moved into a
    module of its own: Swin's `relative_position_bias_table`). Without `places`, anywhere."""
    owners = _owners(old), _owners(new)
    left = olds, [k for k in owners[1] if k in news]
    pairs: dict[str, str] = {}
    for width in widths:  # (name, shape, class), then (name, shape)
        groups: dict[tuple[Any, ...], tuple[list[str], list[str]]] = {}
        for side, keys in enumerate(left):
            for key in keys:  # a scalar (num_batches_tracked) says nothing about identity
                if not owners[side][key][1]:
                    continue
                group = owners[side][key][:width]
                if places is not None:
                    kind = places.kind(side, key)[1] if width == 3 else ""
                    group = (places.place(side, key), kind, *group)
                groups.setdefault(group, ([], []))[side].append(key)
        for a, b in groups.values():
            if len(a) == len(b) and (width == 3 or places is None or all(map(places.alike, a, b))):
                pairs.update(zip(a, b, strict=True))
        left = (
            [k for k in left[0] if k not in pairs],
            [k for k in left[1] if k not in pairs.values()],
        )
    return pairs


def _anchored(
    places: _Places,
    modules: Mapping[str, str],
    left: tuple[list[str], list[str]],
    keys: tuple[Mapping[str, Shape], Mapping[str, Shape]],
) -> dict[str, str]:
    """Keys still unpaired, paired under the nearest matched module holding each (its anchor): a
    parameter or buffer moved into a new child module or out of one, at any depth, keeps its
    matched block and its shape (timm's PoolFormer `layer_scale_1` -> `layer_scale1.scale`).
    Under one anchor, as many old as new keys of a shape pair one to one, by the likeness of
    their names below the anchor, ties in module order; never two layers of other kinds."""
    groups: dict[tuple[str, Shape], tuple[list[str], list[str]]] = {}
    for side, matched in enumerate(places.matched):
        for key in left[side]:
            shape = keys[side][key]
            if not shape:  # scalars and `_extra_state` say nothing about identity
                continue
            anchor = _anchor(places.homes[side][key], matched)
            if anchor is None:
                continue
            where = modules[anchor] if side == 0 else anchor
            below = key[len(anchor) + 1 :] if anchor else key
            groups.setdefault((where, shape), ([], []))[side].append(below)
    pairs: dict[str, str] = {}
    back = {target: path for path, target in modules.items()}
    for (where, _), (a, b) in groups.items():
        if len(a) != len(b):
            continue
        for x, y in _by_likeness(a, b):
            o, n = scoped(back[where], x), scoped(where, y)
            if places.alike(o, n):
                pairs[o] = n
    return pairs


def _whole(pairs: dict[str, str], kept: Mapping[str, str], places: _Places) -> dict[str, str]:
    """`pairs` without a layer's tensors split: an old layer (a module without children) whose
    keys pair into two new modules, or a new layer filled from two old modules, keeps only the
    pairs made through the matching or by name (`kept`): its weight is not one module's and
    its bias another's."""
    homes = places.homes
    into: dict[str, set[str]] = {}
    out_of: dict[str, set[str]] = {}
    for o, n in pairs.items():
        into.setdefault(homes[0][o], set()).add(homes[1][n])
        out_of.setdefault(homes[1][n], set()).add(homes[0][o])
    torn = {homes[0][o] for o in pairs if len(into[homes[0][o]]) > 1 and places.kind(0, o)[0]}
    torn_new = {
        homes[1][n] for n in pairs.values() if len(out_of[homes[1][n]]) > 1 and places.kind(1, n)[0]
    }
    if not torn and not torn_new:
        return pairs
    return {
        o: n
        for o, n in pairs.items()
        if o in kept or (homes[0][o] not in torn and homes[1][n] not in torn_new)
    }


def _anchor(path: str, matched: Any) -> str | None:
    """`path` or its nearest ancestor among `matched` (the root when it is matched)."""
    while path not in matched:
        if not path:
            return None
        path = path.rpartition(".")[0]
    return path


def _by_likeness(olds: list[str], news: list[str]) -> list[tuple[str, str]]:
    """Old and new names paired one to one, the most alike first (`layer_scale_1` with
    `layer_scale1.scale`, not `layer_scale2.scale`), ties in order."""
    plain = [re.sub(r"[^0-9a-z]", "", n.lower()) for n in news]
    ranked = sorted(
        (-SequenceMatcher(None, re.sub(r"[^0-9a-z]", "", o.lower()), p).ratio(), i, j)
        for i, o in enumerate(olds)
        for j, p in enumerate(plain)
    )
    done: tuple[set[int], set[int]] = set(), set()
    found = []
    for _, i, j in ranked:
        if i not in done[0] and j not in done[1]:
            done[0].add(i)
            done[1].add(j)
            found.append((olds[i], news[j]))
    return found


def _shifted(
    old: Graph,
    new: Graph,
    pairs: dict[str, str],
    keys: tuple[Mapping[str, Shape], Mapping[str, Shape]],
) -> dict[str, str]:
    """`pairs` with keys paired by name but of other shapes re-paired, where each finds an
    unpaired key of its shape, local name and module class and every key of the chain does: a
    module moved one place along a chain of blocks (timm's PiT: each stage's pooling moved to
    the start of the next, `transformers.0.pool` -> `transformers.1.pool`). A chain with an
    end left over (layers widened one after another) keeps its shape mismatches."""
    before, after = keys
    wrong = {o: n for o, n in pairs.items() if before[o] != after[n]}
    if not wrong:
        return pairs
    taken = set(pairs.values())
    pool = (
        [k for k in before if k in wrong or k not in pairs],
        [k for k in after if k in wrong.values() or k not in taken],
    )
    moved = _leftovers(old, new, pool[0], set(pool[1]), None, widths=(3,))
    links: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for o, n in (*wrong.items(), *moved.items()):
        links.setdefault(("n", n), set()).add(("o", o))
        links.setdefault(("o", o), set()).add(("n", n))
    found = dict(pairs)
    seen: set[tuple[str, str]] = set()
    for start in [("o", o) for o in wrong]:
        if start in seen:
            continue
        chain, todo = set(), [start]
        while todo:
            item = todo.pop()
            if item not in chain:
                chain.add(item)
                todo.extend(links.get(item, ()))
        seen |= chain
        olds = {k for side, k in chain if side == "o"}
        news = {k for side, k in chain if side == "n"}
        if all(o in moved for o in olds & wrong.keys()) and all(
            n in moved.values() for n in news & set(wrong.values())
        ):
            for o in olds & wrong.keys():
                del found[o]
            found.update((o, moved[o]) for o in olds if o in moved)
    return found


def _homes(graph: Graph) -> dict[str, str]:
    """Each key's module path."""
    return {
        scoped(path, name): path
        for path, module in graph.modules.items()
        for name in module.state_keys
    }


def _owners(graph: Graph) -> dict[str, tuple[Any, ...]]:
    """Each key's (local name, shape, module class name)."""
    return {
        scoped(path, name): (name, shape, module.class_name)
        for path, module in graph.modules.items()
        for name, shape in module.state_keys.items()
    }


def scoped(path: str, name: str) -> str:
    """A state-dict key: `path.name`, or `name` at the root."""
    return f"{path}.{name}" if path else name
