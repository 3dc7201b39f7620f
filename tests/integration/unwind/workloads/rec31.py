"""A recursive workload with a known 3:1 split between two Python callers of the same hot function."""
import sys
import time


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


def main(rounds, seconds):
    """At least `rounds` rounds, and rounds until `seconds` have passed: a sample count that holds on fast CPUs."""
    s = 0
    end = time.monotonic() + seconds
    done = 0
    while done < rounds or time.monotonic() < end:
        s += caller_a(20000)
        s += caller_a(20000)
        s += caller_a(20000)
        s += caller_b(20000)
        done += 1
    return s


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100, float(sys.argv[2]) if len(sys.argv) > 2 else 0.0))
