/* A multi-threaded target for -p/-t: one helper thread exists from the start. Prints "ready", then waits for a
 * line on stdin (the test sends it once hwprof is attached), then starts N more threads. Every helper burns
 * SPIN_MS of its own CPU time (thread CPU clock: the total is (N + 1) x SPIN_MS whatever the load or the number
 * of cores). Prints "done" when all are joined, so a test sees the process finished intact after hwprof left. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double spin_ms;
static pthread_barrier_t go;

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *worker(void *early) {
    if (early) pthread_barrier_wait(&go);
    volatile unsigned long x = 0;
    double end = cpu_now() + spin_ms / 1000.0;
    while (cpu_now() < end)
        for (int i = 0; i < 10000; i++) x += i;
    return NULL;
}

int main(int argc, char **argv) {
    spin_ms = argc > 1 ? atof(argv[1]) : 300;
    int n = argc > 2 ? atoi(argv[2]) : 2;
    pthread_t first, rest[64];
    char line[16];
    pthread_barrier_init(&go, NULL, 2);
    pthread_create(&first, NULL, worker, (void *)1);
    printf("ready\n");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) return 2;
    pthread_barrier_wait(&go);
    for (int i = 0; i < n && i < 64; i++) pthread_create(&rest[i], NULL, worker, NULL);
    for (int i = 0; i < n && i < 64; i++) pthread_join(rest[i], NULL);
    pthread_join(first, NULL);
    printf("done\n");
    return 0;
}
