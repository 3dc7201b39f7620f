# hwprof: two entry points for a fresh Debian machine, run as root.
#   make demo   set up a virtualenv, install hwprof, run a short demo of the main job
#   make test   install everything the tests need (apt oracles, pip packages), run the whole suite

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Debian packages: the oracles the tests compare against, compilers for test programs,
# Chromium for browser tests, qemu for the kprobe VM tier; xz, python3.11 and sqlite3 are
# Debian binaries built without frame pointers that the dwarf unwinding tests profile.
APT_TEST_PACKAGES := linux-perf libpfm4 bpftrace binutils llvm elfutils debuginfod gcc g++ make \
	chromium chromium-driver qemu-system-x86 busybox-static cpio python3-venv procps util-linux kmod \
	xz-utils python3.11 sqlite3 clickhouse-server clickhouse-client
APT_DEMO_PACKAGES := gcc make python3-venv procps libpfm4

.PHONY: demo test apt-test apt-demo venv bytecode lint unit integration clean vm-kernel vm-test

venv: $(STAMP)

# An editable install compiles nothing, and where PYTHONDONTWRITEBYTECODE is set (CI images often do) every hwprof
# process would compile its ~60 modules again (~0.2 s of CPU each run). Up-to-date files are skipped.
bytecode: $(STAMP)
	$(PY) -m compileall -q hwprof collectors symbolize web

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

apt-test:
	@dpkg -s $(APT_TEST_PACKAGES) >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_TEST_PACKAGES); }

apt-demo:
	@dpkg -s $(APT_DEMO_PACKAGES) >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_DEMO_PACKAGES); }

demo: apt-demo venv bytecode
	$(PY) demo/run_demo.py

lint: venv
	$(VENV)/bin/ruff check hwprof collectors symbolize web tests benchmarks demo

unit: venv
	$(PY) -m pytest -q tests/unit

integration: apt-test venv
	$(PY) -m pytest -q tests/integration

test: apt-test venv bytecode lint vm-kernel
	$(PY) -m pytest -q -rs tests
	$(MAKE) vm-test

clean:
	rm -rf $(VENV) build *.egg-info

# The VM tier (kprobes): Debian's stock kernel, downloaded and unpacked into the repo's cache, never installed.
# tests/vm/run_vm_tests.py boots it with virtme-ng under qemu TCG and runs the probe tests inside.
VM_KERNEL_DIR := .cache/vm-kernel

vm-kernel: $(VM_KERNEL_DIR)/.extracted

$(VM_KERNEL_DIR)/.extracted:
	mkdir -p $(VM_KERNEL_DIR)
	cd $(VM_KERNEL_DIR) && rm -rf root *.deb && \
		find_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $$2; exit}'; } && \
		pkg=$$(find_pkg); if [ -z "$$pkg" ]; then apt-get update -qq && pkg=$$(find_pkg); fi && \
		test -n "$$pkg" && apt-get download "$$pkg" && dpkg-deb -x "$$pkg"_*.deb root && rm -f ./*.deb
	touch $@

vm-test: apt-test venv vm-kernel
	$(PY) tests/vm/run_vm_tests.py
