/* A tiny "JIT": copies a counting loop as machine code into anonymous executable memory, writes
 * /tmp/perf-PID.map naming it, runs it for a second (however fast the machine), then removes the map file (as a
 * JIT's exit might). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int keep = argc > 1;
    /* mov rcx, imm64; loop: dec rcx; jnz loop; ret */
    unsigned char code[] = {0x48, 0xB9, 0, 0, 0, 0, 0, 0, 0, 0, 0x48, 0xFF, 0xC9, 0x75, 0xFB, 0xC3};
    uint64_t count = 100000000ULL;
    memcpy(code + 2, &count, 8);
    unsigned char *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return 1;
    memcpy(mem, code, sizeof code);
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", getpid());
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f, "%lx %zx jitted_loop\n", (unsigned long)mem, sizeof code);
    fclose(f);
    void (*fn)(void) = (void (*)(void))mem;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        fn();
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 1000000000L);
    if (!keep) unlink(path);
    printf("jit done\n");
    return 0;
}
