"""Commands of the hwprof CLI, one module each.

Each module in COMMAND_MODULES defines ``COMMAND``, an object that satisfies :class:`Command`.
Command modules import only argparse-level things at module scope: the CLI builds every
sub-parser on each start, so heavy imports belong inside ``run``.
"""

from __future__ import annotations

import argparse

# `typing` costs every CLI start an import (~3 ms) for a class that only type checkers read: they see the
# Protocol, the interpreter a plain base class.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object

COMMAND_MODULES = (
    "check",
    "list",
    "stat",
    "record",
    "report",
    "ls",
    "addr2line",
    "probe",
    "serve",
    "agent",
)


class Command(Protocol):
    name: str
    help: str
    description: str
    epilog: str

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        """Add this command's options to its sub-parser."""

    def run(self, args: argparse.Namespace) -> int:
        """Do the work; return the process exit code. Raise HwprofError for user-facing failures."""
