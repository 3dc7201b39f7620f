/* A context-switch-heavy workload: two threads pass a byte back and forth through two pipes ROUNDS times, so
 * each round blocks each thread once (about two voluntary switches per round). Prints
 * "elapsed=S cpu=S switches=N rate=N/s": its own wall time, its CPU time and context switches (getrusage). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int ab[2], ba[2];
static long rounds = 100000;

static void *echo(void *arg) {
    (void)arg;
    char c;
    for (long i = 0; i < rounds; i++) {
        if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1) exit(2);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) rounds = atol(argv[1]);
    if (pipe(ab) || pipe(ba)) return 2;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t th;
    pthread_create(&th, NULL, echo, NULL);
    char c = 'x';
    for (long i = 0; i < rounds; i++) {
        if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1) return 2;
    }
    pthread_join(th, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double elapsed = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    long switches = ru.ru_nvcsw + ru.ru_nivcsw;
    printf("elapsed=%.6f cpu=%.6f switches=%ld rate=%.0f\n", elapsed, cpu, switches, switches / elapsed);
    return 0;
}
