"""perf's -vv attr block, byte for byte (expected text captured from perf 6.1 `perf stat -vv -e page-faults:u`)."""

from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.attr_format import format_attr, format_open

PERF_PAGE_FAULTS_U = """\
------------------------------------------------------------
perf_event_attr:
  type                             1
  size                             128
  config                           0x2
  sample_type                      IDENTIFIER
  read_format                      TOTAL_TIME_ENABLED|TOTAL_TIME_RUNNING
  disabled                         1
  inherit                          1
  exclude_kernel                   1
  exclude_hv                       1
  enable_on_exec                   1
  exclude_guest                    1
------------------------------------------------------------
"""


def test_counting_attr_as_perf_prints_it():
    attr = PerfEventAttr(type=1, config=2, sample_type=1 << 16, read_format=3, disabled=1, inherit=1,
                         exclude_kernel=1, exclude_hv=1, enable_on_exec=1, exclude_guest=1)
    attr.size = 128
    assert format_attr(attr) == PERF_PAGE_FAULTS_U


def test_sampling_attr_uses_perfs_union_names_and_bit_order():
    # perf record -vv -e cpu-clock -c 1000 on perf 6.1: '{ sample_period, sample_freq }   1000',
    # 'sample_type IP|TID|TIME', 'read_format ID|LOST'
    attr = PerfEventAttr(type=1, sample_period=1000, sample_type=0b111, read_format=(1 << 2) | (1 << 4),
                         config1=0x40, precise_ip=2)
    text = format_attr(attr)
    assert "  { sample_period, sample_freq }   1000\n" in text
    assert "  sample_type                      IP|TID|TIME\n" in text
    assert "  read_format                      ID|LOST\n" in text
    assert "  { bp_addr, config1 }             0x40\n" in text
    assert text.index("precise_ip") < text.index("{ bp_addr, config1 }")
    assert "config " not in text  # zero fields are not printed


def test_syscall_lines():
    assert format_open(123, -1, -1, 8, 3) == "sys_perf_event_open: pid 123  cpu -1  group_fd -1  flags 0x8 = 3\n"
    assert format_open(123, 0, 5, 8, None, 2) == ("sys_perf_event_open: pid 123  cpu 0  group_fd 5  flags 0x8\n"
                                                  "sys_perf_event_open failed, error -2\n")
