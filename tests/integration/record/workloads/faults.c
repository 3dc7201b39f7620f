/* Touches fresh pages as fast as it can: a flood of page faults (for the lost-records test). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
    size_t mb = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
    for (int round = 0; round < 4; round++) {
        size_t len = mb << 20;
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 1;
        for (size_t i = 0; i < len; i += 4096) p[i] = 1;
        munmap(p, len);
    }
    printf("faults done\n");
    return 0;
}
