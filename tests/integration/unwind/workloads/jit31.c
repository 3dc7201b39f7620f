/* A small JIT for the tests: it copies a function into executable anonymous memory and describes it in
 * /tmp/jit-PID.dump (perf's jitdump format) as Node, the JVM agents and CPython 3.13 do: a CODE_LOAD record with the
 * code, preceded by a CODE_UNWINDING_INFO record with the .eh_frame + .eh_frame_hdr it writes for it (omitted with
 * argv[2] = "nounwind"). Then main -> caller_a / caller_b (3:1) -> JIT code -> native callback, in a hot loop.
 * Usage: jit31 ROUNDS [unwind|nounwind] [DIR]: the jitdump goes to DIR (default /tmp; Node writes its own into the
 * working directory); its path is printed.
 *
 * The copied function keeps a frame without a frame pointer (two pushes and a sub, locals at rsp), so only its CFI
 * can find its caller; the native code is built -O2 -fomit-frame-pointer by the tests. */
#define _GNU_SOURCE
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* long jit_template(long n, long (*callback)(long)): sum of callback(n..1), plus some work of its own per call. */
__asm__(".text\n"
        ".globl jit_template_start\n"
        "jit_template_start:\n"
        "  push %rbx\n"
        "jit_after_push_rbx:\n"
        "  push %r12\n"
        "jit_after_push_r12:\n"
        "  sub $40, %rsp\n"
        "jit_after_sub:\n"
        "  mov %rdi, %rbx\n"
        "  mov %rsi, %r12\n"
        "  movq $0, 8(%rsp)\n"
        "1:\n"
        "  mov %rbx, %rdi\n"
        "  call *%r12\n"
        "  add %rax, 8(%rsp)\n"
        "  mov $300, %ecx\n"
        "2:\n"
        "  imul %rcx, %rax\n"
        "  add %rax, 16(%rsp)\n"
        "  dec %ecx\n"
        "  jnz 2b\n"
        "  dec %rbx\n"
        "  jnz 1b\n"
        "  mov 8(%rsp), %rax\n"
        "  add $40, %rsp\n"
        "jit_after_add:\n"
        "  pop %r12\n"
        "jit_after_pop_r12:\n"
        "  pop %rbx\n"
        "jit_after_pop_rbx:\n"
        "  ret\n"
        ".globl jit_template_end\n"
        "jit_template_end:\n");
extern const unsigned char jit_template_start[], jit_after_push_rbx[], jit_after_push_r12[], jit_after_sub[],
    jit_after_add[], jit_after_pop_r12[], jit_after_pop_rbx[], jit_template_end[];

typedef long (*jitted_fn)(long, long (*)(long));

__attribute__((noinline)) long hot_native(long i) {
    long x = i;
    for (int k = 0; k < 200; k++) x = x * 6364136223846793005L + 1442695040888963407L;
    return x & 1;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);  /* perf record -k 1 (CLOCK_MONOTONIC) for perf inject --jit */
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

struct buffer { unsigned char data[512]; size_t len; };

static void put(struct buffer *b, const void *p, size_t n) { memcpy(b->data + b->len, p, n); b->len += n; }
static void put_u8(struct buffer *b, uint8_t v) { put(b, &v, 1); }
static void put_u32(struct buffer *b, uint32_t v) { put(b, &v, 4); }
static void put_advance(struct buffer *b, const unsigned char *from, const unsigned char *to) {
    put_u8(b, 0x02);  /* DW_CFA_advance_loc1 */
    put_u8(b, (uint8_t)(to - from));
}
static void put_cfa_offset(struct buffer *b, uint8_t off) { put_u8(b, 0x0e); put_u8(b, off); }

/* .eh_frame (CIE + one FDE) then .eh_frame_hdr, placed (as perf's genelf.c does) right after the code rounded up
 * to 8 bytes: the pc-relative pointers below count on that. */
static size_t build_unwinding(struct buffer *u, size_t code_size, size_t *hdr_size) {
    size_t aligned = (code_size + 7) & ~(size_t)7;
    /* CIE: zR, code align 1, data align -8, ra = r16, FDE pointers pcrel|sdata4; CFA = rsp+8, ra at cfa-8 */
    static const unsigned char cie[] = {0x14, 0, 0, 0, 0, 0, 0, 0, 1, 'z', 'R', 0, 1, 0x78, 0x10, 1, 0x1b,
                                        0x0c, 0x07, 0x08, 0x90, 0x01, 0, 0};
    put(u, cie, sizeof cie);
    size_t fde = u->len;
    put_u32(u, 0);                                     /* length, patched below */
    put_u32(u, (uint32_t)(fde + 4));                   /* back to the CIE */
    put_u32(u, (uint32_t)(-(int32_t)(aligned + fde + 8)));  /* pc_begin: the code, pc-relative */
    put_u32(u, (uint32_t)code_size);
    put_u8(u, 0);                                      /* augmentation data length */
    put_advance(u, jit_template_start, jit_after_push_rbx);
    put_cfa_offset(u, 16);
    put_u8(u, 0x83); put_u8(u, 2);                     /* rbx at cfa-16 */
    put_advance(u, jit_after_push_rbx, jit_after_push_r12);
    put_cfa_offset(u, 24);
    put_u8(u, 0x8c); put_u8(u, 3);                     /* r12 at cfa-24 */
    put_advance(u, jit_after_push_r12, jit_after_sub);
    put_cfa_offset(u, 64);
    put_advance(u, jit_after_sub, jit_after_add);
    put_cfa_offset(u, 24);
    put_advance(u, jit_after_add, jit_after_pop_r12);
    put_cfa_offset(u, 16);
    put_advance(u, jit_after_pop_r12, jit_after_pop_rbx);
    put_cfa_offset(u, 8);
    while ((u->len - fde) % 8) put_u8(u, 0);           /* DW_CFA_nop */
    uint32_t fde_len = (uint32_t)(u->len - fde - 4);
    memcpy(u->data + fde, &fde_len, 4);
    size_t eh_frame_size = u->len;
    /* .eh_frame_hdr: version 1, eh_frame_ptr pcrel|sdata4, fde_count udata4, table datarel|sdata4 */
    put_u8(u, 1); put_u8(u, 0x1b); put_u8(u, 0x03); put_u8(u, 0x3b);
    put_u32(u, (uint32_t)(-(int32_t)(eh_frame_size + 4)));
    put_u32(u, 1);
    put_u32(u, (uint32_t)(-(int32_t)(aligned + eh_frame_size)));
    put_u32(u, (uint32_t)((int32_t)fde - (int32_t)eh_frame_size));
    *hdr_size = u->len - eh_frame_size;
    return u->len;
}

struct record_prefix { uint32_t id, total_size; uint64_t timestamp; };

static jitted_fn jit_compile(int with_unwinding, const char *dir) {
    size_t code_size = (size_t)(jit_template_end - jit_template_start);
    unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) { perror("mmap"); exit(1); }
    memcpy(code + 64, jit_template_start, code_size);  /* not at the page start: offsets must count */
    mprotect(code, 4096, PROT_READ | PROT_EXEC);
    jitted_fn fn = (jitted_fn)(void *)(code + 64);

    char path[4096];
    snprintf(path, sizeof path, "%s/jit-%d.dump", dir, getpid());
    printf("%s\n", path);
    fflush(stdout);
    FILE *f = fopen(path, "w+");
    if (!f) { perror(path); exit(1); }
    struct { uint32_t magic, version, total_size, elf_mach, pad1, pid; uint64_t timestamp, flags; } header = {
        0x4A695444, 1, 40, EM_X86_64, 0, (uint32_t)getpid(), now_ns(), 0};
    fwrite(&header, sizeof header, 1, f);
    fflush(f);
    /* the marker perf (and hwprof) find the file by: an executable mapping of it */
    void *marker = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fileno(f), 0);
    if (marker == MAP_FAILED) { perror("mmap jitdump"); exit(1); }

    if (with_unwinding) {
        struct buffer u = {.len = 0};
        size_t hdr_size;
        size_t size = build_unwinding(&u, code_size, &hdr_size);
        size_t padded = (size + 7) & ~(size_t)7;
        struct record_prefix p = {4, (uint32_t)(sizeof p + 24 + padded), now_ns()};
        uint64_t sizes[3] = {size, hdr_size, padded};
        fwrite(&p, sizeof p, 1, f);
        fwrite(sizes, sizeof sizes, 1, f);
        memset(u.data + size, 0, padded - size);
        fwrite(u.data, padded, 1, f);
    }
    static const char name[] = "jitted_loop";
    struct { uint32_t pid, tid; uint64_t vma, code_addr, code_size, code_index; } load = {
        (uint32_t)getpid(), (uint32_t)getpid(), (uint64_t)fn, (uint64_t)fn, code_size, 1};
    struct record_prefix p = {0, (uint32_t)(sizeof p + sizeof load + sizeof name + code_size), now_ns()};
    fwrite(&p, sizeof p, 1, f);
    fwrite(&load, sizeof load, 1, f);
    fwrite(name, sizeof name, 1, f);
    fwrite(fn, code_size, 1, f);
    fclose(f);
    return fn;
}

__attribute__((noinline)) long caller_a(jitted_fn fn, long n) {
    long r = fn(n, hot_native);
    __asm__ volatile("" ::: "memory");
    return r + 1;
}
__attribute__((noinline)) long caller_b(jitted_fn fn, long n) {
    long r = fn(n, hot_native);
    __asm__ volatile("" ::: "memory");
    return r + 2;
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 100;
    jitted_fn fn = jit_compile(!(argc > 2 && strcmp(argv[2], "nounwind") == 0), argc > 3 ? argv[3] : "/tmp");
    long s = 0;
    for (long r = 0; r < rounds; r++) {
        s += caller_a(fn, 20000);
        s += caller_a(fn, 20000);
        s += caller_a(fn, 20000);
        s += caller_b(fn, 20000);
    }
    return s == 42;
}
