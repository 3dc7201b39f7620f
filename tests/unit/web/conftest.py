from __future__ import annotations

import pytest
from hwprof.web.synthetic import small_profile


@pytest.fixture
def profile():
    return small_profile()
