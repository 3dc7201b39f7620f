/* nap() sleeps 1 ms five times, 5 ms three times, 25 ms twice: a known latency mix.
 * Each call's own duration (CLOCK_MONOTONIC around the call) goes to stderr, one per line, so a test can check
 * the probe's numbers against the truth even when a busy machine stretches the sleeps. */
#include <stdio.h>
#include <time.h>
__attribute__((noinline)) void nap(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, 0);
}
static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}
int main(void) {
    int mix[] = {1, 1, 1, 1, 1, 5, 5, 5, 25, 25};
    struct timespec warm = {0, 1000};
    nanosleep(&warm, 0); /* resolve the PLT entry now, so the first nap() is not also a symbol lookup */
    for (int i = 0; i < 10; i++) {
        long start = now_ns();
        nap(mix[i]);
        fprintf(stderr, "%ld\n", now_ns() - start);
    }
    puts("done");
    return 0;
}
