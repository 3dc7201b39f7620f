// A C++ function probed by its demangled name.
#include <cstdio>
namespace shapes {
__attribute__((noinline)) int area(int w, int h) { asm volatile(""); return w * h; }
}
int main() {
    long s = 0;
    for (int i = 0; i < 42; i++) s += shapes::area(i, 2);
    std::printf("%ld\n", s);
    return 0;
}
