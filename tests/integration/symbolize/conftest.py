"""Fixtures for the symbolizer tests; the helpers live in symbolize_helpers so tests import them by a name no
other folder uses (every folder's conftest is a module called conftest, and they collide in one run)."""

from symbolize_helpers import programs  # noqa: F401  (the session fixture, for pytest)
