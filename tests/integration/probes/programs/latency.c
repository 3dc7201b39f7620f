/* nap() sleeps 1 ms five times, 5 ms three times, 25 ms twice: a known latency mix. */
#include <stdio.h>
#include <time.h>
__attribute__((noinline)) void nap(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, 0);
}
int main(void) {
    int mix[] = {1, 1, 1, 1, 1, 5, 5, 5, 25, 25};
    for (int i = 0; i < 10; i++) nap(mix[i]);
    puts("done");
    return 0;
}
