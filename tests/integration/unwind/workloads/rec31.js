// A known 3:1 split between two JavaScript callers of one recursive hot path (tests/integration/unwind/test_node_jit.py).
// Usage: node [--perf-prof --perf-prof-unwinding-info ...] rec31.js SECONDS
function hot(n) { let x = 0; for (let i = 0; i < n; i++) x = (x * 31 + i) | 0; return x; }
function descend(depth, n) { return depth === 0 ? hot(n) : descend(depth - 1, n) + 1; }
function caller_a() { return descend(10, 20000); }
function caller_b() { return descend(10, 20000); }
let sum = 0;
const end = Date.now() + (Number(process.argv[2]) || 3) * 1000;
while (Date.now() < end) { sum += caller_a(); sum += caller_a(); sum += caller_a(); sum += caller_b(); }
if (sum === 42) console.log(sum);
