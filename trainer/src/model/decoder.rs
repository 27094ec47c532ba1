//! A differentiable Decoder-style decoder: RMSNorm, rotary position embeddings (half-split, as
//! in HF Decoder), grouped-query attention with q/k/v biases, SwiGLU MLP, optional tied
//! embeddings.
//!
//! Every op here has a backward in candle 0.11 (`rms_norm_slow`, `rope_slow`, `ops::softmax`,
//! matmul, silu), so all weights receive gradients; a test checks that. On the CPU in f32,
//! RMSNorm, RoPE and SwiGLU run as [`super::fused`] kernels with their own backward instead. Tensor names mirror
//! the HF checkpoint layout (`model.layers.0.self_attn.q_proj.weight`, …).

use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, Init, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

/// Which decoder family: the two differ only in the attention projections' biases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Qwen2: q/k/v projections with biases. The default.
    #[default]
    Qwen2,
    /// Llama (also SmolLM2): no biases anywhere.
    Llama,
}

impl Family {
    /// Whether the q/k/v projections carry biases.
    pub fn qkv_bias(self) -> bool {
        matches!(self, Family::Qwen2)
    }

    /// The HF `model_type`.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Qwen2 => "qwen2",
            Family::Llama => "llama",
        }
    }

    /// The HF `architectures` entry.
    pub fn architecture(self) -> &'static str {
        match self {
            Family::Qwen2 => "Qwen2ForCausalLM",
            Family::Llama => "LlamaForCausalLM",
        }
    }
}

/// Architecture hyper-parameters; field names follow HF `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Decoder family. Default `qwen2`.
    #[serde(default)]
    pub family: Family,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Residual stream width.
    pub hidden_size: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads; `hidden_size` must be a multiple.
    pub num_attention_heads: usize,
    /// Key/value heads (GQA); must divide `num_attention_heads`.
    pub num_key_value_heads: usize,
    /// RoPE base. Decoder default 1e6.
    pub rope_theta: f64,
    /// RMSNorm epsilon. Decoder default 1e-6.
    pub rms_norm_eps: f64,
    /// Longest sequence the RoPE tables cover, tokens.
    pub max_position_embeddings: usize,
    /// Share the embedding matrix with the output head.
    pub tie_word_embeddings: bool,
    /// RoPE frequency scaling (`linear` or `llama3`); default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<super::RopeScaling>,
}

impl ModelConfig {
    /// Per-head width.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Checks the shape constraints.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err("hidden_size must be a positive multiple of num_attention_heads".into());
        }
        if self.num_key_value_heads == 0
            || !self
                .num_attention_heads
                .is_multiple_of(self.num_key_value_heads)
        {
            return Err("num_key_value_heads must divide num_attention_heads".into());
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err("head_dim must be even for rotary embeddings".into());
        }
        if let Some(s) = &self.rope_scaling {
            s.validate()?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Rotary {
    cos: Tensor, // (max_pos, head_dim/2)
    sin: Tensor,
    /// Use the fused kernel where it applies ([`Decoder::with_fused_kernels`]).
    fused: bool,
}

impl Rotary {
    fn new(cfg: &ModelConfig, dev: &Device) -> Result<Self> {
        let half = cfg.head_dim() / 2;
        let inv: Vec<f32> = (0..half)
            .map(|i| {
                let f = 1.0 / cfg.rope_theta.powf(2.0 * i as f64 / cfg.head_dim() as f64);
                cfg.rope_scaling.map_or(f, |s| s.apply(f)) as f32
            })
            .collect();
        let inv = Tensor::from_vec(inv, (1, half), dev)?;
        let pos = Tensor::arange(0u32, cfg.max_position_embeddings as u32, dev)?
            .to_dtype(DType::F32)?
            .reshape((cfg.max_position_embeddings, 1))?;
        let freqs = pos.matmul(&inv)?;
        Ok(Rotary {
            cos: freqs.cos()?,
            sin: freqs.sin()?,
            fused: true,
        })
    }

    /// Rotates `x` `(b, h, t, d)` for positions `offset..offset + t`.
    fn apply(&self, x: &Tensor, offset: usize) -> Result<Tensor> {
        let (_b, _h, t, _d) = x.dims4()?;
        let cos = self.cos.narrow(0, offset, t)?.to_dtype(x.dtype())?;
        let sin = self.sin.narrow(0, offset, t)?.to_dtype(x.dtype())?;
        if self.fused
            && super::fused::applies(x)
            && let Some(y) = super::fused::rope(x, &cos, &sin)?
        {
            return Ok(y);
        }
        candle_nn::rotary_emb::rope_slow(x, &cos, &sin)
    }
}

#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f32,
    /// Use the fused kernel where it applies ([`Decoder::with_fused_kernels`]).
    fused: bool,
}

impl RmsNorm {
    fn new(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(RmsNorm {
            weight: vb.get_with_hints(size, "weight", Init::Const(1.0))?,
            eps: eps as f32,
            fused: true,
        })
    }

    /// Statistics in f32 whatever `x`'s dtype; the result in `x`'s dtype.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.fused && super::fused::applies(x) && super::fused::applies(&self.weight) {
            return super::fused::rms_norm(x, &self.weight, self.eps);
        }
        candle_nn::ops::rms_norm_slow(x, &self.weight.to_dtype(x.dtype())?, self.eps)
    }
}

/// `l` applied to `x` in `x`'s dtype: f32 master weights are cast on the way in (a
/// differentiable cast, so their gradients stay f32); no cast when the dtypes agree.
fn project(l: &Linear, x: &Tensor) -> Result<Tensor> {
    if l.weight().dtype() == x.dtype() {
        return l.forward(x);
    }
    let bias = l.bias().map(|b| b.to_dtype(x.dtype())).transpose()?;
    Linear::new(l.weight().to_dtype(x.dtype())?, bias).forward(x)
}

#[derive(Debug, Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    /// q, k and v stacked into one product ([`Decoder::fused`]); used instead of the three.
    qkv: Option<Linear>,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

/// The layers' weights stacked along the output dimension into one detached copy.
fn stacked(parts: &[&Linear]) -> Result<Linear> {
    let weights: Vec<Tensor> = parts.iter().map(|l| l.weight().detach()).collect();
    let bias = if parts.iter().all(|l| l.bias().is_some()) {
        let b: Vec<Tensor> = parts
            .iter()
            .filter_map(|l| l.bias().map(Tensor::detach))
            .collect();
        Some(Tensor::cat(&b, 0)?)
    } else {
        None
    };
    Ok(Linear::new(Tensor::cat(&weights, 0)?, bias))
}

impl Attention {
    fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let (h, hd) = (cfg.hidden_size, cfg.head_dim());
        let bias = cfg.family.qkv_bias();
        Ok(Attention {
            q_proj: candle_nn::linear_b(h, cfg.num_attention_heads * hd, bias, vb.pp("q_proj"))?,
            k_proj: candle_nn::linear_b(h, cfg.num_key_value_heads * hd, bias, vb.pp("k_proj"))?,
            v_proj: candle_nn::linear_b(h, cfg.num_key_value_heads * hd, bias, vb.pp("v_proj"))?,
            o_proj: candle_nn::linear_b(cfg.num_attention_heads * hd, h, false, vb.pp("o_proj"))?,
            qkv: None,
            n_heads: cfg.num_attention_heads,
            n_kv_heads: cfg.num_key_value_heads,
            head_dim: hd,
        })
    }

    /// Attention of the positions in `x` `(b, t, h)`, which start at `offset`, over `past`
    /// keys/values (the `offset` positions before them, when cached) and themselves; `mask`
    /// `(t, offset + t)` is added to the scores. Returns the output and all keys/values so far
    /// `(b, n_kv, offset + t, hd)`.
    fn forward(
        &self,
        x: &Tensor,
        rotary: &Rotary,
        mask: &Tensor,
        offset: usize,
        past: Option<&(Tensor, Tensor)>,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        let (b, t, _) = x.dims3()?;
        let heads = |y: Tensor, n: usize| {
            y.reshape((b, t, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = match &self.qkv {
            Some(qkv) => {
                let all = project(qkv, x)?;
                let (nq, nk) = (
                    self.n_heads * self.head_dim,
                    self.n_kv_heads * self.head_dim,
                );
                (
                    all.narrow(D::Minus1, 0, nq)?,
                    all.narrow(D::Minus1, nq, nk)?,
                    all.narrow(D::Minus1, nq + nk, nk)?,
                )
            }
            None => (
                project(&self.q_proj, x)?,
                project(&self.k_proj, x)?,
                project(&self.v_proj, x)?,
            ),
        };
        let q = rotary.apply(&heads(q, self.n_heads)?, offset)?; // (b, nh, t, hd)
        let k = rotary.apply(&heads(k, self.n_kv_heads)?, offset)?; // (b, nkv, t, hd)
        let v = heads(v, self.n_kv_heads)?;
        let (k, v) = match past {
            Some((pk, pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
            None => (k, v),
        };
        let len = k.dim(2)?;
        let (nkv, rep, hd) = (
            self.n_kv_heads,
            self.n_heads / self.n_kv_heads,
            self.head_dim,
        );
        let scale = 1.0 / (hd as f64).sqrt();
        // Grouped-query attention without copying keys/values per query head: query head
        // `j·rep + r` uses kv head `j`, so the `rep` query heads of kv head `j` are stacked
        // as `rep·t` rows against that head's keys.
        let q = q.reshape((b, nkv, rep * t, hd))?;
        // Scores, mask and softmax in f32 whatever the compute dtype; the weights then go back
        // to it for the product with the values.
        let scores = (q
            .matmul(&k.transpose(2, 3)?.contiguous()?)?
            .to_dtype(DType::F32)?
            * scale)?
            .reshape((b, nkv, rep, t, len))?
            .broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?
            .to_dtype(v.dtype())?
            .reshape((b, nkv, rep * t, len))?;
        let out = probs
            .matmul(&v)? // (b, nkv, rep·t, hd)
            .reshape((b, self.n_heads, t, hd))?
            .transpose(1, 2)?
            .reshape((b, t, self.n_heads * hd))?;
        Ok((project(&self.o_proj, &out)?, (k, v)))
    }
}

#[derive(Debug, Clone)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
    /// gate and up stacked into one product ([`Decoder::fused`]); used instead of the two.
    gate_up: Option<Linear>,
    /// Use the fused SwiGLU kernel where it applies ([`Decoder::with_fused_kernels`]).
    fused: bool,
}

impl Mlp {
    fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Mlp {
            gate_proj: candle_nn::linear_b(h, i, false, vb.pp("gate_proj"))?,
            up_proj: candle_nn::linear_b(h, i, false, vb.pp("up_proj"))?,
            down_proj: candle_nn::linear_b(i, h, false, vb.pp("down_proj"))?,
            gate_up: None,
            fused: true,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (gate, up) = match &self.gate_up {
            Some(gu) => {
                let both = project(gu, x)?;
                let i = both.dim(D::Minus1)? / 2;
                (both.narrow(D::Minus1, 0, i)?, both.narrow(D::Minus1, i, i)?)
            }
            None => (project(&self.gate_proj, x)?, project(&self.up_proj, x)?),
        };
        let act = if self.fused && super::fused::applies(&gate) && super::fused::applies(&up) {
            super::fused::swiglu(&gate, &up)?
        } else {
            (candle_nn::ops::silu(&gate)? * up)?
        };
        project(&self.down_proj, &act)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl Layer {
    /// One pre-norm block: attention then MLP, each added to the residual stream `x`. Returns
    /// the new residual and the keys/values so far (see [`Attention::forward`]).
    fn forward(
        &self,
        x: &Tensor,
        rotary: &Rotary,
        mask: &Tensor,
        offset: usize,
        past: Option<&(Tensor, Tensor)>,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        let (h, kv) = self.self_attn.forward(
            &self.input_layernorm.forward(x)?,
            rotary,
            mask,
            offset,
            past,
        )?;
        let x = (x + h)?;
        let h = self
            .mlp
            .forward(&self.post_attention_layernorm.forward(&x)?)?;
        Ok(((x + h)?, kv))
    }
}

/// The model. Cloning is cheap (tensors are reference counted).
#[derive(Debug, Clone)]
pub struct Decoder {
    embed_tokens: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Linear,
    rotary: Rotary,
    cfg: ModelConfig,
    /// Compute dtype of the forward pass (f32 unless [`Decoder::with_compute_dtype`]).
    compute: DType,
}

impl Decoder {
    /// Builds the model from `vb` (a `VarMap`-backed builder creates and registers the weights;
    /// a tensor-backed one loads them). Names follow the HF layout.
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::msg)?;
        let m = vb.pp("model");
        let embed_tokens =
            candle_nn::embedding(cfg.vocab_size, cfg.hidden_size, m.pp("embed_tokens"))?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let l = m.pp(format!("layers.{i}"));
                Ok(Layer {
                    input_layernorm: RmsNorm::new(
                        cfg.hidden_size,
                        cfg.rms_norm_eps,
                        l.pp("input_layernorm"),
                    )?,
                    self_attn: Attention::new(cfg, l.pp("self_attn"))?,
                    post_attention_layernorm: RmsNorm::new(
                        cfg.hidden_size,
                        cfg.rms_norm_eps,
                        l.pp("post_attention_layernorm"),
                    )?,
                    mlp: Mlp::new(cfg, l.pp("mlp"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::new(cfg.hidden_size, cfg.rms_norm_eps, m.pp("norm"))?;
        let lm_head = if cfg.tie_word_embeddings {
            Linear::new(embed_tokens.embeddings().clone(), None)
        } else {
            candle_nn::linear_b(cfg.hidden_size, cfg.vocab_size, false, vb.pp("lm_head"))?
        };
        Ok(Decoder {
            embed_tokens,
            layers,
            norm,
            lm_head,
            rotary: Rotary::new(cfg, vb.device())?,
            cfg: cfg.clone(),
            compute: DType::F32,
        })
    }

    /// The same weights, run in `dtype` (see [`crate::device::Precision`]): projections and
    /// the residual stream in `dtype`, norms' statistics, attention softmax and the returned
    /// logits in f32. The weights are cast as they enter every forward (nothing is copied
    /// here), so a detached view still sees each optimizer update.
    pub fn with_compute_dtype(mut self, dtype: DType) -> Self {
        self.compute = dtype;
        self
    }

    /// The same weights with the [`super::fused`] CPU kernels (RMSNorm, RoPE, SwiGLU, and the
    /// token log-prob/entropy kernel in [`crate::algo::logprob::score`]) on, the default, or off
    /// (the elementary candle ops everywhere, as on other devices; for comparisons).
    pub fn with_fused_kernels(mut self, on: bool) -> Self {
        self.rotary.fused = on;
        self.norm.fused = on;
        for l in &mut self.layers {
            l.input_layernorm.fused = on;
            l.post_attention_layernorm.fused = on;
            l.mlp.fused = on;
        }
        self
    }

    /// Whether the [`super::fused`] kernels are on ([`Decoder::with_fused_kernels`]); scoring
    /// through [`crate::algo::logprob::score`] follows it too.
    pub fn fused_kernels(&self) -> bool {
        self.norm.fused
    }

    /// A copy for generation: each layer's q/k/v and gate/up projections stacked into one
    /// product each (4 matrix products per layer instead of 7; each token step of a small
    /// batch is dominated by their dispatch). The stacked weights are detached copies taken
    /// now, in the compute dtype: build a fresh one after every optimizer step. Same logits as
    /// `self` up to float rounding; no gradients flow through it.
    pub fn fused(&self) -> Result<Decoder> {
        let dt = self.compute;
        let cast = |l: Linear| -> Result<Linear> {
            let b = l.bias().map(|b| b.to_dtype(dt)).transpose()?;
            Ok(Linear::new(l.weight().to_dtype(dt)?, b))
        };
        let mut out = self.clone();
        for layer in &mut out.layers {
            let a = &mut layer.self_attn;
            a.qkv = Some(cast(stacked(&[&a.q_proj, &a.k_proj, &a.v_proj])?)?);
            let m = &mut layer.mlp;
            m.gate_up = Some(cast(stacked(&[&m.gate_proj, &m.up_proj])?)?);
        }
        Ok(out)
    }

    /// The compute dtype (f32 by default).
    pub fn compute_dtype(&self) -> DType {
        self.compute
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.embed_tokens.embeddings().device()
    }

    /// The architecture.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Logits for every position: `ids` `(b, t)` u32 → `(b, t, vocab)` f32 (in every compute
    /// dtype). Causal attention
    /// only, so right padding never changes the outputs of earlier positions.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        self.forward_from(ids, &mut KvCache::default())
    }

    /// Logits of the new positions `ids` `(b, t)`, which follow the `cache.len()` positions
    /// already in `cache`, and their keys/values appended to it: feeding a prompt and then one
    /// token at a time gives the logits [`Decoder::forward`] gives for the whole sequence,
    /// without recomputing the prefix. For sampling: use a detached view (the cache would
    /// otherwise hold autograd graphs), and one cache per batch of rows.
    pub fn forward_from(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let hidden = self.hidden_from(ids, cache)?;
        self.head(&hidden)
    }

    /// Like [`Decoder::forward_from`], but the logits `(b, vocab)` of the last new position
    /// only: what sampling needs, without the output head over the rest of a prompt.
    pub fn forward_last(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let hidden = self.hidden_from(ids, cache)?;
        let t = hidden.dim(1)?;
        self.head(&hidden.narrow(1, t - 1, 1)?)?.squeeze(1)
    }

    /// Logits `(b, t − from, vocab)` of positions `from..t` of `ids` `(b, t)`: the whole
    /// sequence runs through the layers, the output head (the largest product of a small model
    /// with a large vocabulary) only over the positions asked for. `forward_tail(ids, 0)` is
    /// [`Decoder::forward`].
    pub fn forward_tail(&self, ids: &Tensor, from: usize) -> Result<Tensor> {
        let hidden = self.hidden_from(ids, &mut KvCache::default())?;
        let t = hidden.dim(1)?;
        if from >= t {
            candle_core::bail!("forward_tail from position {from} of a {t}-token sequence");
        }
        self.head(&hidden.narrow(1, from, t - from)?)
    }

    /// Final norm and output head: `(b, t, h)` → `(b, t, vocab)` f32.
    fn head(&self, hidden: &Tensor) -> Result<Tensor> {
        self.logits_of(&self.norm.forward(hidden)?)
    }

    /// The output head's input `(b, t − from, h)` (the final norm's output, in the compute
    /// dtype) for positions `from..t` of `ids` `(b, t)`: with [`Decoder::logits_of`] it gives
    /// [`Decoder::forward_tail`]'s logits, and it is what the entropy-change estimators of
    /// [`crate::algo::coupled`] take as the features of each position.
    pub fn head_input_tail(&self, ids: &Tensor, from: usize) -> Result<Tensor> {
        let hidden = self.hidden_from(ids, &mut KvCache::default())?;
        let t = hidden.dim(1)?;
        if from >= t {
            candle_core::bail!("head_input_tail from position {from} of a {t}-token sequence");
        }
        self.norm.forward(&hidden.narrow(1, from, t - from)?)
    }

    /// The output head over head inputs `(…, h)` → logits `(…, vocab)` f32.
    pub fn logits_of(&self, head_input: &Tensor) -> Result<Tensor> {
        project(&self.lm_head, head_input)?.to_dtype(DType::F32)
    }

    /// The output head's weight `(vocab, h)` (the input embedding when the two are tied).
    pub fn head_weight(&self) -> &Tensor {
        self.lm_head.weight()
    }

    /// The residual stream after the last layer for the new positions `ids`, appending their
    /// keys/values to `cache`.
    fn hidden_from(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (_b, t) = ids.dims2()?;
        let offset = cache.len;
        if offset + t > self.cfg.max_position_embeddings {
            candle_core::bail!(
                "sequence of {} tokens exceeds max_position_embeddings {}",
                offset + t,
                self.cfg.max_position_embeddings
            );
        }
        if !cache.layers.is_empty() && cache.layers.len() != self.layers.len() {
            candle_core::bail!("KV cache of another model");
        }
        let mask = causal_mask(t, offset, ids.device())?;
        let mut x = self.embed_tokens.forward(ids)?.to_dtype(self.compute)?;
        let mut kvs = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let (y, kv) = layer.forward(&x, &self.rotary, &mask, offset, cache.layers.get(i))?;
            kvs.push(kv);
            x = y;
        }
        cache.layers = kvs;
        cache.len = offset + t;
        Ok(x)
    }

    /// The residual stream entering layer `layer` (`0`: the token embeddings) at every position
    /// of `ids` `(b, t)`, in the compute dtype. With [`Decoder::head_input_from_layer`] it splits
    /// the forward pass in two, so that the layers above `layer` can be rerun alone.
    pub fn residual_before(&self, ids: &Tensor, layer: usize) -> Result<Tensor> {
        let (_b, t) = ids.dims2()?;
        if layer > self.layers.len() || t > self.cfg.max_position_embeddings {
            candle_core::bail!("residual_before layer {layer} of {}", self.layers.len());
        }
        let mask = causal_mask(t, 0, ids.device())?;
        let mut x = self.embed_tokens.forward(ids)?.to_dtype(self.compute)?;
        for l in &self.layers[..layer] {
            x = l.forward(&x, &self.rotary, &mask, 0, None)?.0;
        }
        Ok(x)
    }

    /// Layers `layer..` over the residual stream `x` `(b, t, h)` of whole sequences (as
    /// [`Decoder::residual_before`] gives it), then the final norm, for positions `from..t`:
    /// the head input [`Decoder::head_input_tail`] gives when `x` is that residual.
    pub fn head_input_from_layer(&self, x: &Tensor, layer: usize, from: usize) -> Result<Tensor> {
        let (_b, t, _h) = x.dims3()?;
        if layer > self.layers.len() || from >= t {
            candle_core::bail!("head_input_from_layer {layer} from position {from} of {t}");
        }
        let mask = causal_mask(t, 0, x.device())?;
        let mut x = x.clone();
        for l in &self.layers[layer..] {
            x = l.forward(&x, &self.rotary, &mask, 0, None)?.0;
        }
        self.norm.forward(&x.narrow(1, from, t - from)?)
    }
}

/// Keys and values of the positions a [`Decoder`] has seen, per layer `(b, n_kv, len, hd)`.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    len: usize,
}

impl KvCache {
    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first forward.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A cache of `rows` rows from a one-row cache: a prompt shared by a group is run through
    /// the model once and then continued on `rows` rows.
    pub fn repeat_rows(&self, rows: usize) -> Result<KvCache> {
        let widen = |x: &Tensor| -> Result<Tensor> {
            let (b, n, len, d) = x.dims4()?;
            if b != 1 {
                candle_core::bail!("repeat_rows needs a one-row cache, this one has {b}");
            }
            x.expand((rows, n, len, d))?.contiguous()
        };
        Ok(KvCache {
            layers: self
                .layers
                .iter()
                .map(|(k, v)| Ok((widen(k)?, widen(v)?)))
                .collect::<Result<_>>()?,
            len: self.len,
        })
    }
}

/// `(t, offset + t)` additive mask for `t` new positions after `offset` cached ones: new
/// position `i` sees every cached position and new positions up to `i` (0), not later ones (−∞).
fn causal_mask(t: usize, offset: usize, dev: &Device) -> Result<Tensor> {
    let data: Vec<f32> = (0..t)
        .flat_map(|i| {
            (0..offset + t).map(move |j| {
                if j <= offset + i {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Tensor::from_vec(data, (t, offset + t), dev)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::fused::agreement::max_abs_diff;
    use candle_nn::VarMap;

    pub(crate) fn tiny_config(vocab: usize) -> ModelConfig {
        ModelConfig {
            family: Family::Qwen2,
            vocab_size: vocab,
            hidden_size: 32,
            intermediate_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-6,
            max_position_embeddings: 64,
            tie_word_embeddings: false,
            rope_scaling: None,
        }
    }

    #[test]
    fn every_trainable_tensor_gets_a_nonzero_gradient() {
        for (family, tied) in [
            (Family::Qwen2, false),
            (Family::Qwen2, true),
            (Family::Llama, false),
            (Family::Llama, true),
        ] {
            let vm = VarMap::new();
            let dev = Device::Cpu;
            let mut cfg = tiny_config(17);
            cfg.tie_word_embeddings = tied;
            cfg.family = family;
            let model = Decoder::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
            let ids = Tensor::new(&[[1u32, 5, 3, 9, 2], [4, 4, 8, 0, 16]], &dev).unwrap();
            let logits = model.forward(&ids).unwrap();
            assert_eq!(logits.dims(), &[2, 5, 17]);
            let lp = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
            let loss = lp.sqr().unwrap().mean_all().unwrap();
            let grads = loss.backward().unwrap();
            let data = vm.data().lock().unwrap();
            // embed, final norm, lm_head; per layer q/k/v weights (+ biases for Qwen2), o,
            // gate/up/down, 2 norms.
            let per_layer = if family.qkv_bias() { 12 } else { 9 };
            let expected = 3 + 2 * per_layer - usize::from(tied);
            assert_eq!(data.len(), expected, "{family:?} tied={tied}");
            for (name, var) in data.iter() {
                let g = grads
                    .get(var.as_tensor())
                    .unwrap_or_else(|| panic!("no gradient for {name}"));
                let norm = g
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(norm > 0.0 && norm.is_finite(), "{name}: grad norm {norm}");
            }
        }
    }

    /// A seeded random model of `family` over a fresh `VarMap` (tiny config, vocabulary
    /// `vocab`, weights ~ N(0, 0.3²) from `seed`).
    fn seeded(family: Family, vocab: usize, seed: u64) -> (VarMap, Decoder) {
        let vm = VarMap::new();
        let cfg = ModelConfig {
            family,
            ..tiny_config(vocab)
        };
        let model =
            Decoder::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
        crate::model::init_weights(&vm, seed, 0.3).unwrap();
        (vm, model)
    }

    #[test]
    fn fused_kernels_match_the_unfused_ops_in_logits_and_every_gradient() {
        use crate::algo::logprob;
        for (family, tied) in [(Family::Qwen2, false), (Family::Llama, true)] {
            let dev = Device::Cpu;
            let vm = VarMap::new();
            let cfg = ModelConfig {
                family,
                tie_word_embeddings: tied,
                ..tiny_config(99)
            };
            let model = Decoder::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
            crate::model::init_weights(&vm, 21, 0.3).unwrap();
            let ids = Tensor::new(&[[1u32, 5, 3, 9, 7, 2], [4, 4, 8, 0, 16, 98]], &dev).unwrap();
            let targets = Tensor::new(&[[5u32, 3, 9, 7, 2], [4, 8, 0, 16, 98]], &dev).unwrap();
            let run = |fused: bool| {
                let m = model.clone().with_fused_kernels(fused);
                let logits = m.forward_tail(&ids, 1).unwrap();
                let (lp, h) = if fused {
                    logprob::logprobs_and_entropy(&logits, &targets, 0.8).unwrap()
                } else {
                    logprob::logprobs_and_entropy_unfused(&logits, &targets, 0.8).unwrap()
                };
                let loss =
                    (lp.mean_all().unwrap() - (h.mean_all().unwrap() * 0.3).unwrap()).unwrap();
                (logits, loss.backward().unwrap())
            };
            let (l1, g1) = run(true);
            let (l0, g0) = run(false);
            let diff = max_abs_diff(&l1, &l0);
            assert!(diff < 1e-5, "{family:?}: fused Δlogit {diff}");
            for (name, var) in vm.data().lock().unwrap().iter() {
                let a = g1
                    .get(var.as_tensor())
                    .unwrap_or_else(|| panic!("{family:?}: no gradient for {name}"));
                let b = g0.get(var.as_tensor()).unwrap();
                let norm = a
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(norm > 0.0 && norm.is_finite(), "{name}: grad norm {norm}");
                let diff = max_abs_diff(a, b);
                assert!(diff < 1e-5, "{family:?} {name}: fused Δgrad {diff}");
            }
        }
    }

    #[test]
    fn cached_decoding_gives_the_full_forward_logits() {
        for family in [Family::Qwen2, Family::Llama] {
            let dev = Device::Cpu;
            let (_, model) = seeded(family, 19, 5);
            let ids =
                Tensor::new(&[[1u32, 5, 3, 9, 7, 2, 11], [4, 4, 8, 0, 16, 18, 3]], &dev).unwrap();
            let full = model.forward(&ids).unwrap();
            // Prompt of 3, then 1, then 3 at once, then none left.
            let mut cache = KvCache::default();
            let mut parts = Vec::new();
            for (start, len) in [(0, 3), (3, 1), (4, 3)] {
                parts.push(
                    model
                        .forward_from(&ids.narrow(1, start, len).unwrap(), &mut cache)
                        .unwrap(),
                );
                assert_eq!(cache.len(), start + len);
            }
            let stepped = Tensor::cat(&parts, 1).unwrap();
            let diff = max_abs_diff(&full, &stepped);
            assert!(diff < 1e-5, "{family:?}: max |Δlogit| {diff}");
            let too_long = Tensor::zeros((1, 64), DType::U32, &dev).unwrap();
            assert!(model.forward_from(&too_long, &mut cache).is_err());
        }
    }

    #[test]
    fn last_position_logits_and_widened_cache_match_the_batched_forward() {
        for family in [Family::Qwen2, Family::Llama] {
            let dev = Device::Cpu;
            let (_, model) = seeded(family, 19, 6);
            // Three rows sharing a prompt of 4, then a different token each.
            let ids = Tensor::new(
                &[[1u32, 5, 3, 9, 7], [1, 5, 3, 9, 2], [1, 5, 3, 9, 18]],
                &dev,
            )
            .unwrap();
            let full = model.forward(&ids).unwrap(); // (3, 5, v)
            let mut one = KvCache::default();
            let prompt = model
                .forward_last(
                    &ids.narrow(0, 0, 1).unwrap().narrow(1, 0, 4).unwrap(),
                    &mut one,
                )
                .unwrap(); // (1, v)
            assert_eq!(prompt.dims(), &[1, 19]);
            let want = full.narrow(1, 3, 1).unwrap().squeeze(1).unwrap();
            let diff = max_abs_diff(&want.narrow(0, 0, 1).unwrap(), &prompt);
            assert!(diff < 1e-5, "{family:?}: prompt logits {diff}");
            let mut three = one.repeat_rows(3).unwrap();
            assert_eq!(three.len(), 4);
            let next = model
                .forward_last(&ids.narrow(1, 4, 1).unwrap(), &mut three)
                .unwrap(); // (3, v)
            let want = full.narrow(1, 4, 1).unwrap().squeeze(1).unwrap();
            let diff = max_abs_diff(&want, &next);
            assert!(diff < 1e-5, "{family:?}: continued logits {diff}");
            assert!(three.repeat_rows(2).is_err(), "only one-row caches widen");
        }
    }

    #[test]
    fn fused_projections_give_the_same_logits() {
        for family in [Family::Qwen2, Family::Llama] {
            let dev = Device::Cpu;
            let (vm, model) = seeded(family, 19, 8);
            let fused = model.fused().unwrap();
            let ids = Tensor::new(&[[1u32, 5, 3, 9, 7], [4, 4, 8, 0, 16]], &dev).unwrap();
            let diff = max_abs_diff(&model.forward(&ids).unwrap(), &fused.forward(&ids).unwrap());
            assert!(diff < 1e-5, "{family:?}: fused Δlogit {diff}");
            // A copy: later updates of the weights do not reach it.
            crate::model::init_weights(&vm, 9, 0.3).unwrap();
            let diff = max_abs_diff(&model.forward(&ids).unwrap(), &fused.forward(&ids).unwrap());
            assert!(
                diff > 1e-3,
                "{family:?}: the fused copy followed the update"
            );
        }
    }

    #[test]
    fn causal_outputs_ignore_later_tokens() {
        let vm = VarMap::new();
        let dev = Device::Cpu;
        let model = Decoder::new(
            &tiny_config(11),
            VarBuilder::from_varmap(&vm, DType::F32, &dev),
        )
        .unwrap();
        let a = model
            .forward(&Tensor::new(&[[1u32, 2, 3, 4]], &dev).unwrap())
            .unwrap();
        let b = model
            .forward(&Tensor::new(&[[1u32, 2, 3, 9]], &dev).unwrap())
            .unwrap();
        let diff = max_abs_diff(&a.narrow(1, 0, 3).unwrap(), &b.narrow(1, 0, 3).unwrap());
        assert!(diff < 1e-6, "prefix changed by {diff}");
    }

    #[test]
    fn gradient_matches_finite_difference() {
        let vm = VarMap::new();
        let dev = Device::Cpu;
        let model = Decoder::new(
            &tiny_config(13),
            VarBuilder::from_varmap(&vm, DType::F32, &dev),
        )
        .unwrap();
        let ids = Tensor::new(&[[1u32, 7, 3, 12]], &dev).unwrap();
        let loss_of = |m: &Decoder| -> Tensor {
            let lp = candle_nn::ops::log_softmax(&m.forward(&ids).unwrap(), D::Minus1).unwrap();
            lp.narrow(2, 2, 1).unwrap().sum_all().unwrap()
        };
        let grads = loss_of(&model).backward().unwrap();
        let var = vm
            .data()
            .lock()
            .unwrap()
            .get("model.layers.0.self_attn.k_proj.weight")
            .unwrap()
            .clone();
        let g = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let base = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let idx = 5;
        let h = 1e-2f32;
        let eval = |delta: f32| {
            let mut w = base.clone();
            w[idx] += delta;
            var.set(&Tensor::from_vec(w, var.as_tensor().shape(), &dev).unwrap())
                .unwrap();
            loss_of(&model).to_scalar::<f32>().unwrap()
        };
        let fd = (eval(h) - eval(-h)) / (2.0 * h);
        let rel = (fd - g[idx]).abs() / g[idx].abs().max(1e-4);
        assert!(rel < 2e-2, "autograd {} vs finite difference {fd}", g[idx]);
    }

    /// `cos(a, b)` of two flattened tensors.
    fn cosine(a: &Tensor, b: &Tensor) -> f32 {
        let dot = (a * b)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let n = |t: &Tensor| {
            t.sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                .sqrt()
        };
        dot / (n(a) * n(b))
    }

    #[test]
    fn bf16_compute_tracks_f32_and_keeps_f32_gradients() {
        for family in [Family::Qwen2, Family::Llama] {
            let dev = Device::Cpu;
            let (vm, f32_model) = seeded(family, 23, 9);
            let bf16_model = f32_model.clone().with_compute_dtype(DType::BF16);
            assert_eq!(bf16_model.compute_dtype(), DType::BF16);
            let ids = Tensor::new(&[[1u32, 5, 3, 9, 7, 2], [4, 4, 8, 0, 16, 22]], &dev).unwrap();
            let loss_and_grads = |m: &Decoder| {
                let logits = m.forward(&ids).unwrap();
                assert_eq!(logits.dtype(), DType::F32);
                let lp = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
                let loss = lp.narrow(2, 3, 1).unwrap().mean_all().unwrap();
                (logits, loss.backward().unwrap())
            };
            let (l32, g32) = loss_and_grads(&f32_model);
            let (l16, g16) = loss_and_grads(&bf16_model);
            // bf16 keeps 8 bits of mantissa: logits agree to a few hundredths of their spread.
            let spread = l32
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let diff = max_abs_diff(&l32, &l16);
            assert!(diff > 0.0, "{family:?}: bf16 ran in f32");
            assert!(
                diff < 0.05 * spread,
                "{family:?}: max |Δlogit| {diff} of {spread}"
            );
            for (name, var) in vm.data().lock().unwrap().iter() {
                let a = g32.get(var.as_tensor()).unwrap();
                let b = g16
                    .get(var.as_tensor())
                    .unwrap_or_else(|| panic!("bf16: no gradient for {name}"));
                assert_eq!(b.dtype(), DType::F32, "{name}: gradient dtype");
                let c = cosine(a, b);
                assert!(
                    c > 0.98,
                    "{family:?} {name}: cos(grad f32, grad bf16) = {c}"
                );
            }
            // The KV cache runs in bf16 too and agrees with the full bf16 forward.
            let mut cache = KvCache::default();
            let head = bf16_model
                .forward_from(&ids.narrow(1, 0, 4).unwrap(), &mut cache)
                .unwrap();
            let tail = bf16_model
                .forward_from(&ids.narrow(1, 4, 2).unwrap(), &mut cache)
                .unwrap();
            let stepped = Tensor::cat(&[head, tail], 1).unwrap();
            let diff = max_abs_diff(&l16, &stepped);
            assert!(
                diff < 0.05 * spread,
                "{family:?}: cached bf16 Δlogit {diff}"
            );
        }
    }
}
