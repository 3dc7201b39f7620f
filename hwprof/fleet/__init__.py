"""The fleet backend: profiles of many hosts in ClickHouse (issue 14).

Modules, one concern each:
    url          the `clickhouse://USER:PASSWORD@HOST:PORT/DB` store URL
    schema       tables, the schema version and the migrations between versions
    window       one capture window of one host turned into rows: functions, frames and stacks by hash, samples
                 aggregated per (process, stack) with their labels
    clickhouse   the store: connect, migrate, idempotent inserts, and the queries (merge, filters, top functions,
                 series over time) that run inside ClickHouse
    spool        windows kept on local disk (size-capped) while the backend is away
    localserver  a throwaway ClickHouse server in a temporary directory (tests, benchmarks, trying it out)

The core never imports collectors; the agent's capture loop lives in hwprof.collectors.agent.
"""

import os

# clickhouse_driver builds a Date lookup table for 1900-2299 when it is imported (its docs: ~40 MB and a noticeable
# time) unless told to fill it as dates are met (its documented CLICKHOUSE_DRIVER_LASY_DATE_LUT, spelled so): an
# agent would hold that table for days. Every import of clickhouse_driver goes through this package.
os.environ.setdefault("CLICKHOUSE_DRIVER_LASY_DATE_LUT", "1")
