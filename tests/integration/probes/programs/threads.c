#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) int work(int x) { asm volatile(""); return x * 3 + 1; }
static void *run(void *arg) { long n = (long)arg; long s = 0; for (long i = 0; i < n; i++) s += work(i); return (void *)s; }
int main(void) {
    pthread_t t[3];
    long n[3] = {100, 200, 300};
    for (int i = 0; i < 3; i++)
        if (pthread_create(&t[i], 0, run, (void *)n[i]) != 0) {
            perror("pthread_create");
            return 3;
        }
    for (int i = 0; i < 3; i++) pthread_join(t[i], 0);
    run((void *)50);
    puts("ok");
    return 0;
}
