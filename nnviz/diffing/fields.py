"""Field comparison and policy: which fields of a matched pair of modules or nodes differ, as
`Change`s, and what is done with them (`Policy`: `ignore` names dropped; between snapshots of
two argument formats, what only the format explains is information).

What defines the architecture: the op or module class, the module's hyperparameters and own
parameter shapes, the constant arguments, the incoming connections (each argument slot's source,
named through the matching) and, when both sides were traced with inputs, the output spec.
Weights, `Node.meta`, graph metadata and library versions never count; `ignore` drops more fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from nnviz.diffing.model import Change
from nnviz.diffing.ops import same_op
from nnviz.diffing.records import ABSENT
from nnviz.errors import NNVizError
from nnviz.graph import Graph, Module, Node
from nnviz.values import Value, format_value


def module_changes(a: Module, b: Module) -> dict[str, Change]:
    """Class, hyperparameter and own-parameter-shape differences of two module entries."""
    changes: dict[str, Change] = {}
    if (a.cls, a.hparams, a.parameters, a.ties) == (b.cls, b.hparams, b.parameters, b.ties):
        return changes
    own: list[tuple[str, Value]] = []  # settings only one of two classes has: said with it
    for key in _keys(a.hparams, b.hparams):
        old, new = a.hparams.get(key, ABSENT), b.hparams.get(key, ABSENT)
        if ABSENT in (old, new) and None in (old, new):
            continue  # a feature switched off by None, or not there at all: the same network
        if _same_float(old, new):
            continue  # 0.10000000149011612 (a float32 read back) is the 0.1 it stores
        if old != new and a.cls != b.cls and ABSENT in (old, new):
            own.append((key, new))
        elif old != new:
            changes[f"hparams.{key}"] = Change(old, new)
    if a.cls != b.cls:
        relation = _class_note(a, b)
        said = ", ".join(f"no {k}" if v is ABSENT else f"{k}={format_value(v)}" for k, v in own)
        note = "; ".join(p for p in (relation, said) if p) or None
        change = Change(a.cls, b.cls, note=note, relation=relation, settings=tuple(own))
        changes = {"class": change, **changes}
    for key in _keys(a.parameters, b.parameters):
        pa, pb = a.parameters.get(key), b.parameters.get(key)
        if pa != pb:
            changes[f"parameters.{key}"] = Change(
                ABSENT if pa is None else list(pa), ABSENT if pb is None else list(pb)
            )
    for key in _keys(a.ties, b.ties):
        if a.ties.get(key) != b.ties.get(key):
            changes[f"ties.{key}"] = Change(a.ties.get(key, ABSENT), b.ties.get(key, ABSENT))
    return changes


def _same_float(a: object, b: object) -> bool:
    """Two floats (not ints, not bools) equal to float32 precision."""
    if type(a) is not float or type(b) is not float or a == b:
        return False
    return abs(a - b) <= 1e-7 * max(abs(a), abs(b))


def _class_note(a: Module, b: Module) -> str | None:
    """How two classes at one path relate: `a subclass`, `its base class`, `same settings`."""
    relation = "a subclass" if a.cls in b.bases else "its base class" if b.cls in a.bases else None
    same = a.hparams == b.hparams and a.parameters == b.parameters
    parts = [p for p in (relation, "same settings" if same else None) if p]
    return "; ".join(parts) or None


def node_changes(a: Node, b: Node, specs: bool) -> dict[str, Change]:
    """Kind, op, constant-argument and (with `specs`) output-spec differences of two nodes."""
    changes: dict[str, Change] = {}
    specs = specs and not _same_tensors(a.spec, b.spec)
    if a.kind == b.kind and a.op == b.op and a.args == b.args and not specs:
        return changes
    spelling = "spelling" if same_op(a, b) else None  # `F.relu` for `x.relu()`: information
    if a.kind != b.kind:
        changes["kind"] = Change(a.kind, b.kind, info=spelling)
    if a.op != b.op and "module" not in (a.kind, b.kind):
        changes["op"] = Change(a.op, b.op, info=spelling)
    for key in _keys(a.args, b.args):
        old, new = a.args.get(key, ABSENT), b.args.get(key, ABSENT)
        if old != new and _items(old) != _items(new):
            changes[f"args.{key}"] = Change(old, new)
    if specs:
        changes["spec"] = Change(a.spec, b.spec)
    return changes


def _items(value: Value) -> Value:
    """A constant with every list and tuple as a list of its items: a call takes `[32, 64]` and
    `(32, 64)` alike (an older snapshot, or a callee without a known signature, may record
    either)."""
    if isinstance(value, list):
        return [_items(v) for v in value]
    if isinstance(value, dict) and len(value) == 1 and "$tuple" in value:
        return [_items(v) for v in value["$tuple"]]
    return value


def _same_tensors(a: Value, b: Value) -> bool:
    """Whether two output specs hold the same tensors in the same order: what else an output
    carries (a cache object's repr, the keys a library renamed) is not the tensor-level graph.
    Specs without tensors (scalars) compare whole."""
    ta, tb = _tensors(a), _tensors(b)
    return ta == tb if ta or tb else bool(a == b)


def _tensors(value: Value) -> list[Value]:
    if isinstance(value, list):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict) and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "$tensor":
            return [inner]
        if tag == "$tuple":
            return _tensors(inner)
        if tag == "$dict":
            return [t for _, v in inner for t in _tensors(v)]
    return []


def _keys(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Both sides' keys in one order whatever the source (snapshots store keys sorted)."""
    return sorted({*a, *b}, key=lambda k: (not k.isdecimal(), int(k) if k.isdecimal() else 0, k))


def ignored(key: str, ignore: tuple[str, ...]) -> bool:
    """Whether change field `key` is dropped by one of the `ignore` names."""
    return any(key == f or key.startswith(f + ".") or key.endswith("." + f) for f in ignore)


FIELDS = ("class", "kind", "op", "spec", "called", "hparams", "parameters", "args", "inputs")
"""The change fields `ignore` may name; the last four hold keys (`hparams.eps`)."""


def check_ignore(ignore: tuple[str, ...], old: Graph, new: Graph) -> None:
    """Refuse an `ignore` name that can match no change: not a field, not `field.key` of a keyed
    field, and not a key (`eps`, or a dotted tail like `0.1`) found in either graph."""
    keys: set[str] = set()
    for f in ignore:
        if f in FIELDS or ("." in f and f.partition(".")[0] in FIELDS[-4:]):
            continue
        if not keys:
            keys = _change_keys(old) | _change_keys(new)
        if not any(k.endswith("." + f) for k in keys):
            raise NNVizError(
                f"unknown ignore field {f!r}: use one of {', '.join(FIELDS)}, a key below one "
                "(hparams.eps) or a key the models have (eps)"
            )


def _change_keys(graph: Graph) -> set[str]:
    keys = {f"hparams.{k}" for m in graph.modules.values() for k in m.hparams}
    keys |= {f"parameters.{k}" for m in graph.modules.values() for k in m.parameters}
    keys |= {f"args.{k}" for n in graph.nodes for k in n.args}
    keys |= {f"inputs.{s}" for e in graph.edges for s in e.slots}
    return keys


def input_changes(a: dict[str, str], b: dict[str, str]) -> dict[str, Change]:
    """Argument slots whose (renamed) source differs between the two sides."""
    keys = sorted({*a, *b}, key=lambda s: (len(s.split(".")[0]), s))
    return {
        f"inputs.{k}": Change(a.get(k, ABSENT), b.get(k, ABSENT))
        for k in keys
        if a.get(k) != b.get(k)
    }


NAMED_ARGUMENTS = 3
"""The first snapshot format that names call arguments by the callee's parameters; older ones
(`meta.migrated_from` 1 or 2) record them by position (`"0"`, `"1"`) and keywords as written."""


def positional_format(graph: Graph) -> bool:
    """Whether `graph` was read from a snapshot that records call arguments by position."""
    version = graph.meta.get("migrated_from")
    return isinstance(version, int) and version < NAMED_ARGUMENTS


def across_formats(
    changes: dict[str, Change],
    a: Node,
    b: Node,
    a_inputs: Mapping[str, str],
    b_inputs: Mapping[str, str],
) -> None:
    """A pair of calls from snapshots that record arguments differently (by position, by
    parameter name): only torch's signatures could translate one into the other, and the JSON
    path has none. Input slots that differ only by name (the same sources) are no change;
    constant arguments that differ only by name (the same values) are no change; any other
    argument difference is information (`format`), never drift: it cannot be told apart from a
    renamed slot or a default left out. A rewired input (another source) stays drift."""
    inputs = [k for k in changes if k.startswith("inputs.")]
    if inputs and sorted(a_inputs.values()) == sorted(b_inputs.values()):
        for key in inputs:
            del changes[key]
    arguments = [k for k in changes if k.startswith("args.")]
    if arguments and _values(a.args) == _values(b.args):
        for key in arguments:
            del changes[key]
    for key in arguments:
        if key in changes:
            changes[key] = replace(changes[key], info="format")


def _values(args: Mapping[str, Value]) -> list[str]:
    return sorted(json.dumps(v, sort_keys=True) for v in args.values())


@dataclass(frozen=True)
class Policy:
    """What becomes of a pair's field changes once they are found: between snapshots that record
    call arguments differently (`positional_format`), `across_formats` applies, and tied
    parameters (recorded since format 3) are information (`format`); then every change an
    `ignore` name matches is dropped."""

    ignore: tuple[str, ...]
    formats_differ: bool

    @classmethod
    def of(cls, old: Graph, new: Graph, ignore: tuple[str, ...]) -> Policy:
        return cls(ignore, positional_format(old) != positional_format(new))

    def apply(
        self,
        changes: dict[str, Change],
        a: Node | None,
        b: Node | None,
        a_inputs: Mapping[str, str],
        b_inputs: Mapping[str, str],
    ) -> None:
        """Apply the policy to `changes`, the changes of nodes `a` and `b` (None where a side has
        no node), whose slots read `a_inputs` and `b_inputs`."""
        if self.formats_differ and a is not None and b is not None:
            across_formats(changes, a, b, a_inputs, b_inputs)
        if self.formats_differ:  # format 3 started recording tied parameters
            for key in [k for k in changes if k.startswith("ties.")]:
                changes[key] = replace(changes[key], info="format")
        for key in [k for k in changes if ignored(k, self.ignore)]:
            del changes[key]
