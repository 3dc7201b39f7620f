"""perf_event_attr layout: every field at the offset the uapi header gives (perf-abi.md section 1)."""

import ctypes

import pytest

from hwprof.perf.attr import FLAG_BITS, PerfEventAttr

OFFSETS = {
    "type": 0, "size": 4, "config": 8, "sample_period": 16, "sample_type": 24, "read_format": 32,
    "wakeup_events": 48, "bp_type": 52, "config1": 56, "config2": 64, "branch_sample_type": 72,
    "sample_regs_user": 80, "sample_stack_user": 88, "clockid": 92, "sample_regs_intr": 96,
    "aux_watermark": 104, "sample_max_stack": 108, "aux_sample_size": 112, "sig_data": 120, "config3": 128,
}  # fmt: skip


@pytest.mark.parametrize("field,offset", OFFSETS.items())
def test_field_offsets(field, offset):
    assert getattr(PerfEventAttr, field).offset == offset


def test_size_is_abi_version_8():
    assert ctypes.sizeof(PerfEventAttr) == 136
    assert PerfEventAttr().size == 136


@pytest.mark.parametrize("bit,name", [(0, "disabled"), (5, "exclude_kernel"), (18, "sample_id_all"),
                                      (23, "mmap2"), (37, "sigtrap")])
def test_flag_bits(bit, name):
    attr = PerfEventAttr(**{name: 1})
    flags = int.from_bytes(attr.to_bytes()[40:48], "little")
    assert flags == 1 << bit
    assert FLAG_BITS.index(name) + (1 if FLAG_BITS.index(name) > FLAG_BITS.index("precise_ip") else 0) == bit


def test_precise_ip_is_two_bits():
    attr = PerfEventAttr(precise_ip=3)
    assert int.from_bytes(attr.to_bytes()[40:48], "little") == 3 << 15


def test_round_trip_and_short_attrs():
    attr = PerfEventAttr(type=3, config=0x10002, sample_freq=999, freq=1, exclude_hv=1, config2=7)
    again = PerfEventAttr.from_bytes(attr.to_bytes())
    assert again.nonzero_fields() == attr.nonzero_fields()
    old = PerfEventAttr.from_bytes(attr.to_bytes(64))  # ABI version 0 file: later fields read as zero
    assert old.config2 == 0 and old.config == 0x10002 and old.sample_freq == 999
