"""Fixtures for the core tests; the helpers live in plait_harness (a unique module name, so
test folders of other packages can have their own conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# The reusable contract suites live in the package: let pytest explain their failed asserts.
pytest.register_assert_rewrite("plait.testing.metadata_contract", "plait.testing.datastore_contract")

from plait_harness import Plait  # noqa: E402 - after the rewrite registration


@pytest.fixture
def plait(tmp_path: Path) -> Iterator[Plait]:
    p = Plait(tmp_path)
    yield p
    p.close()
