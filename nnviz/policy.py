"""Which drifts matter: the ⚠️ lines of the PR page and the Action's `fail-on` policy.

A policy is a comma-separated list of terms; a drift fails the job when any term matches it:
`any` (every drift), `changed`, `added`, `removed`, `renamed` (a drift with at least one entry
of that status), `params>5%` (the parameter count moves by more than 5 % of the old count) or
`params>1000` (by more than 1,000 parameters), `checkpoint` (old checkpoints stop loading even
with the key map: shapes changed or new keys have no old weights; an unknown verdict fails too,
since what was asked cannot be checked). `none` lets no drift fail the job. Works on the diff
documents of a drift report alone (no torch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nnviz.diffing.changelog import changelog_of
from nnviz.diffing.checkpoint import of_document
from nnviz.driftreport import Drift, DriftReport, plural
from nnviz.errors import NNVizError, PolicyError

DEFAULT_WARN_PARAMS = 0.10
"""The page warns (⚠️) about a parameter-count change above 10 %."""
STATUSES = ("changed", "added", "removed", "renamed")
_PARAMS = re.compile(r"params>(\d+(?:\.\d+)?)(%?)")


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

    @classmethod
    def parse(cls, text: str) -> Policy:
        """`any`, `none`, or terms like `removed,changed,params>5%`; `PolicyError` otherwise."""
        terms = [t.strip() for t in text.split(",") if t.strip()]
        if not terms:
            raise PolicyError("empty fail-on policy (use any, none, or e.g. removed,params>5%)")
        statuses, every, share, count, checkpoint = set(), False, None, None, False
        for term in terms:
            match = _PARAMS.fullmatch(term.replace(" ", ""))
            if term == "any":
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
                    "params>N%, params>N or checkpoint)"
                )
        return cls(frozenset(statuses), every, share, count, checkpoint)

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


def warnings(drift: Drift, share: float = DEFAULT_WARN_PARAMS) -> list[str]:
    """The ⚠️ lines (plain text) a reviewer should not miss: modules removed, or the parameter
    count moved by more than `share` of the old count."""
    out = []
    removed = removed_modules(drift)
    if removed:
        shown = ", ".join(removed[:5]) + (", …" if len(removed) > 5 else "")
        out.append(f"removes {plural(len(removed), 'module')}: {shown}")
    old, new = drift.params
    if old and abs(new - old) / old > share:
        out.append(
            f"moves the parameter count by {(new - old) / old:+.1%} ({old:,} → {new:,}; "
            f"warned above {share:.0%})"
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
