"""Correlation clusters of a universe: Pearson correlations of returns, and the largest
connected component of the graph keeping the pairs correlated above a threshold.

The components are those of networkx's `connected_components` on that graph (tests compare
them with networkx on random matrices); they are found here with a union-find so that a grid
evaluates them inside one parallel kernel pass, at the selection bars only.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ivybt._typing import Float64Array2D, Int8Array1D


@njit(cache=True)
def correlation_nb(returns: Float64Array2D, out_corr: Float64Array2D) -> None:
    """Pearson correlation of the columns of `returns` (float64, (n_obs, m)) into `out_corr`
    ((m, m)): two passes (means, then sums of products of deviations); NaN for a pair where
    either column is constant (or its deviations vanish); 1 on the diagonal of another."""
    n_obs, m = returns.shape
    for a in range(m):
        for b in range(m):
            out_corr[a, b] = np.nan
    means = np.empty(m)
    for c in range(m):
        total = 0.0
        for i in range(n_obs):
            total += returns[i, c]
        means[c] = total / n_obs
    for a in range(m):
        for b in range(a, m):
            cross = 0.0
            var_a = 0.0
            var_b = 0.0
            for i in range(n_obs):
                da = returns[i, a] - means[a]
                db = returns[i, b] - means[b]
                cross += da * db
                var_a += da * da
                var_b += db * db
            scale = math.sqrt(var_a) * math.sqrt(var_b)  # not sqrt(var_a x var_b): underflow
            if scale > 0.0:
                value = cross / scale
                out_corr[a, b] = value
                out_corr[b, a] = value


@njit(cache=True)
def largest_cluster_nb(corr: Float64Array2D, threshold: float, out_member: Int8Array1D) -> int:
    """Mark in `out_member` (int8, (m,)) the largest connected component of the graph whose
    edges are the pairs with corr > threshold (NaN: no edge), and return its size. Equal
    sizes: the component holding the lowest index. A node without an edge is a component
    of size 1."""
    m = corr.shape[0]
    parent = np.arange(m)
    for a in range(m):
        for b in range(a + 1, m):
            if corr[a, b] > threshold:
                root_a = _root_nb(parent, a)
                root_b = _root_nb(parent, b)
                if root_a != root_b:
                    parent[max(root_a, root_b)] = min(root_a, root_b)  # roots: lowest index
    size = np.zeros(m, dtype=np.int64)
    for c in range(m):
        size[_root_nb(parent, c)] += 1
    best = 0
    for c in range(m):  # a root is its component's lowest index: ties go to the first
        if size[c] > size[best]:
            best = c
    for c in range(m):
        out_member[c] = 1 if _root_nb(parent, c) == best else 0
    return int(size[best]) if m > 0 else 0


@njit(cache=True)
def _root_nb(parent: np.ndarray, node: int) -> int:
    """The root of `node` in the union-find `parent`, halving the path on the way."""
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node
