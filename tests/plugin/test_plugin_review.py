"""The review loop end to end: drifts become pending changes that `nnviz review` (on a real
pseudo-terminal) and `nnviz accept` (also on a copied CI artifact) apply or drop one by one;
update modes; unused snapshots of a deleted test module."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import run, run_nnviz

import nnviz
from nnviz.driftreport import DriftReport

TESTS = """
import torch.nn as nn


def test_a(nnviz_snapshot):
    nnviz_snapshot(nn.Sequential(nn.Linear(4, 8), nn.ReLU()))


def test_b(nnviz_snapshot):
    nnviz_snapshot(nn.Sequential(nn.Linear(4, 2), nn.Tanh()))
"""
DRIFTED = TESTS.replace("nn.Linear(4, 8)", "nn.Linear(4, 16)").replace("nn.Tanh()", "nn.ReLU()")
SNAPS = "__nnviz_snapshots__/test_rv"


@pytest.fixture
def drifted(pytester: pytest.Pytester) -> Path:
    """Two stored snapshots, then both models changed and the run that found two drifts."""
    pytester.makepyfile(test_rv=TESTS)
    run(pytester, "--nnviz-update").assert_outcomes(passed=2)
    pytester.makepyfile(test_rv=DRIFTED)
    result = run(pytester)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["review the pending changes with: nnviz review .nnviz-artifacts"])
    return pytester.path


def on_a_terminal(cwd: Path, args: list[str], keys: list[tuple[str, str]]) -> tuple[int, str]:
    """Run `nnviz ARGS` on a pseudo-terminal; after each expected text appears, type its key."""
    leader, follower = os.openpty()
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nnviz", *args],
        cwd=cwd,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    seen = ""
    pending = list(keys)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 4096).decode("utf-8", "replace")
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        # Type a key only once its prompt is shown: the terminal drops input typed earlier.
        if pending and seen.count("[a accept") > len(keys) - len(pending):
            expected, key = pending[0]
            if expected in seen:
                os.write(leader, key.encode())
                pending.pop(0)
        if proc.poll() is not None and not ready:
            break
    os.close(leader)
    return proc.wait(timeout=60), seen


def test_review_accepts_one_and_rejects_the_other_on_a_terminal(drifted: Path) -> None:
    a, b = drifted / f"{SNAPS}/test_a.json", drifted / f"{SNAPS}/test_b.json"
    pending_a = drifted / ".nnviz-artifacts/test_rv/test_a.new.json"
    pending_b = drifted / ".nnviz-artifacts/test_rv/test_b.new.json"
    new_a, old_b = pending_a.read_bytes(), b.read_bytes()

    # Without a terminal: each pending change and the exact command; nothing changes.
    listing = run_nnviz("review", cwd=drifted)
    assert listing.returncode == 0, listing.stderr
    assert "accept with: nnviz accept .nnviz-artifacts test_rv.py::test_a" in listing.stdout
    assert "accept with: nnviz accept .nnviz-artifacts test_rv.py::test_b" in listing.stdout
    assert "~ 0  Linear  out_features 8 → 16" in listing.stdout
    assert "nnviz: 2 pending; nothing changed (no terminal to ask in)" in listing.stdout
    assert pending_a.is_file() and pending_b.is_file() and b.read_bytes() == old_b

    code, screen = on_a_terminal(
        drifted, ["review"], [("[1/2] test_rv.py::test_a", "a"), ("[2/2] test_rv.py::test_b", "r")]
    )
    assert code == 0, screen
    assert "out_features 8 → 16" in screen and "accepted → " in screen and "rejected" in screen
    assert "nnviz: 1 accepted, 1 rejected, 0 skipped, 0 refused" in screen
    assert a.read_bytes() == new_a and not pending_a.exists()  # the snapshot is the new one
    assert b.read_bytes() == old_b and not pending_b.exists()  # dropped, stored one untouched


def test_the_next_run_has_one_drift_left(pytester: pytest.Pytester, drifted: Path) -> None:
    code, screen = on_a_terminal(drifted, ["review"], [("[1/2]", "a"), ("[2/2]", "r")])
    assert code == 0, screen
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["nnviz: 1 snapshot passed, 1 drifted"])
    assert [
        d.nodeid for d in DriftReport.load(drifted / ".nnviz-artifacts/report.json").drifts
    ] == ["test_rv.py::test_b"]


def test_accept_from_a_copied_artifact_refuses_a_snapshot_edited_since(
    drifted: Path, tmp_path: Path
) -> None:
    # As after `gh run download RUN -n nnviz-drift -D downloaded` on another machine.
    downloaded = drifted / "downloaded"
    shutil.copytree(drifted / ".nnviz-artifacts", downloaded)
    shutil.rmtree(drifted / ".nnviz-artifacts")
    a, b = drifted / f"{SNAPS}/test_a.json", drifted / f"{SNAPS}/test_b.json"
    edited = b.read_bytes().replace(b"\n", b"\n ", 1)  # someone touched it after the run
    b.write_bytes(edited)

    result = run_nnviz("accept", "downloaded", cwd=drifted)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"accepted test_rv.py::test_a → {SNAPS}/test_a.json"
    assert lines[1].startswith("refused test_rv.py::test_b: ")
    assert "changed since the run compared it" in lines[1]
    assert lines[-1] == "nnviz: 1 accepted, 0 rejected, 0 skipped, 1 refused"
    assert b.read_bytes() == edited  # byte-identical
    assert nnviz.load(a).modules["0"].hparams["out_features"] == 16
    assert not (downloaded / "test_rv/test_a.new.json").exists()
    assert (downloaded / "test_rv/test_b.new.json").exists()  # still pending

    again = run_nnviz("accept", "downloaded", "test_rv.py::test_a", cwd=drifted)
    assert again.returncode == 2
    assert again.stderr == (
        "nnviz: error: no pending change for test_rv.py::test_a (see `nnviz review`)\n"
    )


def test_reject_drops_the_pending_changes_and_keeps_the_stored_snapshots(drifted: Path) -> None:
    a, b = drifted / f"{SNAPS}/test_a.json", drifted / f"{SNAPS}/test_b.json"
    old_a, old_b = a.read_bytes(), b.read_bytes()
    result = run_nnviz("reject", "test_rv.py::test_b", cwd=drifted)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"rejected test_rv.py::test_b (kept {SNAPS}/test_b.json)",
        "nnviz: 0 accepted, 1 rejected, 0 skipped, 0 refused",
    ]
    assert not (drifted / ".nnviz-artifacts/test_rv/test_b.new.json").exists()
    assert (drifted / ".nnviz-artifacts/test_rv/test_a.new.json").is_file()
    everything = run_nnviz("reject", cwd=drifted)
    assert (
        everything.stdout.splitlines()[-1] == "nnviz: 0 accepted, 1 rejected, 0 skipped, 0 refused"
    )
    assert a.read_bytes() == old_a and b.read_bytes() == old_b
    assert run_nnviz("reject", cwd=drifted).stdout == "nnviz: no pending changes\n"


def test_a_snapshot_missing_on_ci_is_pending_and_accept_creates_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_rv=TESTS)
    monkeypatch.setenv("CI", "true")
    result = run(pytester)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*nnviz: no snapshot __nnviz_snapshots__/test_rv/test_a.json yet",
            "*or accept the pending one: nnviz accept .nnviz-artifacts",
        ]
    )
    assert not (pytester.path / SNAPS).exists()  # CI writes no snapshot, only pending files
    report = DriftReport.load(pytester.path / ".nnviz-artifacts/report.json")
    assert report.summary.missing == 2 and report.drifts == []
    assert [(n.nodeid, n.pending) for n in report.new] == [
        ("test_rv.py::test_a", "test_rv/test_a.new.json"),
        ("test_rv.py::test_b", "test_rv/test_b.new.json"),
    ]
    # The PR comment says they are pending and how to accept them (not "no drift any more").
    comment = run_nnviz("report", ".nnviz-artifacts", "--format", "comment", cwd=pytester.path)
    assert "no architecture drift any more" not in comment.stdout
    assert "**2 new snapshots pending** (no stored one yet: accepting creates it): " in (
        comment.stdout
    )
    assert "nnviz accept .nnviz-artifacts" in comment.stdout
    # As after `gh run download RUN -n nnviz-drift -D downloaded` on a developer's machine.
    downloaded = pytester.path / "downloaded"
    shutil.move(pytester.path / ".nnviz-artifacts", downloaded)
    listing = run_nnviz("review", "downloaded", cwd=pytester.path)
    assert "new snapshot: __nnviz_snapshots__/test_rv/test_a.json (does not exist yet)" in (
        listing.stdout
    )
    assert "+ Sequential: 3 modules, 4 nodes, 40 parameters" in listing.stdout
    accepted = run_nnviz("accept", "downloaded", cwd=pytester.path)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.splitlines()[-1] == "nnviz: 2 accepted, 0 rejected, 0 skipped, 0 refused"
    # the folders the pending files left empty are gone; the report stays
    assert sorted(p.name for p in downloaded.rglob("*")) == ["report.json"]
    monkeypatch.delenv("CI")
    run(pytester).assert_outcomes(passed=2)


def test_update_modes_and_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_rv=TESTS)
    pytester.makeini("[pytest]\nnnviz_update = new\n")
    monkeypatch.setenv("CI", "true")
    run(pytester).assert_outcomes(failed=2)  # CI: missing fails, the ini mode is not applied
    assert not (pytester.path / SNAPS).exists()
    monkeypatch.delenv("CI")
    run(pytester).assert_outcomes(passed=2)  # locally the ini mode writes missing snapshots
    pytester.makepyfile(test_rv=DRIFTED)
    # `new` never overwrites a drifted snapshot, on the command line either.
    run(pytester, "--nnviz-update=new").assert_outcomes(failed=2)
    # A bare --nnviz-update before a path does not take the path for its mode.
    result = run(pytester, "--nnviz-update", "test_rv.py::test_a")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["nnviz: 0 snapshots passed, 1 written"])


def test_ignore_rules(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_rv=TESTS)
    run(pytester, "--nnviz-update").assert_outcomes(passed=2)
    call = "nnviz_snapshot(nn.Sequential(nn.Linear(4, 16), nn.ReLU()))"
    rule = call[:-1] + ", ignore=['hparams', 'parameters'])"
    pytester.makepyfile(test_rv=DRIFTED.replace(call, rule))
    # test_a: its own rule drops out_features and the weight shape; test_b (Tanh → ReLU): the
    # ini file's rules drop the class and ReLU's new `inplace` (a key the graphs have).
    pytester.makeini("[pytest]\nnnviz_ignore =\n    class\n    inplace\n")
    run(pytester).assert_outcomes(passed=2)
    pytester.makeini("[pytest]\nnnviz_ignore = bogus\n")
    result = run(pytester)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*nnviz: unknown ignore field 'bogus'*"])


def test_a_deleted_test_module_leaves_unused_snapshots(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_rv=TESTS, test_gone=TESTS)
    run(pytester, "--nnviz-update").assert_outcomes(passed=4)
    (pytester.path / "test_gone.py").unlink()
    result = run(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "nnviz: 2 snapshots passed, 2 unused",
            "unused snapshot: __nnviz_snapshots__/test_gone/test_a.json",
            "unused snapshot: __nnviz_snapshots__/test_gone/test_b.json",
        ]
    )
    run(pytester, "test_rv.py::test_a").assert_outcomes(passed=1)  # a partial run judges nothing
    assert (pytester.path / "__nnviz_snapshots__/test_gone").is_dir()
    result = run(pytester, "--nnviz-update")
    result.stdout.fnmatch_lines(["nnviz: 2 snapshots passed, 2 unused (deleted)"])
    assert not (pytester.path / "__nnviz_snapshots__/test_gone").exists()
    assert (pytester.path / SNAPS / "test_a.json").is_file()
