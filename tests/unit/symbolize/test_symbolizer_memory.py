"""A long-lived symbolizer (hwprof agent) keeps what it looked up: each binary's unwind table (read again when the file
at that path is replaced) and kernel addresses' chains (bounded)."""

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


def test_kernel_chains_are_kept_and_the_bound_starts_over(tmp_path, monkeypatch):
    """Kernel addresses met again are answered from memory; when the cache is full it starts over, and a call that
    mixes known and new addresses still answers every one."""
    import hwprof.symbolize.symbolizer as symbolizer_module
    import numpy as np

    kallsyms = tmp_path / "kallsyms"
    kallsyms.write_text("ffffffff81000000 T _stext\nffffffff81000100 T do_one\nffffffff81000200 T do_two\n"
                        "ffffffff81000300 T do_three\n")
    symbolizer = Symbolizer(cache_dir=str(tmp_path / "cache"), debuginfod=False, kallsyms=str(kallsyms))
    first = symbolizer.symbolize_kernel(np.array([0xFFFFFFFF81000110, 0xFFFFFFFF81000210], dtype=np.uint64))
    assert [c[0].function for c in first] == ["do_one", "do_two"]
    again = symbolizer.symbolize_kernel(np.array([0xFFFFFFFF81000110], dtype=np.uint64))
    assert again[0] is first[0]
    monkeypatch.setattr(symbolizer_module, "KERNEL_CHAIN_CACHE", 2)
    mixed = symbolizer.symbolize_kernel(np.array([0xFFFFFFFF81000110, 0xFFFFFFFF81000310], dtype=np.uint64))
    assert [c[0].function for c in mixed] == ["do_one", "do_three"]
