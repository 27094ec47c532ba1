//! SmolLM2-135M-Instruct on CPU, this trainer against PyTorch + transformers, side by side in
//! one run, printed as a table:
//!
//! 1. Rollout generation: G responses of N new tokens to one chat prompt, sampled at
//!    temperature 0.7 with a KV cache (EOS ignored on both sides so the lengths are equal);
//!    tokens/s = G·N / seconds.
//! 2. Train step on B rows of P + N tokens (N response tokens): the π_old scoring pass (log-probs
//!    and full-vocabulary entropies, no gradient), the policy forward, the GRPO clipped loss
//!    (token-mean), backward and an AdamW step; tokens/s = B·(P + N) / seconds. Both sides
//!    run the output head over the response positions only (TRL's `logits_to_keep`).
//! 3. The same step with STEER's weights instead of GRPO's plain clipped loss.
//!
//! `cargo bench -p trainer --bench vs_pytorch` after `bash scripts/fetch-smollm2.sh` and
//! `bash scripts/torch-venv.sh` (PyTorch 2.9.1 and transformers 4.57.3 in
//! `$TORCH_VENV`, default `~/.cache/torch-venv`; without it only this trainer's rows print).
//! Settings: `BENCH_G` (8), `BENCH_NEW` (64), `BENCH_B` (16), `BENCH_REPEAT` (3, the median is
//! reported), `BENCH_FUSED` (1; 0 runs this trainer with its fused CPU kernels off, the
//! elementary candle ops everywhere, for a before/after in one build). The peak resident memory
//! of this process over the train steps is printed too (Linux: `VmHWM`, reset before them). Both sides use every core (PyTorch: `torch.set_num_threads(os.cpu_count())`).

use std::process::Command;
use std::time::Instant;

use candle_core::Device;
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use trainer::algo::{self, LossConfig, Method, PolicyOutputs, logprob};
use trainer::config::TrainConfig;
use trainer::optim::{AdamW, GradAccumulator};
use trainer::rollout::{self, Sample, SamplingConfig, StopRule};
use trainer::tokenizer::TextTokenizer;
use trainer::train;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resets this process's peak resident set size (Linux `clear_refs` 5); false elsewhere.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// This process's peak resident set size since the last reset, MiB (Linux `VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One train step as `trainer train` takes it on one micro-batch; returns seconds for the whole
/// step and for building the method's loss from the log-probs (where STEER and GRPO differ).
fn train_step(
    method: Method,
    cfg: &TrainConfig,
    policy: &trainer::model::Decoder,
    frozen: &trainer::model::Decoder,
    opt: &mut AdamW,
    rows: &[Sample],
    adv: &[f32],
) -> Res<(f64, f64)> {
    let dev = Device::Cpu;
    let t = Instant::now();
    let packed = rollout::pack(&rows.iter().collect::<Vec<_>>(), &dev)?;
    let (old_logp, entropy) = logprob::score(frozen, &packed, 1.0, true)?;
    let entropy = entropy.ok_or("no entropy")?;
    let batch = train::token_batch(
        &packed,
        old_logp,
        entropy.flatten_all()?.to_vec1::<f32>()?,
        adv.iter().copied(),
        &dev,
    )?;
    let logp = logprob::score(policy, &packed, 1.0, false)?.0;
    let loss_cfg = LossConfig {
        method,
        clip: &method.default_clip(),
        steer: &cfg.algo.steer,
        params: &cfg.algo.params,
        agg: cfg.algo.loss_agg,
        seed: 0,
    };
    let out = PolicyOutputs {
        logp: &logp,
        entropy: None,
        ref_logp: None,
    };
    let t_loss = Instant::now();
    let (loss, _) = algo::micro_batch_loss(&loss_cfg, &out, &batch)?;
    let loss_s = t_loss.elapsed().as_secs_f64();
    let mut acc = GradAccumulator::new(opt.params().len());
    acc.add(opt.params(), &loss.backward()?)?;
    opt.step(&acc.into_grads(), 1e-6)?;
    Ok((t.elapsed().as_secs_f64(), loss_s))
}

fn main() -> Res<()> {
    let (g, n_new, b, repeat) = (
        env("BENCH_G", 8),
        env("BENCH_NEW", 64),
        env("BENCH_B", 16),
        env("BENCH_REPEAT", 3).max(1),
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("trainer/configs/smollm2-study.toml"))?;
    let cfg = TrainConfig::from_toml(&text)?;
    let gguf = cfg
        .pretrained
        .as_ref()
        .ok_or("the study config names a GGUF file")?
        .gguf
        .as_ref()
        .ok_or("the study config names a GGUF file")?
        .to_string_lossy()
        .replace('~', &std::env::var("HOME")?);
    if !std::path::Path::new(&gguf).exists() {
        println!("SKIP: {gguf} is missing; run `bash scripts/fetch-smollm2.sh`");
        return Ok(());
    }
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let start = trainer::model::source::start(cfg.origin()?, cfg.precision, &varmap, &dev)?;
    let fused_kernels = env("BENCH_FUSED", 1) != 0;
    let policy = start.policy.clone().with_fused_kernels(fused_kernels);
    let frozen = train::detached_view(&varmap, &start.policy)?.with_fused_kernels(fused_kernels);
    let tok = start.tokenizer;
    let prompt =
        tok.encode(&tok.prompt_text("What is 17 + 25? Put the final answer in \\boxed{}.")?)?;
    let p = prompt.len();

    // 1. Generation; an EOS id outside the vocabulary so every response has N tokens.
    let no_eos = TextTokenizer::new(tok.inner().clone(), u32::MAX, None);
    let stop = StopRule::new(&no_eos, &[]);
    let sampling = SamplingConfig {
        temperature: 0.7,
        max_new_tokens: n_new,
        top_p: 1.0,
        top_k: 0,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut gen_s = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        let fused = frozen.fused()?;
        let s = rollout::sample_group(&fused, &prompt, g, &sampling, &stop, &dev, &mut rng)?;
        gen_s.push(t.elapsed().as_secs_f64());
        assert!(s.iter().all(|s| s.response_ids.len() == n_new));
    }
    let gen_tps = (g * n_new) as f64 / median(gen_s);

    // 2–3. Train steps on B rows: the prompt and N random response tokens each.
    let vocab = tok.vocab_size() as u32;
    let rows: Vec<Sample> = (0..b)
        .map(|_| Sample {
            prompt_ids: prompt.clone(),
            response_ids: (0..n_new).map(|_| rng.random_range(0..vocab)).collect(),
            finished: false,
        })
        .collect();
    let adv: Vec<f32> = (0..b)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let mut opt = AdamW::new(train::params_of(&varmap)?, cfg.optim)?;
    // One warm-up step, then rounds alternating the methods so that drift in machine load
    // hits both alike.
    let mut step = |m: Method| train_step(m, &cfg, &policy, &frozen, &mut opt, &rows, &adv);
    let peak_reset = reset_peak_rss();
    step(Method::Grpo)?;
    let (mut grpo, mut steer) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        grpo.push(step(Method::Grpo)?);
        steer.push(step(Method::Steer)?);
    }
    let loss_part = |v: &[(f64, f64)]| median(v.iter().map(|x| x.1).collect());
    let (grpo_loss_s, steer_loss_s) = (loss_part(&grpo), loss_part(&steer));
    let (grpo_s, steer_s) = (
        median(grpo.iter().map(|x| x.0).collect()),
        median(steer.iter().map(|x| x.0).collect()),
    );
    let train_tps = (b * (p + n_new)) as f64 / grpo_s;
    let peak = peak_rss_mib().filter(|_| peak_reset);

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "this trainer (fused CPU kernels {}): generation {gen_tps:.1} tokens/s, train step (GRPO) {train_tps:.1} tokens/s ({grpo_s:.2} s), STEER step {steer_s:.2} s, peak RSS over the train steps {}",
        if fused_kernels { "on" } else { "off" },
        peak.map_or("unknown".into(), |m| format!("{m:.0} MiB"))
    );
    // PyTorch + transformers, same model file, prompt ids and shapes.
    let venv = std::env::var("TORCH_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/torch-venv",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let python = std::path::Path::new(&venv).join("bin/python");
    let torch: Option<serde_json::Value> = if python.exists() {
        let ids = prompt
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let out = Command::new(&python)
            .arg(root.join("trainer/benches/pytorch_anchor.py"))
            .args(["--gguf", &gguf, "--prompt-ids", &ids])
            .args(["--g", &g.to_string(), "--new", &n_new.to_string()])
            .args(["--b", &b.to_string(), "--repeat", &repeat.to_string()])
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "pytorch_anchor.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let stdout = String::from_utf8(out.stdout)?;
        Some(serde_json::from_str(stdout.lines().last().unwrap_or("{}"))?)
    } else {
        println!(
            "(no PyTorch venv at {venv}: run `bash scripts/torch-venv.sh` for the anchor column)"
        );
        None
    };

    println!(
        "\nSmolLM2-135M-Instruct (f32 weights from the Q4_1 GGUF), CPU, {cores} cores; median of {repeat}"
    );
    println!(
        "generation: G={g}, prompt {p} tokens, {n_new} new tokens, KV cache; train step: B={b} rows x {} tokens\n",
        p + n_new
    );
    println!("| measure | this trainer (candle) | PyTorch + transformers | ratio |");
    println!("|---|---|---|---|");
    let row = |name: &str, ours: f64, key: &str| {
        let theirs = torch.as_ref().and_then(|t| t[key].as_f64());
        println!(
            "| {name} | {ours:.1} | {} | {} |",
            theirs.map_or("–".into(), |x| format!("{x:.1}")),
            theirs.map_or("–".into(), |x| format!("{:.2}x", ours / x)),
        );
    };
    row("rollout generation, tokens/s", gen_tps, "gen_tokens_per_s");
    row(
        "train step (GRPO), tokens/s",
        train_tps,
        "train_tokens_per_s",
    );
    println!(
        "\nSTEER step {steer_s:.2} s vs GRPO step {grpo_s:.2} s: {:+.1}% (whole steps, within run-to-run noise)",
        100.0 * (steer_s / grpo_s - 1.0)
    );
    // Where the two differ: the loss from the log-probs (STEER's weights are constants, so the
    // model's forward and backward are the same work).
    println!(
        "loss construction: STEER {:.2} ms vs GRPO {:.2} ms: STEER's overhead {:+.2}% of a GRPO step",
        1e3 * steer_loss_s,
        1e3 * grpo_loss_s,
        100.0 * (steer_loss_s - grpo_loss_s) / grpo_s
    );
    if let Some(t) = &torch {
        println!(
            "PyTorch {} / transformers {}, {} threads",
            t["torch"], t["transformers"], t["threads"]
        );
    }
    Ok(())
}
