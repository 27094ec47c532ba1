//! Rotary position embedding, half-split layout (as Hugging Face's Llama and Qwen2 apply it),
//! in one pass forward and one backward.
//!
//! For `x` `(b, h, t, d)` with halves `x₁ = x[…, :d/2]`, `x₂ = x[…, d/2:]` and tables `c`, `s`
//! `(t, d/2)`: `y₁ = x₁·c − x₂·s`, `y₂ = x₂·c + x₁·s`. The map is a rotation per pair, so its
//! backward is the rotation by the opposite angle: the same kernel with `−s`. The tables are
//! constants (no gradient). Replaces candle's `rope_slow` (two concatenations of the tables, a
//! negation and concatenation of the halves, two products and a sum).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::{chunk, f32s, map_chunks, rows_per_task};

/// `x` `(b, h, t, d)` f32 on the CPU (see [`super::applies`]) rotated by `cos`, `sin`
/// `(t, d/2)` f32; differentiable in `x`. Returns `None` when the tables carry a gradient
/// graph (this op treats them as constants): the caller then uses the unfused op.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Option<Tensor>> {
    if cos.track_op() || sin.track_op() {
        return Ok(None);
    }
    let (_b, _h, t, d) = x.dims4()?;
    if d % 2 != 0 || cos.dims() != [t, d / 2] || sin.dims() != [t, d / 2] {
        candle_core::bail!(
            "rope: x {:?} with tables {:?} and {:?}",
            x.shape(),
            cos.shape(),
            sin.shape()
        );
    }
    x.contiguous()?
        .apply_op3(
            &cos.contiguous()?,
            &sin.contiguous()?,
            Rope { inverse: false },
        )
        .map(Some)
}

/// `x` `(b, h, t, d)`, `cos`, `sin` `(t, d/2)` → `(b, h, t, d)`; `inverse` rotates by `−s`.
struct Rope {
    inverse: bool,
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        "rope-half-split"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let cos = f32s(s2, l2, self.name())?;
        let sin = f32s(s3, l3, self.name())?;
        let (_b, _h, t, d) = l1.shape().dims4()?;
        let half = d / 2;
        if cos.len() != t * half || sin.len() != t * half {
            candle_core::bail!("{}: tables of {} for {t}×{half}", self.name(), cos.len());
        }
        let sign = if self.inverse { -1.0f32 } else { 1.0 };
        let mut y = vec![0f32; x.len()];
        let per = rows_per_task(d);
        map_chunks(&mut y, d * per, |k, y| {
            let x = chunk(x, d * per, k);
            for (i, (y, x)) in y.chunks_mut(d).zip(x.chunks(d)).enumerate() {
                let pos = (k * per + i) % t;
                let (c, s) = (
                    &cos[pos * half..(pos + 1) * half],
                    &sin[pos * half..(pos + 1) * half],
                );
                let (x1, x2) = x.split_at(half);
                let (y1, y2) = y.split_at_mut(half);
                let mut j = 0;
                while j < half {
                    let s = sign * s[j];
                    y1[j] = x1[j] * c[j] - x2[j] * s;
                    y2[j] = x2[j] * c[j] + x1[j] * s;
                    j += 1;
                }
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad_res.contiguous()?.apply_op3_no_bwd(
            cos,
            sin,
            &Rope {
                inverse: !self.inverse,
            },
        )?;
        Ok((Some(grad), None, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fused::agreement::{max_rel_diff, uniform, values};
    use candle_core::{Device, Var};
    use rand::SeedableRng;

    /// Tables of positions `offset..offset + t` for width `d`, as the decoder builds them.
    fn tables(t: usize, d: usize, offset: usize, dev: &Device) -> (Tensor, Tensor) {
        let half = d / 2;
        let angles: Vec<f32> = (offset..offset + t)
            .flat_map(|p| {
                (0..half).map(move |i| p as f32 / 10_000f32.powf(2.0 * i as f32 / d as f32))
            })
            .collect();
        let a = Tensor::from_vec(angles, (t, half), dev).unwrap();
        (a.cos().unwrap(), a.sin().unwrap())
    }

    #[test]
    fn values_and_gradients_match_the_unfused_ops() {
        let dev = Device::Cpu;
        let mut rng = rand::rngs::StdRng::seed_from_u64(19);
        for (b, h, t, d, offset) in [(2, 3, 5, 8, 0), (2, 9, 40, 64, 7), (3, 3, 1, 64, 33)] {
            let n = b * h * t * d;
            let x = Var::from_vec(uniform(&mut rng, n, 3.0), (b, h, t, d), &dev).unwrap();
            let g = Tensor::from_vec(uniform(&mut rng, n, 1.0), (b, h, t, d), &dev).unwrap();
            let (cos, sin) = tables(t, d, offset, &dev);
            let y = rope(x.as_tensor(), &cos, &sin).unwrap().unwrap();
            let y0 = candle_nn::rotary_emb::rope_slow(x.as_tensor(), &cos, &sin).unwrap();
            let what = format!("({b},{h},{t},{d}) from {offset}");
            assert!(max_rel_diff(&y, &y0) < 1e-5, "{what}: values");
            let gr = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let gr0 = (&y0 * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let diff = max_rel_diff(gr.get(&x).unwrap(), gr0.get(&x).unwrap());
            assert!(diff < 1e-5, "{what}: gradient off by {diff}");
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let dev = Device::Cpu;
        let mut rng = rand::rngs::StdRng::seed_from_u64(23);
        let shape = (1, 2, 3, 4);
        let n = 24;
        let x0 = uniform(&mut rng, n, 2.0);
        let g = Tensor::from_vec(uniform(&mut rng, n, 1.0), shape, &dev).unwrap();
        let (cos, sin) = tables(3, 4, 2, &dev);
        let eval = |x: &[f32]| -> f64 {
            let x = Tensor::from_vec(x.to_vec(), shape, &dev).unwrap();
            let y = rope(&x, &cos, &sin).unwrap().unwrap();
            f64::from(
                (y * &g)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap(),
            )
        };
        let x = Var::from_vec(x0.clone(), shape, &dev).unwrap();
        let y = rope(x.as_tensor(), &cos, &sin).unwrap().unwrap();
        let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let gx = values(grads.get(&x).unwrap());
        let h = 1e-2f32;
        for i in 0..n {
            let (mut up, mut down) = (x0.clone(), x0.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (eval(&up) - eval(&down)) / (2.0 * f64::from(h));
            let err = (fd - f64::from(gx[i])).abs();
            assert!(
                err < 2e-3 * fd.abs().max(0.1),
                "x[{i}]: autograd {} vs {fd}",
                gx[i]
            );
        }
    }
}
