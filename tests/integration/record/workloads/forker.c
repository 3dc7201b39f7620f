/* The parent forks a child that does the work in child_work(); the parent waits. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile unsigned long sink;

__attribute__((noinline)) void child_work(void) {
    unsigned long x = 1;
    for (unsigned long i = 0; i < 300000000UL; i++) x = x * 6364136223846793005UL + 1;
    sink = x;
}

int main(void) {
    pid_t pid = fork();
    if (pid == 0) {
        child_work();
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("forker done %d\n", WEXITSTATUS(status));
    return 0;
}
