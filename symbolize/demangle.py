"""C++ (Itanium) and Rust (legacy and v0) demangling, as addr2line -C and perf print names.

C++ goes through libstdc++'s ``__cxa_demangle`` (via cxxfilt): the same libiberty demangler that
binutils uses, so output matches c++filt. Rust goes through rust-demangler; legacy Rust names
would otherwise come out of the C++ demangler with ``$LT$`` escapes and a hash.
"""

from __future__ import annotations

import functools
import re

_RUST_LEGACY_HASH = re.compile(r"17h[0-9a-f]{16}E(\..*)?$")
_RUST_HASH_SUFFIX = re.compile(r"::h[0-9a-f]{16}$")


@functools.lru_cache(maxsize=1 << 16)
def demangle(name: str) -> str:
    """Demangled form of ``name``; unchanged when it is not a mangled name or cannot be decoded."""
    if name.startswith("_R") or (name.startswith("_ZN") and _RUST_LEGACY_HASH.search(name)):
        rust = _demangle_rust(name)
        if rust is not None:
            return rust
    if name.startswith("_Z"):
        return _demangle_cxx(name)
    return name


def _demangle_rust(name: str) -> str | None:
    import rust_demangler

    suffix = ""
    base = name
    if base.startswith("_ZN"):
        cut = base.find("E.")
        if cut > 0:
            base, suffix = base[: cut + 1], base[cut + 1 :]
    try:
        text = rust_demangler.demangle(base)
    except Exception:  # the library signals bad input with assorted exception types
        return None
    if not isinstance(text, str) or text == base:
        return None
    return _RUST_HASH_SUFFIX.sub("", text) + suffix


def _demangle_cxx(name: str) -> str:
    demangler = _cxx_demangler()
    if demangler is None:
        return name
    try:
        return demangler.demangle(name)
    except Exception:  # InvalidName and friends: not a C++ name after all
        return name


@functools.cache
def _cxx_demangler():
    try:
        import cxxfilt
    except ImportError:
        return None
    try:
        return cxxfilt.Demangler("libc.so.6", "libstdc++.so.6")
    except OSError:
        return cxxfilt.default_demangler
