"""The PyTorch side of the GPU check, and its report (scripts/gpu-device.sh runs both).

`bench`: PyTorch eager + transformers (Qwen2ForCausalLM / LlamaForCausalLM, default SDPA
attention, no torch.compile) on the checkpoint `trainer gpu-check export` wrote, with the
prompt, batch, lengths and repetitions of the matching `trainer gpu-check speed` report
(`--rust-json`), in bf16 the way the trainer runs bf16:
  * generation from a bf16 copy of the f32 weights (refreshed inside the timing, as the trainer
    builds its fused bf16 copy each time): `rows` rows of `new` tokens at temperature 1, top-k
    and top-p off, with the KV cache; tokens/s = rows * new / s;
  * a GRPO train step on f32 master weights under autocast(bf16): a no-grad scoring pass
    (log-probs and full-vocabulary entropies, copied to the host), the policy forward, the
    clipped token-mean loss (eps 0.2 / 0.28), backward, grad-norm clipping at 1.0 and
    torch.optim.AdamW (lr 1e-6); both forwards compute logits for the response positions only
    (`logits_to_keep`, as TRL's GRPO trainer); tokens/s = rows * (prompt + new) / s;
  * peak memory (torch.cuda.max_memory_allocated and _reserved over both) and model FLOPs
    utilisation from the Rust report's FLOP counts (one formula for both sides).
Medians of `repeat` timed runs after one warm-up, as the Rust side. Writes one JSON file.

`report`: reads the details folder the device script filled and writes gpu-report.json and
gpu-report.md: the correctness checks, the 30-step CUDA run's rows and metrics, and the speed
table side by side with the issue's targets (generation and train step >= 0.5x PyTorch on the
0.5B shape; STEER's step <= 3 % over GRPO's).
"""
import argparse
import glob
import json
import math
import os
import sqlite3
import statistics
import time


def bench(a: argparse.Namespace) -> None:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    with open(a.rust_json) as f:
        rust = json.load(f)
    o = rust["options"]
    rows, train_rows, p, n, repeat = (
        o["rows"], o["train_rows"], o["prompt"], o["new_tokens"], o["repeat"]
    )
    dev = torch.device(a.device)
    torch.manual_seed(o["seed"])
    t = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(
        a.model, dtype=torch.float32, attn_implementation=a.attn
    ).to(dev)
    gen_model = AutoModelForCausalLM.from_pretrained(
        a.model, dtype=torch.bfloat16, attn_implementation=a.attn
    ).to(dev)
    load_s = time.perf_counter() - t
    vocab = model.config.vocab_size
    prompt = torch.tensor([rust["prompt_ids"]], device=dev)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    gen_model.eval()

    def generate() -> float:
        sync()
        t = time.perf_counter()
        with torch.no_grad():
            for dst, src in zip(gen_model.parameters(), model.parameters()):
                dst.copy_(src)
            out = gen_model.generate(
                prompt.repeat(rows, 1),
                attention_mask=torch.ones(rows, p, dtype=torch.long, device=dev),
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                max_new_tokens=n,
                min_new_tokens=n,
                use_cache=True,
                pad_token_id=0,
            )
        sync()
        assert out.shape == (rows, p + n), out.shape
        return time.perf_counter() - t

    generate()
    gen = [generate() for _ in range(repeat)]

    model.train()
    ids = torch.cat(
        [prompt.repeat(train_rows, 1), torch.randint(0, vocab, (train_rows, n), device=dev)],
        dim=1,
    )
    inputs, targets = ids[:, :-1], ids[:, -n:]
    mask = torch.ones_like(targets, dtype=torch.float32)
    adv = torch.tensor(
        [1.0 if i % 2 == 0 else -1.0 for i in range(train_rows)], device=dev
    ).unsqueeze(1)
    opt = torch.optim.AdamW(
        model.parameters(), lr=1e-6, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01
    )
    autocast = torch.autocast(device_type=dev.type, dtype=torch.bfloat16)

    def step() -> float:
        sync()
        t = time.perf_counter()
        with torch.no_grad(), autocast:
            logits = model(inputs, logits_to_keep=n).logits.float()
            logp_all = torch.log_softmax(logits, dim=-1)
            old_logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            entropy = -(logp_all.exp() * logp_all).sum(-1)
            entropy.cpu()
            del logits, logp_all
        with autocast:
            logits = model(inputs, logits_to_keep=n).logits.float()
        logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        ratio = torch.exp(logp - old_logp)
        pg = torch.maximum(-adv * ratio, -adv * torch.clamp(ratio, 1 - 0.2, 1 + 0.28))
        loss = (pg * mask).sum() / mask.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        return time.perf_counter() - t

    step()
    train = [step() for _ in range(repeat)]
    gen_s, train_s = statistics.median(gen), statistics.median(train)
    peak = o["peak_tflops"] * 1e12
    result = {
        "shape": o["shape"],
        "attn_implementation": a.attn,
        "rows": rows,
        "train_rows": train_rows,
        "prompt": p,
        "new_tokens": n,
        "repeat": repeat,
        "load_s": load_s,
        "generation_s": gen_s,
        "generation_tokens_per_s": rows * n / gen_s,
        "train_step_s": train_s,
        "train_tokens_per_s": train_rows * (p + n) / train_s,
        "generation_mfu": rust["generation_flops"] / gen_s / peak,
        "train_mfu": rust["train_step_flops"] / train_s / peak,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device_name": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
    }
    if dev.type == "cuda":
        result["peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        result["peak_reserved_mib"] = torch.cuda.max_memory_reserved() / 2**20
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))


def read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def peak_mib(path: str):
    """Largest minus first nvidia-smi memory.used sample (MiB), or None without samples."""
    try:
        with open(path) as f:
            v = [float(x) for x in f.read().split() if x.replace(".", "", 1).isdigit()]
    except OSError:
        return None
    return max(v) - v[0] if v else None


def tiny_run(details: str, steps: int) -> dict:
    """The short tiny-config run: its steps and rollouts in SQLite, and every metric finite."""
    res = {"steps_expected": steps, "pass": False}
    db = os.path.join(details, "tiny-run.sqlite")
    if os.path.exists(db):
        con = sqlite3.connect(db)
        res["steps_rows"] = con.execute("SELECT count(*) FROM steps").fetchone()[0]
        res["rollout_rows"] = con.execute("SELECT count(*) FROM rollouts").fetchone()[0]
        cols = ["reward_mean", "entropy", "loss", "grad_norm", "steer_w_mean"]
        bad = con.execute(
            "SELECT count(*) FROM steps WHERE "
            + " OR ".join(f"{c} IS NULL OR abs({c}) > 1e300" for c in cols)
        ).fetchone()[0]
        res["steps_with_non_finite_metrics"] = bad
        con.close()
    metrics = os.path.join(details, "tiny-run-metrics.jsonl")
    if os.path.exists(metrics):
        lines = [json.loads(x) for x in open(metrics) if x.strip()]
        res["metrics_lines"] = len(lines)
        nulls = sorted({k for m in lines for k, v in m.items() if v is None})
        nonfinite = sorted(
            {k for m in lines for k, v in m.items() if isinstance(v, float) and not math.isfinite(v)}
        )
        res["metric_fields_null"] = nulls
        res["metric_fields_non_finite"] = nonfinite
        if lines:
            res["last"] = {k: lines[-1].get(k) for k in ("step", "loss", "entropy", "reward_mean")}
    res["pass"] = (
        res.get("steps_rows") == steps
        and res.get("rollout_rows", 0) > 0
        and res.get("steps_with_non_finite_metrics") == 0
        and res.get("metrics_lines") == steps
        and not res.get("metric_fields_non_finite")
    )
    return res


def fmt(x, spec: str = ".1f") -> str:
    return "–" if x is None else format(x, spec)


def report(a: argparse.Namespace) -> None:
    d = a.details
    phases = []
    if os.path.exists(os.path.join(d, "phases.tsv")):
        for line in open(os.path.join(d, "phases.tsv")):
            name, rc, secs = line.rstrip("\n").split("\t")
            phases.append({"phase": name, "exit": rc, "seconds": int(secs)})
    gpu = open(os.path.join(d, "gpu.txt")).read().strip() if os.path.exists(os.path.join(d, "gpu.txt")) else None
    correctness = read_json(os.path.join(d, "correctness.json"))
    speed = []
    for rust_path in sorted(glob.glob(os.path.join(d, "speed-*-bf16.json"))):
        rust = read_json(rust_path)
        if rust is None:
            continue
        shape = rust["options"]["shape"]
        torch_res = read_json(os.path.join(d, f"torch-{shape}.json"))
        row = {
            "shape": shape,
            "params": rust["params"],
            "rust": rust,
            "torch": torch_res,
            "candle_peak_gpu_mib_nvidia_smi": peak_mib(os.path.join(d, f"mem-candle-{shape}.txt")),
            "torch_peak_gpu_mib_nvidia_smi": peak_mib(os.path.join(d, f"mem-torch-{shape}.txt")),
        }
        if torch_res:
            row["generation_ratio"] = rust["generation_tokens_per_s"] / torch_res["generation_tokens_per_s"]
            row["train_ratio"] = rust["train_tokens_per_s"] / torch_res["train_tokens_per_s"]
        speed.append(row)
    tiny = tiny_run(d, a.steps)
    targets = []
    if correctness:
        f32_logits = [c for c in correctness["checks"] if c["precision"] == "f32" and c["name"].startswith("logits")]
        targets.append({
            "target": "f32 CUDA logits within 1e-4 relative of the CPU's",
            "value": max((c["value"] if c["value"] is not None else math.inf) for c in f32_logits),
            "pass": all(c["pass"] for c in f32_logits),
        })
        targets.append({
            "target": "every correctness check passes",
            "value": sum(not c["pass"] for c in correctness["checks"]),
            "pass": correctness["passed"],
        })
    targets.append({"target": f"{a.steps}-step tiny run: finite metrics, rows in SQLite", "value": tiny.get("steps_rows"), "pass": tiny["pass"]})
    for row in speed:
        if row["shape"] == "qwen2-0.5b" and "generation_ratio" in row:
            targets.append({"target": "generation >= 0.5x PyTorch eager (0.5B)", "value": row["generation_ratio"], "pass": row["generation_ratio"] >= 0.5})
            targets.append({"target": "train step >= 0.5x PyTorch eager (0.5B)", "value": row["train_ratio"], "pass": row["train_ratio"] >= 0.5})
        targets.append({
            "target": f"STEER step <= 3 % over GRPO's ({row['shape']})",
            "value": row["rust"]["steer_over_grpo_pct"],
            "pass": row["rust"]["steer_over_grpo_pct"] <= 3.0,
        })
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "gpu": gpu,
        "python": read_json(os.path.join(d, "python.json")),
        "phases": phases,
        "targets": targets,
        "correctness": correctness,
        "tiny_run": tiny,
        "speed": speed,
    }
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "gpu-report.json"), "w") as f:
        json.dump(result, f, indent=2)

    md = [f"# GPU check, {result['date']}", "", f"GPU: {gpu or 'unknown'}; software: {result['python']}", ""]
    manifest = os.path.join(d, "MANIFEST")
    if os.path.exists(manifest):
        md += ["Binary: " + "; ".join(x.strip() for x in open(manifest) if x.strip()), ""]
    ldd = os.path.join(d, "ldd.txt")
    missing = [x.strip() for x in open(ldd) if "not found" in x] if os.path.exists(ldd) else []
    if missing:
        md += ["Libraries not found: " + "; ".join(missing), ""]
    md += ["## Targets", "", "| target | value | pass |", "|---|---|---|"]
    md += [f"| {t['target']} | {fmt(t['value'], '.4g') if isinstance(t['value'], (int, float)) else t['value']} | {'yes' if t['pass'] else 'NO'} |" for t in targets]
    md += ["", "## Speed (bf16, random init, same shapes, batch and lengths on both sides)", ""]
    md += ["| shape | measure | this trainer (candle) | PyTorch eager + transformers | ratio |", "|---|---|---|---|---|"]
    for row in speed:
        r, t = row["rust"], row["torch"] or {}
        s = row["shape"]
        md.append(f"| {s} | generation tokens/s | {fmt(r['generation_tokens_per_s'])} | {fmt(t.get('generation_tokens_per_s'))} | {fmt(row.get('generation_ratio'), '.2f')} |")
        md.append(f"| {s} | train step tokens/s (GRPO) | {fmt(r['train_tokens_per_s'])} | {fmt(t.get('train_tokens_per_s'))} | {fmt(row.get('train_ratio'), '.2f')} |")
        md.append(f"| {s} | MFU generation / train, % | {fmt(100 * r['generation_mfu'], '.2f')} / {fmt(100 * r['train_mfu'], '.2f')} | {fmt(100 * t['generation_mfu'], '.2f') if t else '–'} / {fmt(100 * t['train_mfu'], '.2f') if t else '–'} | |")
        md.append(f"| {s} | peak GPU memory, MiB (nvidia-smi; torch allocated) | {fmt(row['candle_peak_gpu_mib_nvidia_smi'], '.0f')} | {fmt(row['torch_peak_gpu_mib_nvidia_smi'], '.0f')}; {fmt(t.get('peak_allocated_mib'), '.0f')} | |")
        md.append(f"| {s} | STEER step vs GRPO step, s | {r['steer_step_s']:.4f} vs {r['grpo_step_s']:.4f} ({r['steer_over_grpo_pct']:+.2f} %) | | |")
    if speed:
        o = speed[0]["rust"]["options"]
        md += ["", f"Generation: {o['rows']} rows x {o['new_tokens']} new tokens after a {o['prompt']}-token prompt; train step: {o['train_rows']} rows x {o['prompt'] + o['new_tokens']} tokens; median of {o['repeat']} after a warm-up; MFU against {o['peak_tflops']} TFLOP/s."]
    md += ["", "## Correctness (the device against the CPU)", ""]
    if correctness:
        md += ["| check | model | precision | value | bound | pass | detail |", "|---|---|---|---|---|---|---|"]
        for c in correctness["checks"]:
            bound = ", ".join(f"{k} {v}" for k, v in c["bound"].items())
            md.append(f"| {c['name']} | {c['family']} | {c['precision']} | {fmt(c['value'], '.3e')} | {bound} | {'yes' if c['pass'] else 'NO'} | {c['detail']} |")
    else:
        md.append("no correctness report (see device.log)")
    md += ["", f"## {a.steps}-step tiny run (trainer/configs/tiny-cpu.toml)", "", "```json", json.dumps(tiny, indent=2), "```"]
    md += ["", "## Phases", "", "| phase | exit | seconds |", "|---|---|---|"]
    md += [f"| {p['phase']} | {p['exit']} | {p['seconds']} |" for p in phases]
    with open(os.path.join(a.out, "gpu-report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="time PyTorch on an exported checkpoint")
    b.add_argument("--model", required=True, help="the Hugging Face directory")
    b.add_argument("--rust-json", required=True, help="the matching `trainer gpu-check speed` JSON")
    b.add_argument("--out", required=True, help="the JSON to write")
    b.add_argument("--device", default="cuda")
    b.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    r = sub.add_parser("report", help="assemble gpu-report.{json,md}")
    r.add_argument("--details", required=True, help="the folder the device script filled")
    r.add_argument("--out", required=True, help="where gpu-report.{json,md} go")
    r.add_argument("--steps", type=int, default=30, help="the tiny run's steps")
    a = ap.parse_args()
    bench(a) if a.cmd == "bench" else report(a)


if __name__ == "__main__":
    main()
