#!/usr/bin/env python3
"""Golden numbers for `steer-coupled` (trainer/tests/steer_coupled_golden.rs), computed
independently of the Rust code: a direct double sum over position pairs of the output head's
kernel, in float64 NumPy. Prints one JSON object (the inputs too, so the test can check that
its copy of them is this one).

    /usr/bin/python3 trainer/tests/golden/steer_coupled.py
"""
import json

import numpy as np

TAU = 0.8
TOP_K = 3
LR = 1e-3
# Output head W (V=6, d=3).
W = [
    [0.9, -0.3, 0.4],
    [-0.5, 1.1, 0.2],
    [0.3, 0.3, -0.8],
    [1.2, 0.5, 0.1],
    [-0.7, -0.9, 0.6],
    [0.1, -0.2, 1.3],
]
# Two micro-batches: head inputs per cell (rows x cols cells, row-major), target ids, response
# mask, one advantage per row.
MICROS = [
    {
        "rows": 2,
        "cols": 3,
        "h": [
            [0.0, 0.0, 0.0], [0.8, -0.4, 0.3], [0.2, 1.0, -0.6],
            [0.0, 0.0, 0.0], [-0.5, 0.7, 0.9], [0.3, 0.3, 0.3],
        ],
        "y": [0, 3, 1, 0, 4, 2],
        "mask": [False, True, True, False, True, False],
        "adv": [1.2, -0.7],
    },
    {
        "rows": 1,
        "cols": 3,
        "h": [[1.1, 0.2, -0.3], [-0.2, -0.8, 0.5], [0.6, 0.4, 0.9]],
        "y": [5, 2, 3],
        "mask": [True, True, True],
        "adv": [0.4],
    },
]


def main():
    w = np.array(W)
    hs, ys, advs, where = [], [], [], []
    for i, m in enumerate(MICROS):
        for c in range(m["rows"] * m["cols"]):
            if m["mask"][c]:
                hs.append(m["h"][c])
                ys.append(m["y"][c])
                advs.append(m["adv"][c // m["cols"]])
                where.append(i)
    h = np.array(hs)
    n = len(ys)
    z = h @ w.T / TAU
    logp = z - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)) - z.max(1, keepdims=True)
    p = np.exp(logp)
    ent = -(p * logp).sum(1)
    u = p * (logp + ent[:, None])  # dH_s/dz_s = -u_s
    top = [list(np.argsort(-p[t], kind="stable")[:TOP_K]) for t in range(n)]
    contrib = []
    for t in range(n):
        total = 0.0
        for s in range(n):
            k_st = h[s] @ h[t] / TAU**2
            spread = sum(p[t, j] * u[s, j] for j in top[t])
            total += -k_st * advs[t] * (u[s, ys[t]] - spread)
        contrib.append(total)
    contrib = np.array(contrib)
    mags = np.abs(contrib)

    def exponential(m, hi, lam=0.8):
        k = -np.log(lam) / max(hi, 0.02)
        return np.clip(np.exp(-k * m), lam, 1.0)

    def linear(m, lo, hi, w_min=0.8, w_max=1.2):
        if hi > lo:
            return np.clip(w_max - (m - lo) * (w_max - w_min) / (hi - lo), w_min, w_max)
        return np.full_like(m, (w_min + w_max) / 2)

    where = np.array(where)
    w_exp_micro, w_lin_micro = np.zeros(n), np.zeros(n)
    for i in range(len(MICROS)):
        sel = where == i
        w_exp_micro[sel] = exponential(mags[sel], mags[sel].max())
        w_lin_micro[sel] = linear(mags[sel], mags[sel].min(), mags[sel].max())
    w_exp_batch = exponential(mags, mags.max())
    predicted = LR * float((w_exp_micro * contrib).sum()) / n**2
    print(json.dumps({
        "inputs": {"tau": TAU, "top_k": TOP_K, "lr": LR, "w": W, "micros": MICROS},
        "contribution": contrib.tolist(),
        "w_exp_micro": w_exp_micro.tolist(),
        "w_exp_batch": w_exp_batch.tolist(),
        "w_lin_micro": w_lin_micro.tolist(),
        "predicted": predicted,
    }, indent=1))


if __name__ == "__main__":
    main()
