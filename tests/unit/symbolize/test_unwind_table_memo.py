"""A long-lived symbolizer (hwprof agent) keeps each binary's unwind table in memory, and rebuilds it when the file
at that path is replaced."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hwprof.symbolize import Symbolizer


@pytest.fixture
def binary(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build a test binary")
    source = tmp_path / "t.c"
    source.write_text("int f(int x) { return x * 3; }\nint main(void) { return f(2); }\n")
    out = tmp_path / "t"
    subprocess.run(["gcc", "-O1", "-o", str(out), str(source)], check=True)
    return out


def test_the_same_file_gives_the_same_table_object(binary, tmp_path):
    symbolizer = Symbolizer(cache_dir=str(tmp_path / "cache"), debuginfod=False)
    first = symbolizer.unwind_table(str(binary))
    assert len(first.start) > 0
    assert symbolizer.unwind_table(str(binary)) is first


def test_a_replaced_file_is_read_again(binary, tmp_path):
    symbolizer = Symbolizer(cache_dir=str(tmp_path / "cache"), debuginfod=False)
    first = symbolizer.unwind_table(str(binary))
    source = tmp_path / "u.c"
    source.write_text("int g(int x) { return x + 1; }\nint h(int x) { return g(x) * 2; }\n"
                      "int main(void) { return h(2); }\n")
    replacement = tmp_path / "u"
    subprocess.run(["gcc", "-O0", "-o", str(replacement), str(source)], check=True)
    replacement.replace(binary)
    again = symbolizer.unwind_table(str(binary))
    assert again is not first
