"""Which drifts matter: the ⚠️ lines of the PR page and the Action's `fail-on` policy.

A policy is a comma-separated list of terms; a drift fails the job when any term matches it:
`any` (every drift), `changed`, `added`, `removed`, `renamed` (a drift with at least one entry
of that status), `params>5%` (the parameter count moves by more than 5 % of the old count),
`params>1000` (by more than 1,000 parameters), `checkpoint` (old checkpoints stop loading even
with the key map: shapes changed or new keys have no old weights; an unknown verdict fails too,
since what was asked cannot be checked), `macs>+5%` (compute grows by more than 5 %; `-5%`
shrinks, `5%` either way), `activations>+10%` (activation memory, likewise; a cost term on a
drift whose cost is unknown on a side fails it, saying so). `none` lets no drift fail the job.
Works on the diff documents of a drift report alone (no torch).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nnviz.costs import bytes_text, macs_text
from nnviz.diffing.changelog import changelog_of
from nnviz.diffing.checkpoint import of_document
from nnviz.diffing.cost import CostDiff, change
from nnviz.diffing.records import Changelog
from nnviz.driftreport import Drift, DriftReport, plural
from nnviz.errors import NNVizError, PolicyError

DEFAULT_WARN_PARAMS = 0.10
"""The page warns (⚠️) about a parameter-count change above 10 %."""
DEFAULT_WARN_MACS = 0.10
"""The page warns (⚠️) about a compute (MACs) change above 10 %."""
STATUSES = ("changed", "added", "removed", "renamed")
_PARAMS = re.compile(r"params>(\d+(?:\.\d+)?)(%?)")
_COST = re.compile(r"(macs|activations)>([+-]?)(\d+(?:\.\d+)?)%")


@dataclass(frozen=True)
class CostLimit:
    """`macs>+5%`: fail when `what` moves by more than `share` in `direction` (+1 up, -1 down,
    0 either way)."""

    what: str
    share: float
    direction: int

    def __str__(self) -> str:
        sign = {1: "+", -1: "-", 0: ""}[self.direction]
        return f"{self.what}>{sign}{self.share * 100:g}%"

    def reason(self, doc: Mapping[str, Any]) -> str | None:
        """Why the diff document breaks this limit; None when it does not."""
        cost = CostDiff.from_dict(doc.get("cost"))
        if cost is None or not cost.known:
            unknown = cost.unknown_line() if cost is not None else ""
            return f"{self.what} unknown ({unknown or 'no cost in the diff'}), limit {self}"
        old, new = (
            (cost.old.macs, cost.new.macs)
            if self.what == "macs"
            else (cost.old.activation_bytes, cost.new.activation_bytes)
        )
        moved = change(old, new)
        if moved is None or (self.direction and moved * self.direction <= 0):
            return None
        if abs(moved) <= self.share:
            return None
        text = macs_text if self.what == "macs" else bytes_text
        return f"{self.what} {moved:+.1%} ({text(old)} → {text(new)}; limit {self})"


@dataclass(frozen=True)
class Policy:
    """A parsed `fail-on` policy."""

    statuses: frozenset[str] = frozenset()
    every: bool = False
    params_share: float | None = None
    """Fail above this fraction of the old parameter count."""
    params_count: int | None = None
    """Fail above this many parameters, up or down."""
    checkpoint: bool = False
    """Fail when old checkpoints no longer load even through the key map (or cannot be told)."""
    cost: tuple[CostLimit, ...] = ()
    """Compute and activation limits (`macs>+5%`)."""

    @classmethod
    def parse(cls, text: str) -> Policy:
        """`any`, `none`, or terms like `removed,changed,params>5%`; `PolicyError` otherwise."""
        terms = [t.strip() for t in text.split(",") if t.strip()]
        if not terms:
            raise PolicyError("empty fail-on policy (use any, none, or e.g. removed,params>5%)")
        statuses, every, share, count, checkpoint = set(), False, None, None, False
        limits: list[CostLimit] = []
        for term in terms:
            match = _PARAMS.fullmatch(term.replace(" ", ""))
            cost = _COST.fullmatch(term.replace(" ", ""))
            if cost:
                direction = {"+": 1, "-": -1, "": 0}[cost[2]]
                limits.append(CostLimit(cost[1], float(cost[3]) / 100, direction))
            elif term == "any":
                every = True
            elif term == "checkpoint":
                checkpoint = True
            elif term == "none":
                continue
            elif term in STATUSES:
                statuses.add(term)
            elif match and match[2]:
                share = float(match[1]) / 100
            elif match:
                count = int(float(match[1]))
            else:
                raise PolicyError(
                    f"unknown fail-on term {term!r} (use any, none, {', '.join(STATUSES)}, "
                    "params>N%, params>N, checkpoint, macs>+N% or activations>+N%)"
                )
        return cls(frozenset(statuses), every, share, count, checkpoint, tuple(limits))

    @property
    def asks_cost(self) -> bool:
        """Whether the policy judges compute or activations (so the cost must be known)."""
        return bool(self.cost)

    def reasons(self, drift: Drift) -> list[str]:
        """Why `drift` fails under this policy (empty: it does not)."""
        return self.diff_reasons(drift.diff)

    def diff_reasons(self, diff: dict[str, Any]) -> list[str]:
        """Why a diff document fails under this policy (empty: it does not)."""
        log = changelog_of(diff)
        counts = dict(log.counts)
        out = [f"{counts[s]} {s}" for s in STATUSES if s in self.statuses and counts[s]]
        if self.checkpoint:
            out += checkpoint_reasons(diff)
        old, new = log.params
        delta = abs(new - old)
        if self.params_share is not None and old and delta / old > self.params_share:
            out.append(f"params {(new - old) / old:+.1%} (limit {self.params_share:.0%})")
        if self.params_count is not None and delta > self.params_count:
            out.append(f"params {new - old:+,} (limit {self.params_count:,})")
        out.extend(r for limit in self.cost if (r := limit.reason(diff)) is not None)
        if self.every and not out:
            out.append("drifted")
        return out


def checkpoint_reasons(diff: dict[str, Any]) -> list[str]:
    """Why old checkpoints stop loading even with the key map, per a diff document's verdict;
    an unknown (or absent) verdict is a reason too: the policy asked for what cannot be told."""
    try:
        loads = of_document(diff)
    except NNVizError as exc:
        return [str(exc)]
    if loads is None:
        return ["checkpoint verdict unknown (a diff from an nnviz without it): re-run the diff"]
    if loads.status == "unknown":
        return [f"checkpoint verdict unknown: {loads.reason}"]
    if not loads.mendable:
        return [f"old checkpoints break: {loads.why_no_map()}"]
    return []


def verdict(report: DriftReport, policy: Policy) -> list[str]:
    """One line per drift that fails under `policy`, then one per failure that is not a drift
    (missing or unreadable snapshots, unused files, other failing tests: no policy lets those
    pass); empty when the job may pass."""
    lines = []
    for drift in report.ranked():
        reasons = policy.reasons(drift)
        if reasons:
            lines.append(f"nnviz: {drift.nodeid} fails the policy: {', '.join(reasons)}")
    return lines + other_failures(report)


def other_failures(report: DriftReport) -> list[str]:
    """One line per failure that is not a drift (no policy lets those pass)."""
    s = report.summary
    named = {"missing": "missing snapshot", "failed": "unreadable snapshot"}
    named |= {"unused": "unused snapshot file", "other_failures": "other failing test"}
    return [
        f"nnviz: {getattr(s, key)} {noun}(s): the job fails whatever the policy"
        for key, noun in named.items()
        if getattr(s, key)
    ]


def warnings(
    drift: Drift,
    share: float = DEFAULT_WARN_PARAMS,
    macs_share: float = DEFAULT_WARN_MACS,
    log: Changelog | None = None,
) -> list[str]:
    """The ⚠️ lines (plain text) a reviewer should not miss: modules removed, the parameter
    count moved by more than `share` of the old count, compute by more than `macs_share`.
    `log`: the drift's changelog records when the caller has them already."""
    out = []
    removed = removed_modules(drift)
    if removed:
        shown = ", ".join(removed[:5]) + (", …" if len(removed) > 5 else "")
        out.append(f"removes {plural(len(removed), 'module')}: {shown}")
    old, new = (log if log is not None else drift.changelog()).params
    if old and abs(new - old) / old > share:
        out.append(
            f"moves the parameter count by {(new - old) / old:+.1%} ({old:,} → {new:,}; "
            f"warned above {share:.0%})"
        )
    cost = CostDiff.from_dict(drift.diff.get("cost"))
    moved = cost.macs_change if cost is not None else None
    if cost is not None and moved is not None and abs(moved) > macs_share:
        old_macs, new_macs = macs_text(cost.old.macs), macs_text(cost.new.macs)
        out.append(
            f"moves compute by {moved:+.1%} ({old_macs} → {new_macs}; warned above "
            f"{macs_share:.0%})"
        )
    return out


def removed_modules(drift: Drift) -> list[str]:
    """The outermost removed modules of a drift (a removed block is one name)."""
    nodes = drift.diff.get("nodes")
    entries = [n for n in nodes if isinstance(n, dict)] if isinstance(nodes, list) else []
    removed = [
        str(n["name"])
        for n in entries
        if n.get("status") == "removed" and n.get("kind") == "module" and n.get("path")
    ]
    gone = set(removed)
    return [m for m in removed if not any(m.startswith(p + ".") for p in gone if p != m)]
