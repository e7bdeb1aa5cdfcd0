"""Which key of an old state dict loads into which key of the new model: the pairing behind the
checkpoint verdict (`nnviz.diffing.checkpoint`), from two graphs' module trees and the diff's
module matching alone.

In turn, each pass on what the previous ones left:
1. keys of matched modules (renamed or moved, `nnviz.diffing.matching`): the same local name,
   else, within a matched pair, the one leftover key of a shape (`gamma` -> `weight`);
2. the same key on the other side, as `load_state_dict` itself pairs what nothing claimed;
3. by local name, shape and module class, then name and shape, as many old as new, in module
   order: a module the matching could not place still holds the same tensor (`_leftovers`);
4. under the nearest matched module holding each key, by shape and the likeness of names: a
   parameter moved into a new child module or out of one, at any depth (`_anchored`);
5. keys that paired by name but differ in shape re-pair along a chain of moved modules when the
   whole chain does (`_shifted`).
Scalars (`num_batches_tracked`) and `_extra_state` never pair by shape alone: they say nothing
about identity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from difflib import SequenceMatcher
from typing import Any

from nnviz.graph import Graph

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
    pairs |= _leftovers(old, new, [k for k in before if k not in pairs], set(after) - taken)
    homes = _homes(old), _homes(new)
    taken = set(pairs.values())
    olds, news = [k for k in before if k not in pairs], [k for k in after if k not in taken]
    pairs |= _anchored(homes, modules, (olds, news), (before, after))
    return _shifted(old, new, pairs, (before, after))


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
    old: Graph, new: Graph, olds: list[str], news: Any, widths: tuple[int, ...] = (3, 2)
) -> dict[str, str]:
    """Keys still unpaired, paired when as many old as new keys share their local name, shape
    and module class, in module order: a module the matching could not place (a LayerNorm like
    every block's, moved under a wrapper or into a Sequential; transformers 5's ViT attention,
    `query`/`key`/`value` renamed `q_proj`/`k_proj`/`v_proj`) still holds the same tensor. What
    is left then pairs the same way by local name and shape alone (a table moved into a module
    of its own: Swin's `relative_position_bias_table`)."""
    owners = _owners(old), _owners(new)
    left = olds, [k for k in owners[1] if k in news]
    pairs: dict[str, str] = {}
    for width in widths:  # (name, shape, class), then (name, shape)
        groups: dict[tuple[Any, ...], tuple[list[str], list[str]]] = {}
        for side, keys in enumerate(left):
            for key in keys:  # a scalar (num_batches_tracked) says nothing about identity
                if owners[side][key][1]:
                    groups.setdefault(owners[side][key][:width], ([], []))[side].append(key)
        for a, b in groups.values():
            if len(a) == len(b):
                pairs.update(zip(a, b, strict=True))
        left = (
            [k for k in left[0] if k not in pairs],
            [k for k in left[1] if k not in pairs.values()],
        )
    return pairs


def _anchored(
    homes: tuple[dict[str, str], dict[str, str]],
    modules: Mapping[str, str],
    left: tuple[list[str], list[str]],
    keys: tuple[Mapping[str, Shape], Mapping[str, Shape]],
) -> dict[str, str]:
    """Keys still unpaired, paired under the nearest matched module holding each (its anchor): a
    parameter or buffer moved into a new child module or out of one, at any depth, keeps its
    matched block and its shape (timm's PoolFormer `layer_scale_1` -> `layer_scale1.scale`).
    Under one anchor, as many old as new keys of a shape pair one to one, by the likeness of
    their names below the anchor, ties in module order."""
    targets = set(modules.values())
    groups: dict[tuple[str, Shape], tuple[list[str], list[str]]] = {}
    for side, matched in ((0, modules.keys()), (1, targets)):
        for key in left[side]:
            shape = keys[side][key]
            if not shape:  # scalars and `_extra_state` say nothing about identity
                continue
            anchor = _anchor(homes[side][key], matched)
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
            pairs[scoped(back[where], x)] = scoped(where, y)
    return pairs


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
    moved = _leftovers(old, new, pool[0], set(pool[1]), widths=(3,))
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
