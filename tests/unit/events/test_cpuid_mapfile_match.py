"""Rule: choosing the Intel table compares plain mapfile rows as text, and that gives exactly what perf's rule
(the row's regex, case-insensitive, matching the whole CPU id or the id without its stepping) gives."""

from __future__ import annotations

import re

import pytest

from hwprof.events.cpuid import parse_cpuid
from hwprof.events.vendor import _data_dir, _index

CPUIDS = ["GenuineIntel-6-8F-8", "GenuineIntel-6-8f", "genuineintel-6-55-4", "GenuineIntel-6-55-B",
          "GenuineIntel-6-5", "GenuineIntel-18-1-0", "AuthenticAMD-25-1-1", "GenuineIntel-6-AD-1"]


def perf_rule(cpuid, pattern: str) -> bool:
    regex = re.compile(pattern, re.IGNORECASE)
    return bool(regex.fullmatch(cpuid.text) or regex.fullmatch(cpuid.without_stepping))


@pytest.mark.parametrize("text", CPUIDS)
def test_every_mapfile_row_matches_as_its_regex_does(text):
    cpuid = parse_cpuid(text)
    rows = _index(_data_dir())["mapfile"]
    assert any("[" in row["cpuid"] for row in rows) and any("[" not in row["cpuid"] for row in rows)
    for row in rows:
        assert cpuid.matches(row["cpuid"]) == perf_rule(cpuid, row["cpuid"]), (text, row["cpuid"])
    for pattern in ("GenuineIntel-6-8[EF]", "GenuineIntel-6-(8F|AD)", "GenuineIntel-6-8.", "GenuineIntel-6-8F?"):
        assert cpuid.matches(pattern) == perf_rule(cpuid, pattern), (text, pattern)
