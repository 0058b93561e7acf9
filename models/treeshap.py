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

import itertools
from dataclasses import dataclass, fields
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

Arr = np.ndarray
MAX_FEATURES_ON_PATH = 12
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


@njit(cache=True, nogil=True)
def _leaf_tables(z: Arr, z_offset: Arr, values: Arr) -> tuple[Arr, Arr]:
    """Every leaf's 2^k × k contributions, one pattern of followed features per row;
    leaf ``n``'s shares are ``z[z_offset[n]:z_offset[n + 1]]``."""
    leaves = len(values)
    table_offset = np.zeros(leaves + 1, dtype=np.int64)
    for n in range(leaves):
        k = z_offset[n + 1] - z_offset[n]
        table_offset[n + 1] = table_offset[n] + (1 << k) * k
    table = np.zeros(table_offset[-1])
    fact = np.ones(MAX_FEATURES_ON_PATH + 1)
    for i in range(1, MAX_FEATURES_ON_PATH + 1):
        fact[i] = fact[i - 1] * i
    coef = np.empty(MAX_FEATURES_ON_PATH + 1)
    w = np.empty(MAX_FEATURES_ON_PATH)
    for n in range(leaves):
        first, k = z_offset[n], z_offset[n + 1] - z_offset[n]
        for m in range(k):
            w[m] = fact[m] * fact[k - m - 1] / fact[k]
        for p in range(1 << k):
            for u in range(k):
                zeros = 1.0
                coef[0] = 1.0
                size = 0
                for j in range(k):
                    if j == u:
                        continue
                    if (p >> j) & 1:  # followed: a factor (z_j + t)
                        coef[size + 1] = coef[size]
                        for m in range(size, 0, -1):
                            coef[m] = coef[m] * z[first + j] + coef[m - 1]
                        coef[0] *= z[first + j]
                        size += 1
                    else:
                        zeros *= z[first + j]
                total = 0.0
                for m in range(size + 1):
                    total += w[m] * coef[m]
                table[table_offset[n] + p * k + u] = \
                    values[n] * zeros * total * (((p >> u) & 1) - z[first + u])
    return table, table_offset


def _trees(booster) -> list[dict[str, np.ndarray]]:
    """Each tree's arrays from LightGBM's model text (a tenth of ``dump_model``'s cost)."""
    text = booster.model_to_string()
    body = text[text.index("\nTree=") + 1: text.index("\nend of trees")]
    trees = []
    for block in body.split("\nTree=")[0:]:
        fields = dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)
        trees.append({k: np.fromiter(map(float, fields[k].split()), "float64") for k in (
            "split_feature", "threshold", "decision_type", "left_child", "right_child",
            "leaf_value", "leaf_count", "internal_count") if fields.get(k, "")})
    return trees


def build(booster) -> Tables | None:
    """The tables of ``booster``; None where they do not apply (categorical splits, or a
    path over more than ``MAX_FEATURES_ON_PATH`` distinct features)."""
    parent, is_left, slot, feature, threshold, default_left, missing, leaf = (
        [] for _ in range(8))
    leaf_feature, z_flat, z_offset, values = [], [], [0], []
    for tree in _trees(booster):
        if "split_feature" not in tree:  # a single leaf: its value is all bias
            for col, item in ((parent, -1), (is_left, False), (slot, 0), (feature, -1),
                              (threshold, 0.0), (default_left, False), (missing, 0),
                              (leaf, len(values))):
                col.append(item)
            values.append(float(tree["leaf_value"][0]))
            z_offset.append(len(z_flat))
            continue
        decision = tree["decision_type"].astype(np.int64)
        if (decision & 1).any():
            return None  # categorical splits: LightGBM computes those
        counts = tree["internal_count"]
        # (node: >= 0 a split, < 0 ~leaf; parent position; left?; slot; path features, shares)
        stack = [(0, -1, False, 0, (), ())]
        while stack:
            node, up, left, at, feats, shares = stack.pop()
            position = len(parent)
            parent.append(up)
            is_left.append(left)
            slot.append(at)
            if node < 0:
                n = ~node
                for col, item in ((feature, -1), (threshold, 0.0), (default_left, False),
                                  (missing, 0), (leaf, len(values))):
                    col.append(item)
                values.append(float(tree["leaf_value"][n]))
                leaf_feature.extend(feats)
                z_flat.extend(shares)
                z_offset.append(len(z_flat))
                continue
            f = int(tree["split_feature"][node])
            feature.append(f)
            threshold.append(tree["threshold"][node])
            default_left.append(bool(decision[node] & 2))
            missing.append(int((decision[node] >> 2) & 3))
            leaf.append(-1)
            if f in feats:
                child_slot = feats.index(f)
            elif len(feats) < MAX_FEATURES_ON_PATH:
                child_slot = len(feats)
            else:
                return None
            for child, child_left in ((int(tree["right_child"][node]), False),
                                      (int(tree["left_child"][node]), True)):
                count = tree["leaf_count"][~child] if child < 0 else counts[child]
                share = count / counts[node] if counts[node] > 0 else 0.0
                if child_slot < len(feats):
                    child_shares = (*shares[:child_slot], shares[child_slot] * share,
                                    *shares[child_slot + 1:])
                    stack.append((child, position, child_left, child_slot, feats,
                                  child_shares))
                else:
                    stack.append((child, position, child_left, child_slot, (*feats, f),
                                  (*shares, share)))
    z = np.array(z_flat, dtype="float64")
    z_off = np.array(z_offset, np.int64)
    leaf_values = np.array(values, dtype="float64")
    table, table_offset = _leaf_tables(z, z_off, leaf_values)
    reach = np.ones(len(leaf_values))  # each leaf's share of the training rows
    for n, (a, b) in enumerate(itertools.pairwise(z_off)):
        for share in z_flat[a:b]:
            reach[n] *= share
    bias = float(leaf_values @ reach)
    return Tables(
        int(booster.num_feature()), np.array(parent, np.int64), np.array(is_left, np.bool_),
        np.array(slot, np.int64), np.array(feature, np.int64),
        np.array(threshold, np.float64), np.array(default_left, np.bool_),
        np.array(missing, np.int64), np.array(leaf, np.int64), z_off,
        np.array(leaf_feature, np.int64), table_offset, table, bias)


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


def save(tables: Tables, path: Path) -> None:
    """Write ``tables`` beside the model they belong to (one ``.npz``)."""
    np.savez(path, **{f.name: np.asarray(getattr(tables, f.name)) for f in fields(Tables)})


def load(path: Path) -> Tables:
    with np.load(path) as data:
        arrays = {f.name: data[f.name] for f in fields(Tables)}
    return Tables(**{**arrays, "n_features": int(arrays["n_features"]),
                     "bias": float(arrays["bias"])})
