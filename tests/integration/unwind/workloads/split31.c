/* A known 3:1 split between two callers of one hot function, built -O2 -fomit-frame-pointer for the tests:
 * only CFI can tell caller_a from caller_b. */
#include <stdlib.h>

__attribute__((noinline)) double work(long n) {
    double x = 0;
    for (long i = 0; i < n; i++) x += (double)i * 1e-9 * (i & 7);
    return x;
}
__attribute__((noinline)) double caller_a(long n) { double r = work(n); __asm__ volatile("" ::: "memory"); return r + 1; }
__attribute__((noinline)) double caller_b(long n) { double r = work(n); __asm__ volatile("" ::: "memory"); return r + 2; }

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 200;
    double s = 0;
    for (long r = 0; r < rounds; r++) {
        s += caller_a(3000000);
        s += caller_a(3000000);
        s += caller_a(3000000);
        s += caller_b(3000000);
    }
    return s == 42;
}
