/* The workload of the golden captures: a few functions with distinct stacks, recursion, libc and syscalls
   (kernel frames), and page faults (the group member). Built with frame pointers so -g stacks are whole. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

static volatile unsigned long sink;

__attribute__((noinline)) void leaf(unsigned long n) {
    for (unsigned long i = 0; i < n; i++) sink += i * i;
}

__attribute__((noinline)) void recurse(int depth, unsigned long n) {
    if (depth == 0) { leaf(n); return; }
    recurse(depth - 1, n);
}

__attribute__((noinline)) void touch_pages(int pages) {
    char *p = malloc((size_t)pages * 4096);
    for (int i = 0; i < pages; i++) p[(size_t)i * 4096] = (char)i;
    sink += (unsigned char)p[0];
    free(p);
}

__attribute__((noinline)) void writes(int fd, int n) {
    char buf[256];
    memset(buf, 'x', sizeof buf);
    for (int i = 0; i < n; i++) sink += (unsigned long)write(fd, buf, sizeof buf);
}

__attribute__((noinline)) void probed(int i) { sink += (unsigned long)i; }

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    int fd = open("/dev/null", O_WRONLY);
    for (int r = 0; r < rounds; r++) {
        leaf(20000);
        recurse(r % 7, 10000);
        touch_pages(64);
        writes(fd, 50);
        probed(r);
    }
    close(fd);
    return 0;
}
