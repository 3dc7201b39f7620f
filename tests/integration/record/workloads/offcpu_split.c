/* Ground truth for off-CPU and wall time: two callers that block with a 3:1 split of time, a CPU phase, and a
 * second thread, each measuring itself with CLOCK_MONOTONIC.
 *
 * Thread "main": a CPU phase (spin), then ROUNDS x { caller_long: sleep 30 ms; caller_short: sleep 10 ms }.
 * Thread "helper": alternates a 20 ms spin and a 20 ms sleep.
 * Prints one line per fact, "key value" (nanoseconds), on stdout, after both threads ended:
 *   tid_main N, tid_helper N, long_ns (time inside caller_long's sleeps), short_ns, main_life_ns (from main() to
 *   the end of the rounds), helper_life_ns (from just before pthread_create to the helper's last instruction).
 * The blocking call sits one frame-pointer function (block_in) below each caller, so a frame-pointer walk from
 * libc's (frameless) nanosleep still finds the caller.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static volatile unsigned long sink;

__attribute__((noinline)) static void spin_cpu(long long ns) {
    long long end = now_ns() + ns;
    while (now_ns() < end)
        for (int i = 0; i < 1000; i++) sink += i;
}

__attribute__((noinline)) static long long block_in(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    long long t0 = now_ns();
    nanosleep(&ts, NULL);
    return now_ns() - t0;
}

static long long long_ns, short_ns;

__attribute__((noinline)) static void caller_long(void) { long_ns += block_in(30); }
__attribute__((noinline)) static void caller_short(void) { short_ns += block_in(10); }

static long helper_tid;
static long long helper_created, helper_life;

static void *helper(void *arg) {
    (void)arg;
    helper_tid = syscall(SYS_gettid);
    for (int i = 0; i < 8; i++) {
        spin_cpu(20000000LL);
        block_in(20);
    }
    helper_life = now_ns() - helper_created;
    return NULL;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 10;
    long long t0 = now_ns();
    pthread_t th;
    helper_created = now_ns();
    pthread_create(&th, NULL, helper, NULL);
    spin_cpu(150000000LL);
    for (int i = 0; i < rounds; i++) {
        caller_long();
        caller_short();
    }
    long long main_life = now_ns() - t0;
    pthread_join(th, NULL);
    printf("tid_main %ld\ntid_helper %ld\nlong_ns %lld\nshort_ns %lld\nmain_life_ns %lld\nhelper_life_ns %lld\n",
           (long)getpid(), helper_tid, long_ns, short_ns, main_life, helper_life);
    return 0;
}
