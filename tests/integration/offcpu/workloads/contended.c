/* Ground truth for lock contention: "holder" takes a mutex and sleeps 20 ms while holding it, ROUNDS times;
 * "waiter" waits 3 ms, then blocks in wait_for_lock() until the holder lets go. The waiter measures its time
 * inside pthread_mutex_lock with CLOCK_MONOTONIC. Prints "key value" lines: tid_waiter, tid_holder, wait_ns.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t turn;
static int rounds = 15;
static long waiter_tid, holder_tid;
static long long wait_ns;

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
    waiter_tid = syscall(SYS_gettid);
    for (int i = 0; i < rounds; i++) {
        pthread_barrier_wait(&turn);  /* the holder has the lock now */
        sleep_ms(3);
        wait_for_lock();
        pthread_barrier_wait(&turn);
    }
    return NULL;
}

static void *holder(void *arg) {
    (void)arg;
    holder_tid = syscall(SYS_gettid);
    for (int i = 0; i < rounds; i++) {
        pthread_mutex_lock(&lock);
        pthread_barrier_wait(&turn);
        sleep_ms(20);
        pthread_mutex_unlock(&lock);
        pthread_barrier_wait(&turn);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) rounds = atoi(argv[1]);
    pthread_barrier_init(&turn, NULL, 2);
    pthread_t a, b;
    pthread_create(&a, NULL, holder, NULL);
    pthread_create(&b, NULL, waiter, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("tid_waiter %ld\ntid_holder %ld\nwait_ns %lld\n", waiter_tid, holder_tid, wait_ns);
    return 0;
}
