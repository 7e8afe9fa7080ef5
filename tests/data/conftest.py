"""Data tests never write to the user's cache: NORMLAB_CACHE points at a tmp folder."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("normlab_cache")


@pytest.fixture(autouse=True)
def _tmp_cache(monkeypatch, session_cache):
    monkeypatch.setenv("NORMLAB_CACHE", str(session_cache))
    monkeypatch.setenv("NORMLAB_DATA", str(session_cache / "no-data-here"))
    return session_cache
