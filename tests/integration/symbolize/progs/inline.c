/* -O2 -g test program: always-inline chains three deep, static helpers, a dispatch table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline __attribute__((always_inline)) unsigned mix(unsigned x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    return x;
}

static inline __attribute__((always_inline)) unsigned mix_twice(unsigned x, unsigned salt) {
    return mix(mix(x) + salt);
}

static inline __attribute__((always_inline)) unsigned fold_block(const unsigned *v, size_t n) {
    unsigned acc = 0;
    for (size_t i = 0; i < n; i++)
        acc += mix_twice(v[i], (unsigned)i);
    return acc;
}

__attribute__((noinline)) unsigned checksum(const unsigned *v, size_t n) {
    return fold_block(v, n) ^ fold_block(v, n / 2);
}

__attribute__((noinline)) static int compare_desc(const void *a, const void *b) {
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return (x < y) - (x > y);
}

__attribute__((noinline)) void sort_values(unsigned *v, size_t n) {
    qsort(v, n, sizeof *v, compare_desc);
}

typedef unsigned (*stage_fn)(unsigned *, size_t);

static unsigned stage_fill(unsigned *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        v[i] = mix((unsigned)i * 2654435761U);
    return (unsigned)n;
}

static unsigned stage_sum(unsigned *v, size_t n) {
    return checksum(v, n);
}

static unsigned stage_sort(unsigned *v, size_t n) {
    sort_values(v, n);
    return v[0];
}

static const stage_fn stages[] = {stage_fill, stage_sum, stage_sort, stage_sum};

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    unsigned *v = calloc(n ? n : 1, sizeof *v);
    unsigned total = 0;
    for (size_t s = 0; s < sizeof stages / sizeof stages[0]; s++)
        total += stages[s](v, n);
    printf("%u\n", total);
    free(v);
    return 0;
}
