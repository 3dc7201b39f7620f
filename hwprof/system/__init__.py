"""hwprof's one layer over the operating system (core; no perf events here).

- launch: start a command held before exec; a shell's error text and exit codes (127, 126, 128 + N).
- stopping: SIGINT/SIGTERM/SIGHUP as a stop request on a wakeup fd, for every poll/select loop.
- procfs: /proc readers (maps, threads, names, start times).
- cpus: CPU lists as the kernel writes them, online CPUs.
- memory: freed heap pages back to the kernel after a burst (glibc malloc_trim).
"""
