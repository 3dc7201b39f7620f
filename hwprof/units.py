"""Unit type aliases, so a signature says what a number measures.

Plain assignments (type checkers read a module-level `X = int` as an alias): `typing.TypeAlias` would import
`typing` on every CLI start, and this module is on the path of every command.
"""

Nanoseconds = int
Pid = int
Tid = int
Cpu = int
Address = int
FileOffset = int
EventCount = int
