/* A multi-threaded target for -p: one helper thread exists from the start; after DELAY_MS the main thread
 * starts N more. Every helper then burns SPIN_MS of its own CPU time (thread CPU clock, so the total is
 * (N + 1) x SPIN_MS whatever the number of cores). Prints "ready" at start and "done" when all joined,
 * so a test sees that the process finished intact after hwprof detached. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double delay_ms, spin_ms;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void spin(double ms) {
    volatile unsigned long x = 0;
    double end = now() + ms / 1000.0;
    while (now() < end)
        for (int i = 0; i < 10000; i++) x += i;
}

static void *early(void *arg) {
    (void)arg;
    usleep((useconds_t)(delay_ms * 1000));
    spin(spin_ms);
    return NULL;
}

static void *late(void *arg) {
    (void)arg;
    spin(spin_ms);
    return NULL;
}

int main(int argc, char **argv) {
    delay_ms = argc > 1 ? atof(argv[1]) : 500;
    spin_ms = argc > 2 ? atof(argv[2]) : 300;
    int n = argc > 3 ? atoi(argv[3]) : 2;
    pthread_t first, rest[64];
    pthread_create(&first, NULL, early, NULL);
    printf("ready\n");
    fflush(stdout);
    usleep((useconds_t)(delay_ms * 1000));
    for (int i = 0; i < n && i < 64; i++) pthread_create(&rest[i], NULL, late, NULL);
    for (int i = 0; i < n && i < 64; i++) pthread_join(rest[i], NULL);
    pthread_join(first, NULL);
    printf("done\n");
    return 0;
}
