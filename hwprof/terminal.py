"""Text that is safe to write to a terminal: control characters escaped, as `ls -b` and `git` quote file names.

Names in hwprof's output come from outside: store entries renamed through the web view, JIT symbols from
/tmp/perf-PID.map, comm values, ELF symbols, file paths. Printed raw, a name such as "\\x1b]0;pwned\\x07\\x1b[31mRED"
retitles the user's terminal and colours what follows. Every character that a terminal interprets is therefore
written as a C escape (`\\n`, `\\t`, ...) or as the octal bytes of its UTF-8 encoding (`\\033`, `\\302\\233`), the
way git quotes paths:
- C0 controls and DEL, C1 controls (U+0080-U+009F: some terminals take U+009B as CSI),
- Unicode bidirectional overrides and isolates (they reorder what the reader sees: "Trojan Source"),
- lone surrogates (bytes that were not UTF-8, kept by surrogateescape, come back as those bytes).
Backslashes are left alone: the aim is a terminal that shows what is there, not a reversible quoting.

`printable(text)` escapes everything, for one field (a name, a path). `PrintableStream` wraps stdout/stderr so
that whatever the CLI writes passes through the same escaping, keeping only the layout characters the output is
made of (newline, tab, carriage return): a field someone forgot to escape still cannot drive the terminal.
"""

from __future__ import annotations

import re

_NOT_C0 = "\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"  # DEL, C1, bidi, surrogates
_UNSAFE_PATTERN = f"[\x00-\x1f{_NOT_C0}]"  # printable() is rare in most commands: compiled on first use
_UNSAFE_BUT_LAYOUT = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_NOT_C0}]")  # keeps \t \n \r
_NAMED = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r"}


def _escaped(match: re.Match) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    try:
        data = char.encode("utf-8", "surrogateescape")  # U+DC80..U+DCFF: the original non-UTF-8 byte
    except UnicodeEncodeError:
        data = char.encode("utf-8", "surrogatepass")
    return "".join(f"\\{byte:03o}" for byte in data)


def printable(text: str) -> str:
    """`text` with every control character escaped (newlines and tabs too): one safe field."""
    return re.sub(_UNSAFE_PATTERN, _escaped, text) if re.search(_UNSAFE_PATTERN, text) else text


def printable_output(text: str) -> str:
    """Like printable(), but newline, tab and carriage return stay: already formatted output."""
    return _UNSAFE_BUT_LAYOUT.sub(_escaped, text) if _UNSAFE_BUT_LAYOUT.search(text) else text


class PrintableStream:
    """A text stream writing through printable_output() into another one (the CLI's stdout and stderr)."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(printable_output(text))
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str):
        # flush, fileno, isatty, encoding, buffer, ... of the wrapped stream
        return getattr(self.stream, name)
