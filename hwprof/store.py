"""The profile store: a directory of captures with an SQLite index of what each one is.

Layout under $HWPROF_HOME (default ~/.local/share/hwprof):
    index.sqlite         one row per entry (see StoreEntry)
    data/<id>.<suffix>   the capture itself: perf.data for recordings, JSON for stat runs and probe results
    cache/<id>.npz       a decoded, symbolized Profile (hwprof.profile), rebuilt when missing

Ids are generated here and validated on every use, so no id can name a path outside the store.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from hwprof.errors import HwprofError

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
KINDS = ("record", "stat", "probe")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    file TEXT NOT NULL,
    created REAL NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    command TEXT NOT NULL DEFAULT '[]',
    events TEXT NOT NULL DEFAULT '[]',
    duration_ns INTEGER NOT NULL DEFAULT 0,
    samples INTEGER NOT NULL DEFAULT 0,
    lost INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0,
    stack_quality REAL,
    extra TEXT NOT NULL DEFAULT '{}'
)
"""


def default_root() -> Path:
    env = os.environ.get("HWPROF_HOME")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "hwprof"


def validate_id(entry_id: str) -> str:
    if not isinstance(entry_id, str) or not ID_PATTERN.match(entry_id):
        raise HwprofError(f"invalid profile id {entry_id!r}")
    return entry_id


@dataclass(frozen=True)
class StoreEntry:
    id: str
    kind: str                      # record | stat | probe
    file: str                      # file name inside data/
    created: float                 # unix seconds
    name: str = ""
    target: str = ""
    command: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    duration_ns: int = 0
    samples: int = 0
    lost: int = 0
    size: int = 0
    stack_quality: float | None = None   # share of samples with complete, known stacks (0..1)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


class ProfileStore:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    # --- paths --------------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    def data_path(self, entry: StoreEntry) -> Path:
        return self.data_dir / Path(entry.file).name

    def cache_path(self, entry_id: str, suffix: str = "npz") -> Path:
        return self.cache_dir / f"{validate_id(entry_id)}.{suffix}"

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.root / "index.sqlite", timeout=10)
        except (OSError, sqlite3.Error) as exc:
            raise HwprofError(f"cannot open the profile store at {self.root}: {exc}") from None
        try:
            conn.execute(_SCHEMA)
            with conn:
                yield conn
        except sqlite3.DatabaseError as exc:
            raise HwprofError(f"profile store index {self.root / 'index.sqlite'} is unreadable: {exc}") from None
        finally:
            conn.close()

    # --- writing ------------------------------------------------------------------------------------
    def new_id(self, kind: str) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return f"{kind}-{stamp}-{secrets.token_hex(3)}"

    def reserve(self, kind: str, suffix: str) -> tuple[str, Path]:
        """A fresh id and the data path a capture should write to; add() the entry when done."""
        if kind not in KINDS:
            raise ValueError(kind)
        entry_id = self.new_id(kind)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return entry_id, self.data_dir / f"{entry_id}.{suffix}"

    def add(self, entry: StoreEntry) -> StoreEntry:
        validate_id(entry.id)
        path = self.data_path(entry)
        if not entry.size and path.exists():
            entry = replace(entry, size=path.stat().st_size)
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (entry.id, entry.kind, entry.name, Path(entry.file).name, entry.created, entry.target,
                 json.dumps(entry.command), json.dumps(entry.events), entry.duration_ns, entry.samples,
                 entry.lost, entry.size, entry.stack_quality, json.dumps(entry.extra)),
            )
        return entry

    def import_file(self, source: str | Path, kind: str = "record", name: str = "", **fields) -> StoreEntry:
        """Copy an existing capture (e.g. a perf.data from perf record) into the store."""
        source = Path(source)
        if not source.is_file():
            raise HwprofError(f"no such file: {source}")
        entry_id, dest = self.reserve(kind, "perf.data" if kind == "record" else "json")
        shutil.copyfile(source, dest)
        return self.add(StoreEntry(id=entry_id, kind=kind, file=dest.name, created=time.time(),
                                   name=name or source.name, **fields))

    def update(self, entry_id: str, **fields) -> StoreEntry:
        entry = replace(self.get(entry_id), **fields)
        return self.add(entry)

    def rename(self, entry_id: str, name: str) -> StoreEntry:
        name = name.strip()
        if not name or len(name) > 200:
            raise HwprofError("a name must be 1 to 200 characters")
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate such as JSON's "\ud800" cannot be stored or shown
            raise HwprofError("a name must be valid Unicode text (it has a lone surrogate)") from None
        return self.update(entry_id, name=name)

    def delete(self, entry_id: str) -> None:
        entry = self.get(entry_id)
        data = self.data_path(entry)
        for path in (data, *self.cache_dir.glob(f"{entry.id}.*")):
            path.unlink(missing_ok=True)
        # A recording keeps the JIT maps it copied at capture time beside it (see hwprof record).
        shutil.rmtree(data.with_name(data.name + ".jit"), ignore_errors=True)
        with self._db() as db:
            db.execute("DELETE FROM entries WHERE id = ?", (entry.id,))

    # --- reading ------------------------------------------------------------------------------------
    @staticmethod
    def _row(row: tuple) -> StoreEntry:
        (id_, kind, name, file, created, target, command, events, duration, samples, lost, size,
         quality, extra) = row
        return StoreEntry(id=id_, kind=kind, name=name, file=file, created=created, target=target,
                          command=json.loads(command), events=json.loads(events), duration_ns=duration,
                          samples=samples, lost=lost, size=size, stack_quality=quality, extra=json.loads(extra))

    def list(self, kind: str | None = None) -> list[StoreEntry]:
        if not (self.root / "index.sqlite").exists():
            return []
        with self._db() as db:
            if kind:
                rows = db.execute("SELECT * FROM entries WHERE kind = ? ORDER BY created DESC", (kind,))
            else:
                rows = db.execute("SELECT * FROM entries ORDER BY created DESC")
            return [self._row(r) for r in rows.fetchall()]

    def get(self, entry_id: str) -> StoreEntry:
        validate_id(entry_id)
        with self._db() as db:
            row = db.execute("SELECT * FROM entries WHERE id = ?", (entry_id,)).fetchone()
        if row is None:
            raise HwprofError(f"no profile {entry_id!r} in the store at {self.root}")
        return self._row(row)

    def latest(self, kind: str | None = None) -> StoreEntry:
        entries = self.list(kind)
        if not entries:
            raise HwprofError(f"the profile store at {self.root} holds no {kind or 'entries'} yet")
        return entries[0]
