/* Syscall-heavy: most time is spent in the kernel, writing to /dev/null. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) void write_loop(int fd) {
    char buf[4096] = {0};
    for (int i = 0; i < 1500000; i++)
        if (write(fd, buf, sizeof buf) < 0) return;
}

int main(void) {
    int fd = open("/dev/null", O_WRONLY);
    write_loop(fd);
    close(fd);
    printf("syscalls done\n");
    return 0;
}
