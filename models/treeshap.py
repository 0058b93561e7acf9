"""Exact path-dependent TreeSHAP for LightGBM boosters, from per-leaf tables.

LightGBM's own TreeSHAP (``predict(..., pred_contrib=True)``, which ``shap.TreeExplainer``
calls) walks every leaf's path with the O(depth²) recursion for every row: ~100× a plain
prediction, the whole cost of the serving reasons. The values depend on a row only
through which conditions of each leaf's path it meets, so they can be tabulated once per
model (the "v2" idea of Yang, *Fast TreeSHAP*, 2021):

For a leaf with value ``v`` whose path tests the distinct features ``U`` (``k`` of them),
with ``z_j`` the share of training rows that follow the path at feature ``j``'s tests (the
product of child over parent counts) and ``o_j`` whether the row follows them all, the
leaf adds to feature ``u``

    v (o_u - z_u) sum over S ⊆ U minus u of |S|! (k - |S| - 1)! / k!  prod_{j in S} o_j
                                                                      prod_{j not in S, u} z_j,

a function of the bit pattern ``o`` alone: 2^k × k numbers per leaf, computed once. A row
then costs one decision per split and one table row per leaf. The bias (expected value)
is the sum of ``v prod z`` over leaves. Decisions follow LightGBM's ``NumericalDecision``
(missing types None, Zero and NaN, default directions). Boosters with categorical splits
or a path testing more than ``MAX_FEATURES_ON_PATH`` features are left to LightGBM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

Arr = np.ndarray
MAX_FEATURES_ON_PATH = 12
MISSING = {"None": 0, "Zero": 1, "NaN": 2}
ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold


@dataclass(frozen=True)
class Tables:
    """A booster's nodes in preorder (every tree, one after the other) and its per-leaf
    tables, flattened for the compiled kernel."""

    n_features: int
    parent: Arr  # position of the node's parent, -1 at a root
    is_left: Arr  # whether the node is its parent's left child
    slot: Arr  # which distinct feature of the path the parent's test is (first-seen order)
    feature: Arr  # split feature, -1 at a leaf
    threshold: Arr
    default_left: Arr
    missing: Arr
    leaf: Arr  # leaf number, -1 at a split
    feature_offset: Arr  # per leaf: its distinct features in leaf_feature
    leaf_feature: Arr
    table_offset: Arr  # per leaf: 2^k × k contributions in table
    table: Arr
    bias: float


@njit(cache=True)
def _leaf_table(z: Arr, value: float) -> Arr:
    """The 2^k × k contributions of one leaf, for each pattern of followed features."""
    k = len(z)
    fact = np.ones(k + 1)
    for i in range(1, k + 1):
        fact[i] = fact[i - 1] * i
    w = np.empty(k)
    for m in range(k):
        w[m] = fact[m] * fact[k - m - 1] / fact[k]
    out = np.zeros((1 << k, k))
    coef = np.empty(k + 1)
    for p in range(1 << k):
        for u in range(k):
            zeros = 1.0
            coef[:] = 0.0
            coef[0] = 1.0
            size = 0
            for j in range(k):
                if j == u:
                    continue
                if (p >> j) & 1:  # followed: a factor (z_j + t)
                    for m in range(size + 1, 0, -1):
                        coef[m] = coef[m] * z[j] + coef[m - 1]
                    coef[0] *= z[j]
                    size += 1
                else:
                    zeros *= z[j]
            total = 0.0
            for m in range(size + 1):
                total += w[m] * coef[m]
            out[p, u] = value * zeros * total * (((p >> u) & 1) - z[u])
    return out


def build(booster) -> Tables | None:
    """The tables of ``booster``; None where they do not apply (categorical splits, or a
    path over more than ``MAX_FEATURES_ON_PATH`` distinct features)."""
    model = booster.dump_model()
    cols: dict[str, list] = {k: [] for k in ("parent", "is_left", "slot", "feature",
                                             "threshold", "default_left", "missing", "leaf")}
    leaf_feature, feature_offset, tables, table_offset = [], [0], [], [0]
    bias = 0.0
    n_leaves = 0

    def walk(node: dict, parent: int, is_left: bool, slot: int,
             path: dict[int, float]) -> None:
        nonlocal bias, n_leaves
        position = len(cols["parent"])
        for key, value in (("parent", parent), ("is_left", is_left), ("slot", slot)):
            cols[key].append(value)
        if "leaf_value" in node:
            value = float(node["leaf_value"])
            for key, item in (("feature", -1), ("threshold", 0.0), ("default_left", False),
                              ("missing", 0), ("leaf", n_leaves)):
                cols[key].append(item)
            n_leaves += 1
            leaf_feature.extend(path)
            feature_offset.append(len(leaf_feature))
            z = np.array(list(path.values()), dtype="float64")
            table = _leaf_table(z, value) if len(z) else np.zeros((1, 0))
            tables.append(table.ravel())
            table_offset.append(table_offset[-1] + table.size)
            bias += value * float(np.prod(z))
            return
        if node["decision_type"] != "<=":
            raise ValueError("categorical split")
        feature = node["split_feature"]
        for key, item in (("feature", feature), ("threshold", float(node["threshold"])),
                          ("default_left", bool(node["default_left"])),
                          ("missing", MISSING[node["missing_type"]]), ("leaf", -1)):
            cols[key].append(item)
        slots = list(path)
        child_slot = slots.index(feature) if feature in path else len(slots)
        if child_slot >= MAX_FEATURES_ON_PATH:
            raise ValueError("path too long")
        count = node["internal_count"]
        for child, left in ((node["left_child"], True), (node["right_child"], False)):
            share = _count(child) / count if count > 0 else 0.0
            walk(child, position, left, child_slot,
                 {**path, feature: path.get(feature, 1.0) * share})

    try:
        for tree in model["tree_info"]:
            walk(tree["tree_structure"], -1, False, 0, {})
    except ValueError:
        return None
    as_array = {"parent": np.int64, "is_left": np.bool_, "slot": np.int64,
                "feature": np.int64, "threshold": np.float64, "default_left": np.bool_,
                "missing": np.int64, "leaf": np.int64}
    arrays = {k: np.array(cols[k], dtype=t) for k, t in as_array.items()}
    return Tables(
        model["max_feature_idx"] + 1, **arrays,
        feature_offset=np.array(feature_offset, np.int64),
        leaf_feature=np.array(leaf_feature, np.int64),
        table_offset=np.array(table_offset, np.int64),
        table=np.concatenate(tables) if tables else np.zeros(0), bias=bias)


def _count(node: dict) -> float:
    return float(node["leaf_count"] if "leaf_value" in node else node["internal_count"])


@njit(cache=True, nogil=True, parallel=True)
def _contributions(x: Arr, n_features: int, parent: Arr, is_left: Arr, slot: Arr,
                   feature: Arr, threshold: Arr, default_left: Arr, missing: Arr,
                   leaf: Arr, feature_offset: Arr, leaf_feature: Arr, table_offset: Arr,
                   table: Arr, bias: float, blocks: int) -> Arr:
    """Node by node, a block of rows at a time: each leaf's table is read once per block,
    while it is in cache, rather than once per row."""
    rows, nodes = x.shape[0], len(parent)
    out = np.zeros((rows, n_features + 1))
    size = (rows + blocks - 1) // blocks
    for b in prange(blocks):
        lo, hi = b * size, min(rows, (b + 1) * size)
        goes_left = np.empty((nodes, hi - lo), dtype=np.bool_)
        pattern = np.empty((nodes, hi - lo), dtype=np.int64)
        for i in range(nodes):
            p = parent[i]
            if p < 0:
                pattern[i, :] = -1  # every bit set: the root follows everything
            else:
                bit = ~(1 << slot[i])
                for r in range(hi - lo):
                    pattern[i, r] = pattern[p, r] if goes_left[p, r] == is_left[i] \
                        else pattern[p, r] & bit
            f = feature[i]
            if f >= 0:  # a split: LightGBM's NumericalDecision
                m, cut, default = missing[i], threshold[i], default_left[i]
                for r in range(hi - lo):
                    v = x[lo + r, f]
                    if np.isnan(v) and m != 2:
                        v = 0.0
                    if (m == 1 and -ZERO_THRESHOLD <= v <= ZERO_THRESHOLD) or \
                            (m == 2 and np.isnan(v)):
                        goes_left[i, r] = default
                    else:
                        goes_left[i, r] = v <= cut
            else:
                n = leaf[i]
                first = feature_offset[n]
                k = feature_offset[n + 1] - first
                mask = (1 << k) - 1
                for r in range(hi - lo):
                    row = table_offset[n] + (pattern[i, r] & mask) * k
                    for j in range(k):
                        out[lo + r, leaf_feature[first + j]] += table[row + j]
    out[:, n_features] = bias
    return out


def contributions(tables: Tables, values: Arr) -> Arr:
    """Rows × (features + 1): TreeSHAP values and, last, the expected value (LightGBM's
    ``pred_contrib`` layout). ``values``: the rows as the booster scores them."""
    x = np.ascontiguousarray(values, dtype="float64")
    t = tables
    return _contributions(x, t.n_features, t.parent, t.is_left, t.slot, t.feature,
                          t.threshold, t.default_left, t.missing, t.leaf, t.feature_offset,
                          t.leaf_feature, t.table_offset, t.table, t.bias,
                          max(1, min(numba.get_num_threads(), len(x) // 64)))
