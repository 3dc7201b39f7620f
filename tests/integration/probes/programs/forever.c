/* A long-running target (until killed): calls work() in rounds and prints each round's checksum, which must never
 * change. No round limit: under an emulated CPU a test can take minutes. */
#include <stdio.h>
#include <time.h>
__attribute__((noinline)) int work(int x) { asm volatile(""); return x * 3 + 1; }
int main(void) {
    struct timespec ts = {0, 20 * 1000000L};
    for (long round = 0;; round++) {
        long s = 0;
        for (int i = 0; i < 100; i++) s += work(i);
        printf("round %ld sum %ld\n", round, s);
        fflush(stdout);
        nanosleep(&ts, 0);
    }
    return 0;
}
