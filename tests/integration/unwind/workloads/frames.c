/* Stacks the unwinder must walk on real code built without frame pointers: a thread's (ends at clone3), a signal
 * handler's (through __restore_rt into the interrupted loop), and the vdso's (clock_gettime). */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static volatile double sink;

__attribute__((noinline)) static void spin(long n) {
    double x = 0;
    for (long i = 0; i < n; i++) x += (double)i * 1e-9;
    sink += x;
}
__attribute__((noinline)) static void in_thread(void) { spin(150000000L); }
static void *thread_main(void *arg) { (void)arg; in_thread(); return NULL; }

__attribute__((noinline)) static void on_alarm(int sig) { (void)sig; spin(300000L); }
__attribute__((noinline)) static void interrupted_loop(void) {
    for (int i = 0; i < 150; i++) spin(1000000L);
}
__attribute__((noinline)) static void ask_the_clock(void) {
    struct timespec ts;
    for (long i = 0; i < 5000000L; i++) clock_gettime(CLOCK_MONOTONIC, &ts);
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 5000}, {0, 5000}};
    setitimer(ITIMER_REAL, &it, NULL);
    interrupted_loop();
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    ask_the_clock();
    pthread_join(t, NULL);
    return 0;
}
