"""Rule: text hwprof prints cannot drive the terminal; control characters come out escaped, as ls -b and git do."""

from __future__ import annotations

import io

from hwprof.terminal import PrintableStream, printable, printable_output

HOSTILE = "\u001b]0;pwned\u0007\u001b[31mRED"


def test_escape_sequences_are_written_as_octal_escapes():
    assert printable(HOSTILE) == "\\033]0;pwned\\a\\033[31mRED"


def test_named_controls_use_c_escapes_and_layout_is_escaped_in_a_field():
    assert printable("a\tb\nc\rd\be\ff\vg\x00") == "a\\tb\\nc\\rd\\be\\ff\\vg\\000"


def test_c1_controls_bidi_overrides_and_surrogates_are_escaped():
    assert printable("x\u009b31m") == "x\\302\\23331m"  # a one-character CSI on some terminals
    assert printable("abc\u202edef") == "abc\\342\\200\\256def"  # right-to-left override
    assert printable("file\udcff.so") == "file\\377.so"  # a non-UTF-8 byte kept by surrogateescape
    assert printable("\ud800") == "\\355\\240\\200"


def test_ordinary_text_is_untouched():
    for text in ("std::vector<int>::push_back(int&&)", "résumé 名前 🔥", "a\\b", "[kernel.kallsyms]", ""):
        assert printable(text) is text or printable(text) == text


def test_output_keeps_its_layout_but_not_escapes():
    assert printable_output("a\tb\r\nc" + HOSTILE + "\n") == "a\tb\r\nc\\033]0;pwned\\a\\033[31mRED\n"


def test_stream_escapes_what_is_written_and_delegates_the_rest():
    sink = io.StringIO()
    stream = PrintableStream(sink)
    stream.write("name: " + HOSTILE + "\n")
    print("x\x1b[2J", file=stream)
    stream.flush()
    assert sink.getvalue() == "name: \\033]0;pwned\\a\\033[31mRED\nx\\033[2J\n"
    assert stream.getvalue() == sink.getvalue()  # anything else is the wrapped stream's


def test_addr2line_output_escapes_hostile_names_and_paths():
    import argparse

    from hwprof.commands.addr2line import _Formatter

    args = argparse.Namespace(functions=True, inlines=False, show_addresses=False, pretty_print=False, basenames=False)
    text = _Formatter(args).render([0x10], [(("f\x1b[31m", "/src/a\nb.c", 3),)])
    assert text == "f\\033[31m\n/src/a\\nb.c:3\n"
