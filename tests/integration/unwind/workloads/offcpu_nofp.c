/* Off-CPU with --call-graph dwarf: blocks in nanosleep from a named caller, built without frame pointers (-O2
 * -fomit-frame-pointer), so only the DWARF unwinder can get from libc's nanosleep back to sleep_in_caller and main.
 * argv[1]: how many 20 ms sleeps (default 10).
 */
#include <stdlib.h>
#include <time.h>

static volatile long slept;

__attribute__((noinline)) static void sleep_in_caller(void) {
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    slept++; /* after the call: no tail call, so the caller's frame is on the stack while it sleeps */
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 10;
    for (int i = 0; i < rounds; i++) sleep_in_caller();
    return slept == rounds ? 0 : 1;
}
