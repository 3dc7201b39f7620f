// -O2 -g C++ test program: templates, namespaces, lambdas, STL containers, overloads.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace geometry {

template <typename T>
struct Point {
    T x, y;
    T dot(const Point &o) const { return x * o.x + y * o.y; }
};

template <typename T>
T total_norm(const std::vector<Point<T>> &pts) {
    T sum = 0;
    for (const auto &p : pts)
        sum += p.dot(p);
    return sum;
}

}  // namespace geometry

namespace text {

__attribute__((noinline)) std::map<std::string, int> histogram(const std::vector<std::string> &words) {
    std::map<std::string, int> counts;
    for (const auto &w : words)
        ++counts[w];
    return counts;
}

__attribute__((noinline)) int score(int v) { return v * 3 + 1; }
__attribute__((noinline)) double score(double v) { return v * 2.5; }

}  // namespace text

template <typename C, typename F>
__attribute__((noinline)) void apply_all(C &c, F f) {
    for (auto &x : c)
        x = f(x);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? std::atoi(argv[1]) : 100;
    std::vector<geometry::Point<double>> pd;
    std::vector<geometry::Point<int>> pi;
    for (int i = 0; i < n; i++) {
        pd.push_back({i * 0.5, i * 1.5});
        pi.push_back({i, -i});
    }
    std::vector<std::string> words;
    for (int i = 0; i < n; i++)
        words.push_back("w" + std::to_string(i % 7));
    auto h = text::histogram(words);
    std::vector<int> vals(n);
    apply_all(vals, [](int v) { return text::score(v); });
    std::sort(vals.begin(), vals.end(), [](int a, int b) { return a > b; });
    std::printf("%f %d %zu %d %f\n", geometry::total_norm(pd), geometry::total_norm(pi), h.size(), vals[0],
                text::score(1.0));
    return 0;
}
