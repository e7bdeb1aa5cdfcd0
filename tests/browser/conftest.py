"""Browser tests: skipped with the reason when Chromium or Playwright is missing, except where
NNVIZ_REQUIRE_BROWSER=1 (CI sets it), which turns that skip into a failure."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import chromium
import pytest


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = chromium.missing()
    if reason is not None:
        if os.environ.get("NNVIZ_REQUIRE_BROWSER") == "1":
            pytest.fail(f"NNVIZ_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    with chromium.browser() as context:
        yield context
