"""The binding against Math-Verify 0.8.0, in one Python process, on the conformance cases.

Each case is graded the way each side's users call it: the binding with
``rlvr_verifier.grade_math(pred, gold, **options)`` (options from the case's config, mapped as
the Rust conformance test maps them), Math-Verify with ``verify(parse(gold, cfg), parse(pred,
cfg), ...)`` as its own tests do (default 5 s timeouts; its parse caches are cleared before
each run). Both run on this thread, one case at a time; a case's time is the median of
``--reps`` runs. Prints a Markdown table.

    python python/bench/vs_math_verify.py [--reps 3] [--cases PATH.jsonl ...]
"""

import argparse
import importlib.util
import json
import pathlib
import statistics
import sys
import time

from rlvr_verifier import _native, grade_math

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "conformance"

try:
    from math_verify import parse, verify
except ImportError:
    sys.exit("Math-Verify is not installed here: run python/bench/run.sh")


def _anchor():
    """The Rust benchmark's Math-Verify harness (verifier/benches/math_verify_anchor.py): the
    same extraction configs for each case."""
    path = REPO / "verifier" / "benches" / "math_verify_anchor.py"
    spec = importlib.util.spec_from_file_location("math_verify_anchor", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mv_targets = _anchor().targets


def load(paths):
    cases = []
    for path in paths:
        for line in open(path, encoding="utf-8"):
            c = json.loads(line)
            cfg = c.get("config") or {}
            gold = c["gold"] if isinstance(c["gold"], str) else json.dumps(c["gold"])
            pred_cfg = mv_targets(cfg.get("extraction"), cfg)
            gold_cfg = mv_targets(cfg.get("gold_extraction"), cfg) if cfg.get("gold_extraction") else pred_cfg
            cases.append(dict(
                pred=c["pred"], gold=gold, expected=bool(c.get("expected")),
                options=json.loads(_native.conformance_options(json.dumps(cfg))),
                mv=(gold_cfg, pred_cfg, dict(float_rounding=cfg.get("float_rounding", 6),
                                             strict=cfg.get("strict", True),
                                             allow_set_relation_comp=cfg.get("allow_set_relation_comp", False))),
            ))
    return cases


def ours(c):
    return grade_math(c["pred"], c["gold"], **c["options"])["correct"]


def _clear_parse_caches():
    """Math-Verify memoises parsed strings (lru_cache): each timed run starts without them, as
    a training run meets new responses."""
    import math_verify.parser as mvp

    for name in ("parse_latex_cached", "parse_expr_cached"):
        fn = getattr(mvp, name, None)
        if hasattr(fn, "cache_clear"):
            fn.cache_clear()


def theirs(c):
    _clear_parse_caches()
    gold_cfg, pred_cfg, kw = c["mv"]
    try:
        return bool(verify(parse(c["gold"], extraction_config=gold_cfg),
                           parse(c["pred"], extraction_config=pred_cfg), **kw))
    except Exception:  # Math-Verify raises on some inputs: that is "not equal"
        return False


def timed(fn, c, reps):
    times, result = [], None
    for _ in range(reps):
        t = time.perf_counter()
        result = fn(c)
        times.append((time.perf_counter() - t) * 1e6)
    return statistics.median(times), result


def row(name, times, agree, n):
    s = sorted(times)
    p90 = s[min(len(s) - 1, int(0.9 * len(s)))]
    return (f"| {name} | {statistics.median(s):,.1f} | {p90:,.1f} | {s[-1]:,.1f} | "
            f"{sum(1 for t in s if t > 50_000)} | {agree}/{n} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cases", nargs="*", default=[str(SHARED / "math_verify_cases.jsonl")])
    args = ap.parse_args()
    cases = load(args.cases)
    ours(cases[0]), theirs(cases[0])  # warm-up: Math-Verify compiles its regexes lazily
    rs = [timed(ours, c, args.reps) for c in cases]
    ms = [timed(theirs, c, args.reps) for c in cases]
    ours_t, ours_ok = [t for t, _ in rs], [r for _, r in rs]
    mv_t, mv_ok = [t for t, _ in ms], [r for _, r in ms]
    n = len(cases)
    agree = lambda got: sum(g == c["expected"] for g, c in zip(got, cases))
    speedups = sorted(m / o for m, o in zip(mv_t, ours_t))
    print(f"{n} cases from {', '.join(pathlib.Path(p).name for p in args.cases)}; "
          f"per-case time = median of {args.reps} runs, one thread each side, µs")
    print()
    print("| grader | median | p90 | max | cases > 50 ms | agree with expected |")
    print("|---|---:|---:|---:|---:|---:|")
    print(row("rlvr_verifier.grade_math", ours_t, agree(ours_ok), n))
    print(row("Math-Verify 0.8.0 parse+verify", mv_t, agree(mv_ok), n))
    print()
    print(f"median speed-up: {statistics.median(mv_t) / statistics.median(ours_t):,.0f}x "
          f"(ratio of medians); per-case speed-up median {statistics.median(speedups):,.0f}x, "
          f"min {speedups[0]:,.0f}x")


if __name__ == "__main__":
    main()
