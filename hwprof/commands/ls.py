"""`hwprof ls`: list the profile store (recordings, stat runs, probe results)."""

from __future__ import annotations

import argparse

EPILOG = """\
examples:
  hwprof ls                     # newest first: id, when, samples, lost, duration, size, complete stacks, target
  hwprof ls --kind record       # recordings only
  hwprof ls --json              # machine-readable
  hwprof ls --rm record-20260101-120000-abcdef   # delete an entry and its cached decodes
  HWPROF_HOME=/data/prof hwprof ls               # another store
"""


class LsCommand:
    name = "ls"
    help = "list the profile store"
    description = "List what the profile store holds ($HWPROF_HOME, default ~/.local/share/hwprof), newest first."
    epilog = EPILOG

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--kind", choices=("record", "stat", "probe"), help="only entries of this kind")
        parser.add_argument("--json", action="store_true", help="one JSON array")
        parser.add_argument("--rm", metavar="ID", action="append", default=[], help="delete these entries")
        parser.add_argument("-n", "--limit", type=int, default=0, metavar="N", help="show the newest N only")
        from hwprof.commands._fleet import add_store_options

        add_store_options(parser)
        parser.add_argument("--time", metavar="START,END", help="with --store: windows in this range (--time=-1h,now)")

    def run(self, args: argparse.Namespace) -> int:
        import json
        import time

        from hwprof.commands._fleet import list_fleet, wants_fleet
        from hwprof.store import ProfileStore
        from hwprof.terminal import printable

        if wants_fleet(args):
            return list_fleet(args)
        store = ProfileStore()
        for entry_id in args.rm:
            store.delete(entry_id)
            print(f"deleted {entry_id}")
        if args.rm:
            return 0
        entries = store.list(args.kind)
        if args.limit > 0:
            entries = entries[: args.limit]
        if args.json:
            print(json.dumps([e.to_json() for e in entries], indent=1))
            return 0
        if not entries:
            print(f"the profile store at {store.root} is empty")
            return 0
        print(f"{'ID':<32} {'CREATED':<19} {'SAMPLES':>9} {'LOST':>6} {'SECONDS':>8} {'SIZE':>9} {'STACKS':>6}  "
              "EVENTS  TARGET")
        for e in entries:
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.created))
            size = f"{e.size / 1e6:.2f}MB" if e.size >= 1e5 else f"{e.size / 1e3:.1f}kB"
            target = e.name + (" " if e.name else "") + (e.target or "")
            quality = f"{100 * e.stack_quality:.0f}%" if e.stack_quality is not None else "-"
            print(f"{e.id:<32} {created:<19} {e.samples:>9,} {e.lost:>6,} {e.duration_ns / 1e9:>8.2f} {size:>9} "
                  f"{quality:>6}  {printable(','.join(e.events)) or '-'}  {printable(target)}")
        return 0


COMMAND = LsCommand()
