/* Exactly N write(2) calls to /dev/null and nothing else that writes. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100;
    int fd = open("/dev/null", O_WRONLY);
    for (long i = 0; i < n; i++)
        if (write(fd, "x", 1) != 1) return 1;
    return 0;
}
