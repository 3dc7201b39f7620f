"""Unit type aliases, so a signature says what a number measures."""

from typing import TypeAlias

Nanoseconds: TypeAlias = int
Pid: TypeAlias = int
Tid: TypeAlias = int
Cpu: TypeAlias = int
Address: TypeAlias = int
FileOffset: TypeAlias = int
EventCount: TypeAlias = int
