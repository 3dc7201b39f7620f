/* Calls write(2) exactly N times (to /dev/null), and no other write: the oracle for syscalls:sys_enter_write. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0) return 2;
    for (long i = 0; i < n; i++)
        if (write(fd, "x", 1) != 1) return 3;
    return 0;
}
