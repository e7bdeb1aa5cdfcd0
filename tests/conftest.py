"""Shared fixtures: traced torchvision models are cached per session (tracing is the slow part)."""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from hypothesis import settings
from support import traced

from nnviz.graph import Graph


@pytest.fixture(scope="session")
def resnet18() -> Graph:
    return traced("resnet18")


# --- hypothesis: a fixed example budget, and a seed that is printed so a failure can be rerun ---

settings.register_profile("ci", max_examples=50, deadline=None, print_blob=True, derandomize=False)
settings.load_profile(os.environ.get("NNVIZ_HYPOTHESIS_PROFILE", "ci"))
_SEED_ENV = "NNVIZ_HYPOTHESIS_SEED"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """One random seed per run (shared with xdist workers through the environment), unless
    `--hypothesis-seed` is given; it is shown in the header and beside every failing test."""
    if getattr(config.option, "hypothesis_seed", "absent") is None:
        config.option.hypothesis_seed = os.environ.setdefault(
            _SEED_ENV, str(random.randrange(2**32))
        )


def pytest_report_header(config: pytest.Config) -> str | None:
    seed = getattr(config.option, "hypothesis_seed", None)
    return f"hypothesis seed: {seed} (rerun with --hypothesis-seed={seed})" if seed else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    seed = getattr(item.config.option, "hypothesis_seed", None)
    if report.failed and seed and item.get_closest_marker("hypothesis"):
        report.sections.append(
            ("hypothesis seed", f"rerun with: pytest {item.nodeid} --hypothesis-seed={seed}")
        )
