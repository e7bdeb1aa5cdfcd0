"""One pytest session's snapshot bookkeeping: the options, each call's result, the xdist merge.

Every process (the single process, or each pytest-xdist worker) records what its tests did;
workers ship their records to the controller as one JSON payload, and the controller alone
ends the session (`pytest_nnviz.report`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydantic import JsonValue

from pytest_nnviz.engine import Status, UpdateMode
from pytest_nnviz.location import TestLocation, relative

JsonDoc = dict[str, JsonValue]
"""A JSON object as `json.loads` gives it (the diff document of a drift)."""


@dataclass(frozen=True)
class SourceRef:
    """A line of model code that defines changed modules (`what="defines"`) or calls changed
    ops (`"calls"`, `modules` then holds their node ids); `file` relative to the repository."""

    file: str
    line: int
    modules: list[str]
    what: str = "defines"


@dataclass(frozen=True)
class SnapshotResult:
    """What one `nnviz_snapshot(...)` call found; paths are POSIX, relative to the rootdir."""

    nodeid: str
    file: str
    line: int
    """1-based line of the `nnviz_snapshot(...)` call in `file`."""
    snapshot: str
    status: Status
    digest: str | None = None
    """sha256 of the stored snapshot compared with."""
    artifacts: dict[str, str] = field(default_factory=dict)
    """A drift's files by kind, relative to the artifacts folder (where report.json goes)."""
    sources: list[SourceRef] = field(default_factory=list)
    diff: JsonDoc | None = None
    """The `GraphDiff.to_dict()` document of a drift."""


@dataclass(frozen=True)
class Options:
    """The choices that shape a session (command line, ini file, environment)."""

    rootdir: Path
    artifacts_dir: Path
    repository: Path
    """The checkout the rootdir lives in (`$GITHUB_WORKSPACE`, the git root, else the rootdir):
    report.json records the rootdir relative to it, and model source lines must be inside it."""
    update: UpdateMode = "none"
    ignore: tuple[str, ...] = ()
    """Change fields no snapshot compares (ini `nnviz_ignore`), as `nnviz diff --ignore`."""
    strict: bool = False
    """Whether information (scalar plumbing, attribute-only changes) drifts too (ini
    `nnviz_strict`), as `nnviz diff --strict`."""
    inputs: str | None = None
    """Example inputs for every call that gives none (ini `nnviz_inputs`): shapes are asked."""
    tracer: str = "auto"
    """The tracer every call insists on unless it names one (ini `nnviz_tracer`)."""
    fail_on: str = "any"
    """Which drifts fail their test unless a call names its own (ini `nnviz_fail_on`): a
    `nnviz.policy` policy, as the Action's `fail-on`."""
    exportable: bool = False
    """Whether every call records exportability unless it says (ini `nnviz_exportable`)."""
    warn_unused: bool = False
    shard: bool = False
    """One shard of a split suite (`--nnviz-shard`, or pytest-split's `--splits`): unused
    snapshot files are only recorded for `nnviz report merge`, never failed on or deleted."""
    github: bool = True
    """Whether to annotate and summarise when running on GitHub Actions."""

    def relative(self, path: Path) -> str:
        """`path` relative to the rootdir, POSIX (as report.json stores paths)."""
        return relative(path, self.rootdir)


@dataclass
class SessionState:
    """Everything the plugin remembers during one session (kept in `config.stash`)."""

    options: Options
    results: list[SnapshotResult] = field(default_factory=list)
    tests: dict[str, TestLocation] = field(default_factory=dict)
    """Every collected test by node id, with where its snapshots live."""
    outcomes: dict[str, str] = field(default_factory=dict)
    """`passed`, `failed` or `skipped` per test that ran."""
    deselected: set[str] = field(default_factory=set)
    """Tests collected but deselected (-k, -m, --deselect, a split): a partial collection."""
    collect_errors: bool = False
    """Some test module failed to collect: its tests (and their snapshots) are unknown."""

    @property
    def partial(self) -> bool:
        """Some tests were deselected or failed to collect: unused files cannot be told apart."""
        return bool(self.deselected) or self.collect_errors

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
                "deselected": sorted(self.deselected),
                "collect_errors": self.collect_errors,
            },
            sort_keys=True,
        )

    def merge(self, payload: str) -> None:
        """Add one worker's records (every worker collects the same tests)."""
        doc = json.loads(payload)
        for record in doc["results"]:
            sources = [SourceRef(**s) for s in record.pop("sources")]
            self.results.append(SnapshotResult(**record, sources=sources))
        for nodeid, (folder, base) in doc["tests"].items():
            self.tests.setdefault(nodeid, TestLocation(nodeid, Path(folder), base))
        self.deselected.update(doc["deselected"])
        self.collect_errors = self.collect_errors or bool(doc["collect_errors"])
