"""hwprof's own ctypes binding to perf_event_open(2): attr, syscall, ioctls, read formats."""
