"""Pure logic of the symbolizer: parsers, lookups, naming rules and addr2line's output format."""

from __future__ import annotations

import argparse
import re
import struct
import zlib

import numpy as np
import pytest
from hwprof.symbolize.demangle import demangle
from hwprof.symbolize.dwarf_index import DwarfIndex, DwarfIndexError
from hwprof.symbolize.elf import SymbolTable, _build_id_in_notes, _parse_debuglink
from hwprof.symbolize.frame import SymbolizedFrame, make_frame, unknown_frame
from hwprof.symbolize.jit import PerfMap
from hwprof.symbolize.kernel import KernelSymbols
from hwprof.symbolize.module import _decode_symbols, _encode_symbols, strip_clone_suffix
from hwprof.symbolize.symbol_build import _sub_names, _unnamed_functions

from hwprof.errors import HwprofError


def test_perf_map_names_are_arbitrary_text():
    text = (
        "7f0000001000 40 LazyCompile:~main file:///a b.js:1\n"
        "7f0000002000 10 [weird] name \"quoted\" \t tab\n"
        "not a line at all\n"
        "7f0000003000 0 zero-size-is-skipped\n"
        "7f0000001000 20 replaced-by-later-line\n"
    )
    perf_map = PerfMap.parse(text.encode())
    assert perf_map.skipped_lines == 2
    assert perf_map.names == ("replaced-by-later-line", '[weird] name "quoted" \t tab')
    got = perf_map.lookup(np.array([0x7F0000001000, 0x7F000000101F, 0x7F0000001020, 0x7F000000200F, 0x10],
                                   dtype=np.uint64))
    assert got == [("replaced-by-later-line", 0), ("replaced-by-later-line", 0x1F), (None, None),
                   ('[weird] name "quoted" \t tab', 0xF), (None, None)]
    assert PerfMap.parse(b"\xff\xfe 1 2\n1000 10 caf\xc3\xa9\n").names == ("café",)


KALLSYMS = """\
ffffffff81000000 T _stext
ffffffff81000100 t helper_function
ffffffff81000200 D some_data
ffffffff81000300 T schedule
ffffffffc0001000 t mod_func\t[nvme]
ffffffffc0001100 t mod_other\t[nvme]
"""


def test_kallsyms_lookup_and_modules():
    ksyms = KernelSymbols.parse(KALLSYMS)
    assert not ksyms.hidden
    assert ksyms.modules == {"nvme": (0xFFFFFFFFC0001000, 0xFFFFFFFFC0001100)}
    got = ksyms.lookup(np.array([0xFFFFFFFF81000105, 0xFFFFFFFF81000250, 0xFFFFFFFFC0001104, 0x1000],
                                dtype=np.uint64))
    # Data symbols are not code: 0x...250 still belongs to helper_function.
    assert got == [("helper_function", 5, "[kernel.kallsyms]"), ("helper_function", 0x150, "[kernel.kallsyms]"),
                   ("mod_other", 4, "[nvme]"), (None, None, "[kernel.kallsyms]")]
    assert ksyms.address_of("schedule") == 0xFFFFFFFF81000300


def test_kallsyms_columns_parse_like_the_lines():
    """The kernel's fixed-width form is cut with numpy; anything else is read line by line, with the same result."""
    text = KALLSYMS + ("ffffffffc0002000 T other_mod_fn\t[xfs]\nffffffff81000050 W weak_fn\n"
                       "ffffffffc0000ff0 t first\t[nvme]\n")
    fast = KernelSymbols.parse(text.encode())
    slow = KernelSymbols._parse_lines(text)
    assert fast.starts.tolist() == slow.starts.tolist()
    assert list(fast.names) == list(slow.names) and list(fast.owners) == list(slow.owners)
    assert fast.modules == slow.modules == {"nvme": (0xFFFFFFFFC0000FF0, 0xFFFFFFFFC0001100),
                                            "xfs": (0xFFFFFFFFC0002000, 0xFFFFFFFFC0002000)}
    assert fast.names.index("weak_fn") == 1 and fast.address_of("other_mod_fn") == 0xFFFFFFFFC0002000
    assert fast.address_of("no_such_symbol") is None
    # Not the kernel's form (short addresses, two spaces): the line parser answers.
    loose = KernelSymbols.parse("1000  T  start\n1100 t helper\n")
    assert loose.starts.tolist() == [0x1000, 0x1100] and list(loose.names) == ["start", "helper"]
    assert KernelSymbols.parse("").starts.tolist() == [] and not KernelSymbols.parse(b"").hidden


def test_kallsyms_hidden_by_kptr_restrict():
    hidden = KernelSymbols.parse(re.sub(r"^[0-9a-f]{16}", "0" * 16, KALLSYMS, flags=re.M))
    assert hidden.hidden and "kptr_restrict" in hidden.hidden_note
    assert hidden.lookup(np.array([0x1234], dtype=np.uint64)) == [(None, None, "[kernel.kallsyms]")]


@pytest.mark.parametrize(
    ("mangled", "expected"),
    [
        ("main", "main"),
        ("_Z3fooi", "foo(int)"),
        ("_ZN4text5scoreEd", "text::score(double)"),
        ("_Z3foov.cold", "foo() [clone .cold]"),
        ("_ZNSt6vectorIiSaIiEED2Ev", "std::vector<int, std::allocator<int> >::~vector()"),
        ("_ZN4core3fmt5write17h0123456789abcdefE", "core::fmt::write"),
        ("_ZN4core3ptr23drop_in_place$LT$u8$GT$17h0123456789abcdefE", "core::ptr::drop_in_place<u8>"),
        ("_RNvCs15kBYyAo9fc_7mycrate7example", "mycrate::example"),
        ("_Zgarbage", "_Zgarbage"),
    ],
)
def test_demangle(mangled, expected):
    assert demangle(mangled) == expected


def test_clone_suffixes():
    assert strip_clone_suffix("foo.cold") == "foo"
    assert strip_clone_suffix("foo.constprop.0.isra.0") == "foo"
    assert strip_clone_suffix("foo.part.12") == "foo"
    assert strip_clone_suffix("_ZN3foo3barE") == "_ZN3foo3barE"
    assert strip_clone_suffix("file.c") == "file.c"


def _note(name: bytes, kind: int, desc: bytes) -> bytes:
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name), len(desc), kind) + pad(name) + pad(desc)


def test_build_id_note_parsing():
    build_id = bytes(range(20))
    notes = _note(b"GNU\0", 1, b"\x01" * 16) + _note(b"GNU\0", 3, build_id)
    assert _build_id_in_notes(notes) == build_id
    assert _build_id_in_notes(_note(b"Xen\0", 3, build_id)) is None
    assert _build_id_in_notes(notes[:30]) is None


def test_debuglink_parsing():
    crc = zlib.crc32(b"debug contents")
    section = b"app.debug\0" + b"\0\0" + struct.pack("<I", crc)
    assert _parse_debuglink(section) == ("app.debug", crc)
    assert _parse_debuglink(b"app.debug\0") is None
    assert _parse_debuglink(b"\0\0\0\0\0\0\0\0") is None


def _table() -> SymbolTable:
    starts = np.array([0x1000, 0x1010, 0x1100], dtype=np.uint64)
    ends = np.array([0x1008, 0x1040, 0x1120], dtype=np.uint64)
    reach = np.array([0x1010, 0x1080, 0x1120], dtype=np.uint64)  # padding up to the next symbol
    return SymbolTable(starts, ends, ("a", "b", "c"), ("a.c", None, None), {0x1010: ("b", "b_alias")}, reach)


def test_symbol_table_lookup_vector_and_scalar_agree():
    table = _table()
    addrs = [0xFFF, 0x1000, 0x1007, 0x100C, 0x1010, 0x107F, 0x1080, 0x1100, 0x111F, 0x1120, 0x9999]
    idx, off = table.lookup(np.array(addrs, dtype=np.uint64))
    assert idx.tolist() == [-1, 0, 0, 0, 1, 1, -1, 2, 2, -1, -1]
    assert off.tolist()[:6] == [0, 0, 7, 0xC, 0, 0x6F]
    assert [table.lookup_one(a)[0] for a in addrs] == idx.tolist()


def test_symbol_cache_roundtrip():
    table = _table()
    table = SymbolTable(table.starts, table.ends, ("a", "b", "sub_1100"), table.files, table.aliases, table.reach,
                        frozenset({0x1100}))
    decoded = _decode_symbols(_encode_symbols(table))
    assert list(decoded.starts) == table.starts.tolist() and list(decoded.reach) == table.reach.tolist()
    assert tuple(decoded.names) == table.names and tuple(decoded.files) == table.files
    assert decoded.aliases == table.aliases
    assert decoded.unnamed == {0x1100} and decoded.is_unnamed(2) and not decoded.is_unnamed(1)
    with pytest.raises(ValueError):
        _decode_symbols(b"HWSYMS01" + (5).to_bytes(8, "little") + b"\0" * 8)
    with pytest.raises(ValueError):
        _decode_symbols(_encode_symbols(table)[:-3])  # a cut file


def test_functions_only_eh_frame_describes_are_named_sub_start_until_the_next_symbol():
    starts, reach = [0x1000, 0x1100], [0x1040, 0x1180]
    bounds = {0x1000: 0x1040,  # the symbol's own FDE
              0x1040: 0x1090,  # a static function after it: sub_1040
              0x10F0: 0x1120,  # runs into the next symbol: ends there
              0x1140: 0x1150,  # inside the second symbol's reach: that symbol's
              0x1200: 0x1210,  # past every symbol
              0x0800: 0x0810}  # before every symbol

    def unnamed(starts, reach):
        fde = sorted(bounds.items())
        found = _unnamed_functions(np.array([s for s, _ in fde], dtype=np.uint64),
                                   np.array([e for _, e in fde], dtype=np.uint64), starts, reach)
        return [(start, end) for start, end in zip(found[0].tolist(), found[1].tolist(), strict=True)]

    assert unnamed(starts, reach) == [(0x0800, 0x0810), (0x1040, 0x1090), (0x10F0, 0x1100), (0x1200, 0x1210)]
    assert unnamed([], []) == sorted(bounds.items())


def test_unnamed_functions_are_named_by_their_start_in_lowercase_hex():
    starts = [0, 0x9, 0x15B40, 0xFFFFFFFFFFFFFFFF, 0x10]
    assert list(_sub_names(np.array(starts, dtype=np.uint64))) == [f"sub_{s:x}" for s in starts]


@pytest.mark.parametrize("data", [b"", b"SYMC", b"NOPE" + b"\0" * 100, b"SYMC\x09\0\0\0" + b"\xff" * 72])
def test_dwarf_index_rejects_bad_bytes(data):
    with pytest.raises(DwarfIndexError):
        DwarfIndex(data)


def test_frames():
    frame = make_frame("f", "a.c", 3, False, "/lib/x.so", 0x10, 2)
    assert frame == SymbolizedFrame("f", "a.c", 3, False, "/lib/x.so", 0x10, 2)
    assert hash(frame) == hash(SymbolizedFrame("f", "a.c", 3, False, "/lib/x.so", 0x10, 2))
    with pytest.raises(AttributeError):
        frame.function = "g"
    assert frame.describe() == "f+0x2"
    assert unknown_frame("/lib/x.so", 0x1234).describe() == "/lib/x.so+0x1234"


def _render(flags: dict, chains) -> str:
    from hwprof.commands.addr2line import _Formatter

    args = argparse.Namespace(functions=False, inlines=False, show_addresses=False, pretty_print=False,
                              basenames=False)
    for key, value in flags.items():
        setattr(args, key, value)
    return _Formatter(args).render([0x1139, 0x20], chains)


CHAINS = [
    (("mix", "/src/inline.c", 9), ("checksum", "/src/inline.c", 26)),
    ((None, None, None),),
]


def test_addr2line_format_plain_and_inlines():
    assert _render({}, CHAINS) == "/src/inline.c:9\n??:0\n"
    assert _render({"functions": True, "inlines": True}, CHAINS) == (
        "mix\n/src/inline.c:9\nchecksum\n/src/inline.c:26\n??\n??:0\n")


def test_addr2line_format_pretty_addresses_basenames():
    assert _render({"functions": True, "inlines": True, "pretty_print": True, "show_addresses": True,
                    "basenames": True}, CHAINS) == (
        "0x0000000000001139: mix at inline.c:9\n (inlined by) checksum at inline.c:26\n"
        "0x0000000000000020: ?? ??:0\n")


def test_addr2line_format_unknown_line_with_known_function():
    chains = [(("frame_dummy", "crtstuff.c", None),), (("stripped", None, None),)]
    assert _render({"functions": True}, chains) == "frame_dummy\ncrtstuff.c:?\nstripped\n??:?\n"


def test_address_parsing():
    from hwprof.commands.addr2line import _parse_address

    assert _parse_address("0x1139") == _parse_address("1139") == 0x1139
    with pytest.raises(HwprofError, match="not a hexadecimal address"):
        _parse_address("main")


def test_perf_map_snapshot(tmp_path):
    from hwprof.symbolize.jit import snapshot_perf_map

    src = tmp_path / "src"
    src.mkdir()
    (src / "perf-77.map").write_text("1000 10 jitted\n")
    kept = snapshot_perf_map(77, str(tmp_path / "capture"), source_dir=str(src))
    (src / "perf-77.map").unlink()  # the runtime exits and removes it
    assert PerfMap.load(kept).names == ("jitted",)
    assert snapshot_perf_map(78, str(tmp_path / "capture"), source_dir=str(src)) is None


class _Tty:
    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_progress_only_for_slow_work_on_a_terminal():
    import io
    import time

    from hwprof.symbolize.progress import Progress

    quick = _Tty()
    with Progress("lib.so", quick):  # the real one-second delay: quick work prints nothing
        pass
    assert quick.text == ""
    slow = _Tty()
    with Progress("libbig.so", slow, delay=0.05):
        deadline = time.monotonic() + 10
        while "indexing" not in slow.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "indexing libbig.so" in slow.text and "indexed libbig.so" in slow.text
    pipe = io.StringIO()
    with Progress("libbig.so", pipe, delay=0.05):
        time.sleep(0.5)
    assert pipe.getvalue() == ""
