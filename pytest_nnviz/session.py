"""One pytest session's snapshot bookkeeping: results, xdist merge, unused files, the summary.

Every process (the single process, or each pytest-xdist worker) records what its tests did;
workers ship their records to the controller as one JSON payload, and the controller alone
decides about unused snapshots, the summary line and the session report. Stdlib only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_nnviz.location import SNAPSHOT_DIR, SUFFIX, TestLocation

COUNTS = ("passed", "drifted", "written", "missing", "failed", "unused")
"""The summary's counters, in the order the summary line and report.json list them."""


@dataclass(frozen=True)
class SnapshotResult:
    """What one `nnviz_snapshot(...)` call found; paths are POSIX, relative to the rootdir."""

    nodeid: str
    file: str
    line: int
    """1-based line of the `nnviz_snapshot(...)` call in `file`."""
    snapshot: str
    status: str
    """One of `pytest_nnviz.check.Status`."""
    artifacts: dict[str, str | None] = field(default_factory=dict)
    """`pdf`, `svg`, `html`, `snapshot` for a drift."""
    diff: dict[str, Any] | None = None
    """The `GraphDiff.to_json()` document of a drift."""


@dataclass(frozen=True)
class Options:
    """The command-line choices that shape a session."""

    rootdir: Path
    artifacts_dir: Path
    update: bool = False
    warn_unused: bool = False
    github: bool = True
    """Whether to annotate and summarise when running on GitHub Actions."""


@dataclass
class SessionState:
    """Everything the plugin remembers during one session (kept in `config.stash`)."""

    options: Options
    results: list[SnapshotResult] = field(default_factory=list)
    tests: dict[str, TestLocation] = field(default_factory=dict)
    """Every collected test by node id, with where its snapshots live."""
    outcomes: dict[str, str] = field(default_factory=dict)
    """`passed`, `failed` or `skipped` per test that ran."""
    partial: bool = False
    """Some tests were deselected or failed to collect: unused files cannot be told apart."""
    unused: list[Path] = field(default_factory=list)

    # --- recording ------------------------------------------------------------------------

    def record_outcome(self, nodeid: str, when: str, outcome: str) -> None:
        """Fold one test report phase into the test's outcome (any failure or skip wins)."""
        if outcome != "passed":
            self.outcomes[nodeid] = outcome
        elif when == "call":
            self.outcomes.setdefault(nodeid, "passed")

    # --- pytest-xdist -----------------------------------------------------------------------

    def payload(self) -> str:
        """This worker's records, as the JSON text it sends to the controller."""
        return json.dumps(
            {
                "results": [asdict(r) for r in self.results],
                "tests": {k: [str(t.folder), t.base] for k, t in sorted(self.tests.items())},
                "partial": self.partial,
            },
            sort_keys=True,
        )

    def merge(self, payload: str) -> None:
        """Add one worker's records (every worker collects the same tests)."""
        doc = json.loads(payload)
        self.results.extend(SnapshotResult(**r) for r in doc["results"])
        for nodeid, (folder, base) in doc["tests"].items():
            self.tests.setdefault(nodeid, TestLocation(nodeid, Path(folder), base))
        self.partial = self.partial or bool(doc["partial"])

    # --- the session's verdict ----------------------------------------------------------------

    def find_unused(self) -> list[Path]:
        """Snapshot files no test used, in the folders of the collected test modules.

        A file whose test still exists counts only when that test passed (a failed or skipped
        test may simply not have reached its `nnviz_snapshot` call); a file no test claims
        (the test was renamed or removed) always counts. Sorted, deterministic.
        """
        used = {r.snapshot for r in self.results}
        owners: dict[Path, list[TestLocation]] = {}
        for test in self.tests.values():
            owners.setdefault(test.folder, []).append(test)
        unused = []
        for folder in sorted(owners):
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob(f"*{SUFFIX}")):
                if self.relative(path) in used or not path.is_file():
                    continue
                claimed = [t for t in owners[folder] if t.owns(path.name)]
                if all(self.outcomes.get(t.nodeid) == "passed" for t in claimed):
                    unused.append(path)
        return unused

    def counts(self) -> dict[str, int]:
        """The summary counters (see `COUNTS`)."""
        counts = dict.fromkeys(COUNTS, 0)
        for result in self.results:
            counts[result.status] += 1
        counts["unused"] = len(self.unused)
        return counts

    def relative(self, path: Path) -> str:
        """`path` relative to the rootdir, POSIX (falls back to the absolute path)."""
        try:
            return path.relative_to(self.options.rootdir).as_posix()
        except ValueError:
            return path.as_posix()


def summary_line(counts: dict[str, int], *, deleted: bool = False) -> str:
    """`nnviz: 12 snapshots passed, 1 drifted, 2 written, 1 unused` (zero counters left out)."""
    passed = counts["passed"]
    parts = [f"{passed} snapshot{'' if passed == 1 else 's'} passed"]
    for key in COUNTS[1:]:
        if counts[key]:
            label = "unused (deleted)" if key == "unused" and deleted else key
            parts.append(f"{counts[key]} {label}")
    return "nnviz: " + ", ".join(parts)


def delete_unused(paths: list[Path]) -> None:
    """Remove unused snapshot files, then any snapshot folder left empty."""
    folders = set()
    for path in paths:
        path.unlink(missing_ok=True)
        folders.add(path.parent)
    for folder in sorted(folders):
        for candidate in (folder, folder.parent):
            # Only the plugin's own folders, and only when nothing else is left in them.
            ours = SNAPSHOT_DIR in (candidate.name, candidate.parent.name)
            if ours and candidate.is_dir() and not any(candidate.iterdir()):
                candidate.rmdir()
