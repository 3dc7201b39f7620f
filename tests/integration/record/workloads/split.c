/* A known 3:1 split of CPU time between two callers of one hot function.
 * Work is counted in loop iterations, not time, so the split holds on a busy machine too. */
#include <stdio.h>
#include <stdlib.h>

static volatile unsigned long sink;

__attribute__((noinline)) void hot(unsigned long n) {
    unsigned long x = sink;
    for (unsigned long i = 0; i < n; i++)
        x = x * 6364136223846793005UL + 1442695040888963407UL;
    sink = x;
}

__attribute__((noinline)) void caller_a(unsigned long n) { hot(3 * n); sink++; }  /* no tail call */
__attribute__((noinline)) void caller_b(unsigned long n) { hot(n); sink++; }

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], NULL, 10) : 400;
    for (unsigned long r = 0; r < rounds; r++) {
        caller_a(250000);
        caller_b(250000);
    }
    printf("split done %lu\n", (unsigned long)(sink & 1));
    return 0;
}
