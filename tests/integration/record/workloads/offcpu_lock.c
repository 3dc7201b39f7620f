/* Ground truth for lock contention: "holder" takes a mutex and sleeps 20 ms while holding it, ROUNDS times;
 * "waiter" waits 3 ms after the holder took it, then blocks in wait_for_lock() until the holder lets go. The
 * waiter measures its time inside pthread_mutex_lock with CLOCK_MONOTONIC. The two take turns through pipes, not
 * futexes, so the waiter's only futex waits are the contended mutex. Prints "key value" lines: tid_waiter,
 * tid_holder, wait_ns, waiter_life_ns.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int go[2], back[2];
static int rounds = 15;
static long waiter_tid, holder_tid;
static long long wait_ns, waiter_life;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(long ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

__attribute__((noinline)) static void wait_for_lock(void) {
    long long t0 = now_ns();
    pthread_mutex_lock(&lock);
    wait_ns += now_ns() - t0;
    pthread_mutex_unlock(&lock);
}

static void *waiter(void *arg) {
    (void)arg;
    long long t0 = now_ns();
    char c;
    waiter_tid = syscall(SYS_gettid);
    for (int i = 0; i < rounds; i++) {
        if (read(go[0], &c, 1) != 1) exit(2);  /* the holder has the lock now */
        sleep_ms(3);
        wait_for_lock();
        if (write(back[1], &c, 1) != 1) exit(2);
    }
    waiter_life = now_ns() - t0;
    return NULL;
}

static void *holder(void *arg) {
    (void)arg;
    char c = 'x';
    holder_tid = syscall(SYS_gettid);
    for (int i = 0; i < rounds; i++) {
        pthread_mutex_lock(&lock);
        if (write(go[1], &c, 1) != 1) exit(2);
        sleep_ms(20);
        pthread_mutex_unlock(&lock);
        if (read(back[0], &c, 1) != 1) exit(2);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) rounds = atoi(argv[1]);
    if (pipe(go) || pipe(back)) return 2;
    pthread_t a, b;
    pthread_create(&a, NULL, holder, NULL);
    pthread_create(&b, NULL, waiter, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("tid_waiter %ld\ntid_holder %ld\nwait_ns %lld\nwaiter_life_ns %lld\n", waiter_tid, holder_tid, wait_ns,
           waiter_life);
    return 0;
}
