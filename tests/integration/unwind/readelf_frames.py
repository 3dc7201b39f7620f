"""`readelf --debug-dump=frames-interp` as an oracle: the rows binutils computes for every FDE."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

_FDE = re.compile(r"FDE cie=\w+ pc=([0-9a-f]+)\.\.([0-9a-f]+)")


@dataclass(frozen=True)
class OracleRow:
    address: int
    cfa: str       # "rsp+8", "rbp+16", "exp", ...
    ra: str        # "c-8", "u", "exp", ...
    rbp: str       # "c-16", "u", ... ("u" also when the column is absent)
    fde_end: int


def readelf_rows(path: str) -> list[OracleRow]:
    # readelf exits 1 after warnings about sections it does not need here (e.g. libc's .gnu.warning
    # sections); the frame dump is complete all the same.
    text = subprocess.run(["readelf", "--debug-dump=frames-interp", path], capture_output=True, text=True).stdout
    rows: list[OracleRow] = []
    columns: list[str] | None = None
    end = 0
    in_fde = False
    for line in text.splitlines():
        m = _FDE.search(line)
        if m:
            in_fde, columns, end = True, None, int(m.group(2), 16)
            continue
        if " CIE " in line or line.startswith("Contents of"):
            in_fde = False
            continue
        if not in_fde:
            continue
        parts = line.split()
        if parts[:2] == ["LOC", "CFA"]:
            columns = parts
            continue
        if columns and len(parts) == len(columns) and re.fullmatch(r"[0-9a-f]{16}", parts[0]):
            values = dict(zip(columns, parts, strict=True))
            rows.append(OracleRow(int(parts[0], 16), values["CFA"], values.get("ra", "u"), values.get("rbp", "u"),
                                  end))
    return rows
