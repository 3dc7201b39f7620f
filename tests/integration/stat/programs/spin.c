/* Burns MS milliseconds, then exits with status CODE (default 0). MODE "cpu" (default) counts the process's
 * CPU time, so task-clock is MS however loaded the machine is; "wall" counts elapsed time (interval tests). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

static clockid_t clock_id = CLOCK_PROCESS_CPUTIME_ID;

static double now(void) {
    struct timespec ts;
    clock_gettime(clock_id, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    double ms = argc > 1 ? atof(argv[1]) : 200;
    int code = argc > 2 ? atoi(argv[2]) : 0;
    if (argc > 3 && strcmp(argv[3], "wall") == 0) clock_id = CLOCK_MONOTONIC;
    volatile unsigned long x = 0;
    double end = now() + ms / 1000.0;
    while (now() < end)
        for (int i = 0; i < 10000; i++) x += i;
    return code;
}
