#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <time.h>
__attribute__((noinline)) int work(int x) { asm volatile(""); return x * 3 + 1; }
__attribute__((noinline)) void nap(int ms) { struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L}; nanosleep(&ts, 0); }
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    long s = 0;
    for (long i = 0; i < n; i++) s += work((int)i);
    printf("sum=%ld\n", s);
    return 0;
}
