#!/usr/bin/env python3
"""Writes an arithmetic prompt set in verl's row schema (JSON Lines) with exact answers.

    python3 scripts/gen-arith.py --max-operand 20 --ops + - --n 400 --seed 1 > FILE.jsonl
    python3 scripts/gen-arith.py ... --held-out 64 --held-out-file EVAL.jsonl > TRAIN.jsonl

Each row: {"id", "data_source", "prompt", "reward_model": {"ground_truth"}}; operands are drawn
uniformly from 0..=max-operand, subtraction keeps the answer non-negative, and no (a, op, b)
repeats, also not between the training rows and the held-out rows. Deterministic for a given seed (Python's `random`).
"""
import argparse
import json
import random
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-operand", type=int, default=20)
    ap.add_argument("--ops", nargs="+", choices=["+", "-", "*"], default=["+", "-"])
    ap.add_argument("--n", type=int, default=400, help="problems to write")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--source", default=None, help="data_source (default arith-maxN)")
    ap.add_argument("--held-out", type=int, default=0, help="further problems for evaluation")
    ap.add_argument("--held-out-file", default=None, help="where the held-out rows go")
    a = ap.parse_args()
    if (a.held_out > 0) != (a.held_out_file is not None):
        sys.exit("--held-out and --held-out-file go together")
    space = (a.max_operand + 1) ** 2 * len(a.ops)
    if a.n + a.held_out > space:
        sys.exit(f"only {space} distinct problems exist for these settings, asked for {a.n + a.held_out}")
    source = a.source or f"arith-max{a.max_operand}"
    rng = random.Random(a.seed)
    seen = set()
    rows = []
    while len(seen) < a.n + a.held_out:
        x, y, op = rng.randint(0, a.max_operand), rng.randint(0, a.max_operand), rng.choice(a.ops)
        if op == "-" and y > x:
            x, y = y, x
        if (x, op, y) in seen:
            continue
        seen.add((x, op, y))
        answer = {"+": x + y, "-": x - y, "*": x * y}[op]
        rows.append({
            "id": f"{source}-{len(seen) - 1}",
            "data_source": source,
            "prompt": f"What is {x} {op} {y}? Put the final answer in \\boxed{{}}.",
            "reward_model": {"ground_truth": str(answer)},
        })
    for row in rows[: a.n]:
        print(json.dumps(row))
    if a.held_out_file:
        with open(a.held_out_file, "w") as f:
            for row in rows[a.n :]:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
