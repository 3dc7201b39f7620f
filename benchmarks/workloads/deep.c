/* Deep, varied call stacks on two threads: eight functions call each other by the bits of a counter,
 * 40 to 70 frames deep, so a capture holds many distinct deep stacks (for decoder/report speed). */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;
static double seconds = 5.0;
typedef void (*fn)(unsigned long, int);
static fn table[8];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static void leaf(unsigned long seed) {
    unsigned long x = seed;
    for (int i = 0; i < 2000; i++) x = x * 6364136223846793005UL + 1;
    sink += x;
}

#define STEP(name)                                                                   \
    __attribute__((noinline)) static void name(unsigned long path, int depth) {      \
        if (depth <= 0) { leaf(path); return; }                                     \
        table[path & 7](path >> 3 | path << 61, depth - 1);                          \
        sink++;                                                                      \
    }
STEP(f0) STEP(f1) STEP(f2) STEP(f3) STEP(f4) STEP(f5) STEP(f6) STEP(f7)

static void *worker(void *arg) {
    unsigned long path = (unsigned long)arg;
    double end = now() + seconds;
    while (now() < end) {
        path = path * 2862933555777941757UL + 3037000493UL;
        table[path & 7](path, 40 + (int)(path >> 59) % 31);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) seconds = atof(argv[1]);
    fn fns[8] = {f0, f1, f2, f3, f4, f5, f6, f7};
    for (int i = 0; i < 8; i++) table[i] = fns[i];
    pthread_t t;
    pthread_create(&t, NULL, worker, (void *)12345UL);
    worker((void *)67890UL);
    pthread_join(t, NULL);
    return 0;
}
