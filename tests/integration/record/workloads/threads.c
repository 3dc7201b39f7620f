/* Two busy threads for a given number of seconds; prints a line when both finished. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double seconds = 3.0;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static unsigned long spin_worker(unsigned long seed) {
    double end = now() + seconds;
    unsigned long x = seed, loops = 0;
    while (now() < end) {
        for (int i = 0; i < 10000; i++) x = x * 6364136223846793005UL + 1;
        loops++;
    }
    return loops + (x & 1);
}

static void *thread_main(void *arg) {
    unsigned long *out = arg;
    *out = spin_worker(*out);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) seconds = atof(argv[1]);
    pthread_t t;
    unsigned long a = 1, b = 2;
    printf("threads started\n");
    fflush(stdout);
    pthread_create(&t, NULL, thread_main, &a);
    b = spin_worker(b);
    pthread_join(t, NULL);
    printf("threads done %d\n", a > 0 && b > 0);
    return 0;
}
