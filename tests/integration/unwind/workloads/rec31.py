"""A recursive workload with a known 3:1 split between two Python callers of the same hot function."""
import sys


def hot(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def descend(depth, n):
    if depth == 0:
        return hot(n)
    return descend(depth - 1, n)


def caller_a(n):
    return descend(20, n)


def caller_b(n):
    return descend(20, n)


def main(rounds):
    s = 0
    for _ in range(rounds):
        s += caller_a(20000)
        s += caller_a(20000)
        s += caller_a(20000)
        s += caller_b(20000)
    return s


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
