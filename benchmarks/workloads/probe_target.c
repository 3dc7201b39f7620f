/* benchmarks/probe_overhead.py's target: hit() called N times. Prints the loop's wall and CPU time in ns
 * (CPU time includes the kernel's uprobe handling in this thread, which is the overhead being compared). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
__attribute__((noinline)) int hit(int x) { asm volatile(""); return x + 1; }
static long ns(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    long wall = ns(CLOCK_MONOTONIC), cpu = ns(CLOCK_PROCESS_CPUTIME_ID), s = 0;
    for (long i = 0; i < n; i++) s += hit((int)i);
    printf("wall_ns=%ld cpu_ns=%ld sum=%ld\n", ns(CLOCK_MONOTONIC) - wall, ns(CLOCK_PROCESS_CPUTIME_ID) - cpu, s);
    return 0;
}
