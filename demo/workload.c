/* The demo workload: one hot function reached from two callers with a 3:1 split of work,
 * plus a burst of page faults and write(2) calls, so every view of hwprof has something to show. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* hot() calls sink() so it is not a leaf: gcc gives leaf functions no frame even with -fno-omit-frame-pointer,
 * and a frame-pointer unwind from a frameless leaf skips its caller (run_demo.py also turns off shrink-wrapping,
 * which would set the frame up only after the loop). */
__attribute__((noinline)) static uint64_t sink(uint64_t x) {
    __asm__ volatile("" : "+r"(x));
    return x;
}

__attribute__((noinline)) static uint64_t hot(uint64_t n, uint64_t seed) {
    uint64_t x = seed;
    for (uint64_t i = 0; i < n; i++)
    {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        __asm__ volatile("" : "+r"(x)); /* keep the loop: the demo needs real work */
    }
    return sink(x);
}

/* The '^ n' after each call keeps it a real call (no tail call), so the caller stays in the stack. */
__attribute__((noinline)) static uint64_t busy_caller(uint64_t n) { return hot(3 * n, 1) ^ n; }
__attribute__((noinline)) static uint64_t light_caller(uint64_t n) { return hot(n, 2) ^ n; }

__attribute__((noinline)) static size_t touch_memory(size_t mib) {
    char *p = malloc(mib << 20);
    if (!p) return 0;
    memset(p, 1, mib << 20);
    size_t sum = 0;
    for (size_t i = 0; i < (mib << 20); i += 4096) sum += (size_t)p[i];
    free(p);
    return sum;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    uint64_t rounds = (uint64_t)(seconds * 100), acc = 0;
    for (uint64_t r = 0; r < rounds; r++) {
        acc += busy_caller(1500000);
        acc += light_caller(1500000);
        acc += touch_memory(4);
        if (write(STDERR_FILENO, "", 0) < 0) return 1;
    }
    printf("demo workload done: %llx\n", (unsigned long long)acc);
    return 0;
}
