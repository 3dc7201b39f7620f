"""Stack-node depths for the payload's merged call tree: the level-ordered fast path (the decoder's tables) and
pointer jumping (any table) agree with a plain walk."""

import numpy as np
from hwprof.web.payload import stack_depths


def _walk(parent: np.ndarray) -> np.ndarray:
    depth = np.zeros(len(parent), dtype=np.int64)
    for i, p in enumerate(parent.tolist()):
        node, d = p, 0
        while node >= 0:
            node, d = int(parent[node]), d + 1
        depth[i] = d
    return depth


def test_any_tree_with_parents_before_children():
    rng = np.random.default_rng(3)
    parent = np.array([-1] + [int(rng.integers(-1, i)) if rng.random() < 0.95 else -1 for i in range(1, 3000)])
    assert np.array_equal(stack_depths(parent), _walk(parent))


def test_level_ordered_tree_and_a_tree_in_random_order():
    parent = np.array([-1, -1, 0, 0, 1, 2, 2, 4, 6, 8, 8])  # level by level, parents in order
    assert stack_depths(parent).tolist() == _walk(parent).tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 4, 4]
    perm = np.random.default_rng(5).permutation(len(parent))
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(len(perm))
    shuffled = np.where(parent >= 0, inverse[np.maximum(parent, 0)], -1)[perm]
    assert np.array_equal(stack_depths(shuffled), _walk(shuffled))
    assert stack_depths(np.zeros(0, dtype=np.int64)).tolist() == []
