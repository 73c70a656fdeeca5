"""Fixtures the fast tier (``tests/test_unit_*.py``) shares.

Not in conftest.py: mutmut runs the fast tier with ``--noconftest``.  A test module imports the
fixtures it uses (``from unit_fixtures import fixture_connection``); each is registered under
its short name (``name=``), so a test asks for ``connection``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa


@pytest.fixture(name="connection")
def fixture_connection(tmp_path: Path) -> Iterator[sa.Connection]:
    """A connection to a SQLite file of the test's own."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect() as conn:
        yield conn
    engine.dispose()
