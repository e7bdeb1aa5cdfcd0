"""Classify each line of an `nnviz diff` text report against two ground truths (groundtruth.py).

A line is **true** when the ground truth differs where it points, **noise** when it does not,
**attribute-only** when only a non-tensor fact differs (a module's plain attribute or config
field, an optional forward argument), **bookkeeping** when it states no change of its own
(totals, `… and N more`, headings). The rules, field by field, are in bench/README.md.
Nothing here imports nnviz or torch: it reads the report's text, as a reviewer would.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from reportlines import (
    RENAME,
    all_subjects,
    inside_parts,
    label_of,
    op_counts,
    parse,
    subjects,
    summary,
    values,
    walk,
)

KINDS = ("true", "noise", "attribute-only", "bookkeeping")
# Config/attribute keys that record where a model came from, not what it computes.
BOOKKEEPING_KEYS = frozenset(
    {"transformers_version", "_name_or_path", "name_or_path", "_commit_hash", "hf_hub_id", "url"}
)
_ALIASES = {"radd": "add", "iadd": "add", "rmul": "mul", "imul": "mul", "rsub": "sub"}
_ALIASES |= {"isub": "sub", "truediv": "div", "rtruediv": "div", "itruediv": "div"}


def base(op: str) -> str:
    """`torch.Tensor.__iadd__`, `operator.add`, `add:3` -> `add`."""
    name = op.split(":")[0].rsplit(".", 1)[-1].strip("_")
    return _ALIASES.get(name, name)


def _events(module: dict[str, Any] | None) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for call in (module or {}).get("calls", []):
        out.append(("call",))
        for kind, name, detail in call["events"]:
            out.append(
                (kind, name, detail) if kind == "module" else (kind, base(name), str(detail))
            )
    return out


@dataclass
class ModuleDelta:
    """What differs at one module path between the old and the new ground truth."""

    presence: str = ""  # "added" / "removed" / ""
    fields: set[str] = field(default_factory=set)  # class extra_repr params out events ops called
    changed_events: set[str] = field(default_factory=set)  # op base names and module paths
    attrs: set[str] = field(default_factory=set)  # dotted attribute keys (configs field by field)

    @property
    def tensor_level(self) -> bool:
        return bool(self.presence or self.fields)


def _attr_diff(old: Any, new: Any, prefix: str) -> set[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = {k for k in old.keys() | new.keys() if k not in BOOKKEEPING_KEYS}
        found = {k2 for k in keys for k2 in _attr_diff(old.get(k), new.get(k), f"{prefix}.{k}")}
        return found | ({prefix} if found else set())
    return set() if old == new else {prefix}


def _whole(text: str) -> str:
    """An extra_repr with its floats to 6 significant digits, whole ones written as ints:
    `Dropout(p=0)` (an int in a config) and `Dropout(p=0.0)` are the same module, and so are
    `p=0.10000000149011612` (a float32 from `torch.linspace(...).item()`) and `p=0.1`."""
    text = re.sub(r"\b\d+\.\d+(?:e[-+]?\d+)?", lambda m: f"{float(m[0]):.6g}", text)
    return re.sub(r"\b(\d+)\.0\b", r"\1", text)


def compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, ModuleDelta]:
    """Per module path, what differs (only paths with some difference)."""
    deltas: dict[str, ModuleDelta] = {}
    om, nm = old["modules"], new["modules"]
    for path in sorted(om.keys() | nm.keys()):
        a, b = om.get(path), nm.get(path)
        d = ModuleDelta()
        if a is None or b is None:
            d.presence = "added" if a is None else "removed"
        else:
            for key in ("class", "params"):
                if a[key] != b[key]:
                    d.fields.add(key)
            if _whole(a["extra_repr"]) != _whole(b["extra_repr"]):
                d.fields.add("extra_repr")
            if [c["out"] for c in a["calls"]] != [c["out"] for c in b["calls"]]:
                d.fields.add("out")
            if bool(a["calls"]) != bool(b["calls"]):
                d.fields.add("called")
            for k in a["attrs"].keys() | b["attrs"].keys():
                d.attrs |= _attr_diff(a["attrs"].get(k), b["attrs"].get(k), k)
        ea, eb = _events(a), _events(b)
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
            None, ea, eb, autojunk=False
        ).get_opcodes():
            if tag != "equal":
                d.changed_events |= {e[1] for e in ea[i1:i2] + eb[j1:j2] if len(e) > 1}
        if d.changed_events and a is not None and b is not None:
            d.fields.add("events")
            if [e[:2] for e in ea] != [e[:2] for e in eb]:
                d.fields.add("ops")  # not only shapes: another op or module call sequence
        if d.tensor_level or d.attrs:
            deltas[path] = d
    return deltas


@dataclass
class Truth:
    """Both ground truths of a pair and their differences, with lookups for the classifier."""

    old: dict[str, Any]
    new: dict[str, Any]
    deltas: dict[str, ModuleDelta] = field(init=False)

    def __post_init__(self) -> None:
        self.deltas = compare(self.old, self.new)
        self.paths = self.old["modules"].keys() | self.new["modules"].keys()
        self.inputs = set(self.old["inputs"]) ^ set(self.new["inputs"])
        self.sides = (self.old, self.new)

    def delta(self, path: str) -> ModuleDelta:
        return self.deltas.get(path, ModuleDelta())

    def locate(self, name: str) -> tuple[str, str | None]:
        """A report name -> (module path, None) or (enclosing module path, op base name)."""
        if name in ("(root)", ""):
            return "", None
        name = name.split("#")[0]  # `x.to#old`: a removed node whose id the new graph reuses
        head = name.split(":")[0]
        if head in self.paths:
            return head, None
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            scope = ".".join(parts[:cut])
            if scope in self.paths:
                return scope, base(".".join(parts[cut:]))
        return "", base(name)

    def exists(self, name: str) -> bool:
        """Whether a report name is a module of either side, an op directly in one, or an
        input/output; a grouped name like `blocks.{0..6}.{0..3}.aa` can also expand to paths
        that exist nowhere."""
        if name.startswith("input:") or name in ("output", "(root)", ""):
            return True
        path, op = self.locate(name)
        rest = name[len(path) :].lstrip(".")
        return op is None or ("." not in rest and not rest.isdigit())

    def ops(self, path: str) -> set[str]:
        """The base names of the tensor ops a module calls itself, on either side."""
        return {
            e[1] for side in self.sides for e in _events(side["modules"].get(path)) if e[0] == "op"
        }

    def changed_node(self, name: str) -> bool:
        """Whether a report node name points at something that differs: an added/removed module
        (or one inside such), a changed module call, an op among its scope's changed events."""
        if name in ("(none)", "") or name.startswith("input:"):
            return False
        path, op = self.locate(name)
        if op is not None:
            return op in self.delta(path).changed_events
        # a module call is an event of the module that calls it: its structural parent, or any
        # module above (HRNet's stage calls `fuse_layers[i][j]`, two containers down)
        ancestors = [".".join(path.split(".")[:i]) for i in range(0, path.count(".") + 2)]
        return any(path in self.delta(a).changed_events for a in ancestors[:-1]) or any(
            self.delta(a).presence for a in ancestors[1:]
        )

    def changed_below(self, path: str) -> set[str]:
        """The changed events of a module and of every module inside it."""
        inside = [d for p, d in self.deltas.items() if p == path or p.startswith(f"{path}.")]
        return (
            {e for d in inside for e in d.changed_events}
            if path
            else set().union(*(d.changed_events for d in self.deltas.values()))
        )

    def tensor_changes(self) -> list[str]:
        """Module paths whose tensor-level record differs (outermost added/removed only)."""
        out = []
        for path, d in self.deltas.items():
            parent = path.rpartition(".")[0] if path else None
            if d.presence and parent is not None and self.delta(parent).presence:
                continue
            if d.tensor_level:
                out.append(path)
        return out


def _worst(kinds: list[str]) -> str:
    for kind in ("noise", "attribute-only", "true"):
        if kind in kinds:
            return kind
    return "bookkeeping"


def classify(line: str, truth: Truth) -> tuple[str, str]:
    """(kind, why) for one change line of the text report (summaries: `classify_report`)."""
    parsed = parse(line)
    if parsed is None:
        return "bookkeeping", "states no change of its own"
    marker, members = parsed
    if marker == "→":
        return _classify_move(members[0][1], truth)
    real = [(name, detail) for name, detail in members if truth.exists(name)]
    if not real:
        return "noise", f"names no module or op scope of the ground truth ({members[0][0]})"
    verdicts = [_classify_one(marker, name, detail, truth) for name, detail in real]
    kind = _worst([k for k, _ in verdicts])
    return kind, next(why for k, why in verdicts if k == kind)


def follow_moves(truth: Truth, lines: list[str]) -> Truth:
    """The truth with the old side's modules renamed as the report's `→ A moved to B` lines say,
    where the ground truth agrees (the same class at A before and at B after, no module at B
    before): lines about a moved module are then judged against the module it was."""
    moves = []
    for line in lines:
        found = RENAME.match(line.strip()[2:]) if line.strip().startswith("→ ") else None
        if found is None or found["old_end"]:
            continue
        a, b = found["old"], found["new"]
        was, now = truth.old["modules"].get(a), truth.new["modules"].get(b)
        if was and now and was["class"] == now["class"] and b not in truth.old["modules"]:
            moves.append((a, b))

    def rename(path: str) -> str:
        for a, b in moves:
            if path == a or path.startswith(f"{a}."):
                return b + path[len(a) :]
        return path

    if not moves:
        return truth
    modules = {}
    for path, module in truth.old["modules"].items():
        calls = [
            {**call, "events": [_renamed(e, rename) for e in call["events"]]}
            for call in module["calls"]
        ]
        modules[rename(path)] = {**module, "calls": calls}
    return Truth({**truth.old, "modules": modules}, truth.new)


def _renamed(event: list[Any], rename: Any) -> list[Any]:
    kind, name, *rest = event
    return [kind, rename(name) if kind == "module" else name, *rest]


def classify_report(lines: list[str], truth: Truth) -> list[tuple[str, str]]:
    """(kind, why) per line. A `↳ inside:` line is judged part by part inside each module of its
    parent line; a line counting consequences (`↳ output shapes follow in N nodes`) names no
    node to check and takes its parent line's verdict. Lines about a module the report says
    moved are judged against where it was (`follow_moves`); the move itself, as it is."""
    out: list[tuple[str, str]] = []
    verdicts: dict[int, tuple[str, str]] = {}
    moved = follow_moves(truth, lines)
    for i, item in enumerate(walk(lines)):
        kind = summary(item.text)
        if item.text.strip().startswith("→ "):
            verdicts[i] = classify(item.text, truth)
        elif kind is None or item.parent is None or item.parent_index is None:
            verdicts[i] = classify(item.text, moved)
            if moved is not truth and verdicts[i][1].startswith("names no module"):
                verdicts[i] = classify(item.text, truth)  # a removed node under its old name
        elif kind == "inside":
            verdicts[i] = _classify_inside(item.text, subjects(item.parent), moved)
        else:
            parent_kind, _ = verdicts[item.parent_index]
            verdicts[i] = parent_kind, "counts consequences of the line above"
        out.append(verdicts[i])
    return out


def _classify_inside(line: str, owners: list[str], truth: Truth) -> tuple[str, str]:
    verdicts = []
    for owner in (o for o in owners if truth.exists(o)):
        path = truth.locate(owner)[0]
        for part in inside_parts(line):
            if part.kind.endswith("ops"):
                changed = truth.changed_below(path)
                hit = [n for n in part.names if base(n) in changed]
                verdicts.append(
                    ("true", f"{'/'.join(hit)} changed inside {path}")
                    if hit
                    else ("noise", f"{'/'.join(part.names)}: no op changed inside {path}")
                )
                continue
            for rel in part.names:
                d = truth.delta(f"{path}.{rel}")
                ok = d.presence if part.kind in "+-" else d.tensor_level
                why = f"{path}.{rel} {'differs' if ok else 'same'}"
                verdicts.append(("true" if ok else "noise", why))
    if not verdicts:
        return "noise", "an inside: line under no module of the ground truth"
    kind = _worst([k for k, _ in verdicts])
    return kind, next(why for k, why in verdicts if k == kind)


def missed(lines: list[str], truth: Truth) -> list[str]:
    """The modules with a change of their own in the ground truth (added/removed, class,
    extra_repr, parameters, op sequence; not output shapes that only follow) that no line points
    at (itself, something inside it, or an added/removed/moved ancestor)."""
    truth = follow_moves(truth, lines)
    located = {truth.locate(n)[0] for n in all_subjects(lines)}
    out = []
    causes = {"class", "extra_repr", "params", "ops", "called"}  # not shapes that only follow
    for path in truth.tensor_changes():
        if not (truth.delta(path).presence or truth.delta(path).fields & causes):
            continue
        inside = path == "" and "" in located
        inside = inside or any(p == path or p.startswith(f"{path}.") for p in located if path)
        # under an added/removed module, or inside a swapped one (its line sums up the inside)
        above = any(
            path.startswith(f"{p}.")
            and (truth.delta(p).presence or "class" in truth.delta(p).fields)
            for p in located
            if p
        )
        if not (inside or above):
            out.append(path)
    return out


def _classify_move(body: str, truth: Truth) -> tuple[str, str]:
    found = RENAME.match(body)
    if not found:
        return "noise", "unparsed move line"
    olds = [found["old"]]
    if found["old_end"]:
        start, end = found["old"].rpartition("."), found["old_end"].rpartition(".")
        olds = [f"{start[0]}.{i}".lstrip(".") for i in range(int(start[2]), int(end[2]) + 1)]
    for old in olds:
        if truth.delta(truth.locate(old)[0]).tensor_level:
            return "true", f"{old} differs in the ground truth"
    new = found["new"]
    if truth.delta(truth.locate(new)[0]).tensor_level:
        return "true", f"{new} differs in the ground truth"
    return "noise", f"{olds[0]} / {new}: same modules at both paths in the ground truth"


def _classify_one(marker: str, name: str, detail: str, truth: Truth) -> tuple[str, str]:
    if name.startswith("input:") or name == "output":
        return _classify_io(name, detail, truth)
    path, op = truth.locate(name)
    d = truth.delta(path)
    counted = op_counts(detail) if op is None else None
    if counted is not None:  # `ops +6 (contiguous ×2, …); −9 (…)`: the module's own ops
        hit = [n for n in counted if base(n) in d.changed_events]
        where = path or "(root)"
        if hit:
            return "true", f"{'/'.join(hit)} among the changed events of {where}"
        return "noise", f"{'/'.join(counted)}: none among the changed events of {where}"
    label = label_of(detail) if detail else ""
    if op is None and not label.startswith("input "):
        return _classify_module(marker, path, detail, d, truth)
    scope, what = (path, op) if op is not None else (path.rpartition(".")[0], path)
    changed = truth.delta(scope).changed_events
    if what in changed:
        return "true", f"{what} changed in the events of {scope or '(root)'}"
    if label.startswith("input "):
        for value in values(detail):
            if value.startswith("input:") and value[6:] in truth.inputs:
                return "attribute-only", f"new/removed optional input {value}"
            if truth.changed_node(value):
                return "true", f"producer {value} differs in the ground truth"
    if label == "output" and "[" in detail and truth.delta(scope).fields & {"out", "events"}:
        return "true", f"a tensor taken out of a container in {scope or '(root)'}, reshaped"
    if op is not None and op not in truth.ops(scope):
        return "noise", f"scalar plumbing: {op} is no tensor op of {scope or '(root)'}"
    return "noise", f"{what} unchanged in the events of {scope or '(root)'} ({label or marker})"


def _classify_module(
    marker: str, path: str, detail: str, d: ModuleDelta, truth: Truth
) -> tuple[str, str]:
    label = label_of(detail) if detail else ""
    where = path or "(root)"
    if marker in "+-":
        ok = d.presence == ("added" if marker == "+" else "removed") or "class" in d.fields
        return ("true", f"{where} {d.presence}") if ok else ("noise", f"{where} on both sides")
    checks = {"class": "class", "called": "called", "output": "out", "ops": "events"}
    if label in checks:
        hit = checks[label] in d.fields
        return ("true" if hit else "noise"), f"{where} {label} {'differs' if hit else 'same'}"
    params = {**truth.old["modules"].get(path, {}).get("params", {})}
    params |= truth.new["modules"].get(path, {}).get("params", {})
    if label in params and "[" in detail:  # `weight [64, 64] → [128, 64]`, not `bias True → …`
        hit = "params" in d.fields
        return ("true" if hit else "noise"), f"{where}.{label} shape {'differs' if hit else 'same'}"
    recorded = any(
        label.split(".")[0] in t["modules"].get(path, {}).get("attrs", {}) for t in truth.sides
    )
    own = d.fields & {"extra_repr", "params", "out"}  # what the module itself computes
    if recorded and label not in d.attrs:
        return "noise", f"{where} {label}: the same in the ground truth"
    if own:
        return "true", f"{where} {'/'.join(sorted(own))} differ"
    if recorded:
        return "attribute-only", f"{where} attribute {label} differs, its own tensors the same"
    return "noise", f"{where} {label or 'line'}: no difference in the ground truth"


def _classify_io(name: str, detail: str, truth: Truth) -> tuple[str, str]:
    if name.startswith("input:"):
        if name[6:] in truth.inputs:
            return "attribute-only", f"optional forward argument {name[6:]} added/removed"
        return "noise", f"{name}: same forward argument and example input"
    if detail.startswith("output "):
        hit = "out" in truth.delta("").fields
        return (
            "true" if hit else "noise"
        ), f"the model's output {'differs' if hit else 'is the same'}"
    for value in values(detail):
        if truth.changed_node(value):
            return "true", f"the output now comes from {value}, which differs"
    if "out" in truth.delta("").fields:  # transformers 4.46's KV cache tensors, 5's Cache object
        return "true", "the model's output tensors differ"
    return "noise", "the model's output is fed as before"
