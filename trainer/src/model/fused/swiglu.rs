//! SwiGLU `silu(gate) · up`, forward and backward each in one pass.
//!
//! With `σ = 1 / (1 + e^{−a})` for gate `a`, up `u` and incoming gradient `g`:
//! `∂L/∂a = g·u·σ·(1 + a·(1 − σ))` and `∂L/∂u = g·a·σ`. The unfused `silu(gate) * up` writes
//! two temporaries forward and five backward.

use super::{TASK, chunk, f32s, map_chunks, map_chunks2};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

/// `silu(gate) · up` for `gate` and `up` of one shape, f32 on the CPU (see
/// [`super::applies`]); the result has that shape. Differentiable in both.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if gate.shape() != up.shape() {
        candle_core::bail!(
            "swiglu: gate {:?} against up {:?}",
            gate.shape(),
            up.shape()
        );
    }
    gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)
}

fn sigmoid(a: f32) -> f32 {
    1.0 / (1.0 + (-a).exp())
}

/// Forward: `gate`, `up` of one shape → `silu(gate) · up`.
struct SwiGlu;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let a = f32s(s1, l1, self.name())?;
        let u = f32s(s2, l2, self.name())?;
        if a.len() != u.len() {
            candle_core::bail!("{}: {} gates for {} ups", self.name(), a.len(), u.len());
        }
        let mut y = vec![0f32; a.len()];
        map_chunks(&mut y, TASK, |k, y| {
            let (a, u) = (chunk(a, TASK, k), chunk(u, TASK, k));
            let mut i = 0;
            while i < y.len() {
                y[i] = a[i] * sigmoid(a[i]) * u[i];
                i += 1;
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let both = gate.apply_op3_no_bwd(up, &grad_res.contiguous()?, &SwiGluGrad)?;
        Ok((Some(both.get(0)?), Some(both.get(1)?)))
    }
}

/// Backward: `gate`, `up`, `g` of one shape `s` → `(2, s…)`: the gradient of `gate`, then that
/// of `up`.
struct SwiGluGrad;

impl CustomOp3 for SwiGluGrad {
    fn name(&self) -> &'static str {
        "swiglu-grad"
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
        let a = f32s(s1, l1, self.name())?;
        let u = f32s(s2, l2, self.name())?;
        let g = f32s(s3, l3, self.name())?;
        let n = a.len();
        if u.len() != n || g.len() != n {
            candle_core::bail!("{}: mismatched inputs", self.name());
        }
        let mut out = vec![0f32; 2 * n];
        let (da, du) = out.split_at_mut(n);
        map_chunks2(da, du, TASK, |k, da, du| {
            let (a, u, g) = (chunk(a, TASK, k), chunk(u, TASK, k), chunk(g, TASK, k));
            let mut i = 0;
            while i < da.len() {
                let s = sigmoid(a[i]);
                da[i] = g[i] * u[i] * s * (1.0 + a[i] * (1.0 - s));
                du[i] = g[i] * a[i] * s;
                i += 1;
            }
        });
        let mut dims = vec![2];
        dims.extend_from_slice(l1.shape().dims());
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fused::agreement::{max_rel_diff, uniform, values};
    use candle_core::{Device, Var};
    use rand::SeedableRng;

    #[test]
    fn values_and_gradients_match_the_unfused_ops() {
        let dev = Device::Cpu;
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        for shape in [(2, 3, 64), (2, 40, 1536)] {
            let n = shape.0 * shape.1 * shape.2;
            for scale in [1.0f32, 20.0] {
                let a = Var::from_vec(uniform(&mut rng, n, scale), shape, &dev).unwrap();
                let u = Var::from_vec(uniform(&mut rng, n, scale), shape, &dev).unwrap();
                let g = Tensor::from_vec(uniform(&mut rng, n, 1.0), shape, &dev).unwrap();
                let y = swiglu(a.as_tensor(), u.as_tensor()).unwrap();
                let y0 = (candle_nn::ops::silu(a.as_tensor()).unwrap() * u.as_tensor()).unwrap();
                let what = format!("{shape:?} scale {scale}");
                assert!(max_rel_diff(&y, &y0) < 1e-5, "{what}: values");
                let gr = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
                let gr0 = (&y0 * &g).unwrap().sum_all().unwrap().backward().unwrap();
                for (name, v) in [("gate", &a), ("up", &u)] {
                    let diff = max_rel_diff(gr.get(v).unwrap(), gr0.get(v).unwrap());
                    assert!(diff < 1e-5, "{what}: ∂/∂{name} off by {diff}");
                }
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let dev = Device::Cpu;
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let n = 12;
        let a0 = uniform(&mut rng, n, 4.0);
        let u0 = uniform(&mut rng, n, 2.0);
        let g = Tensor::from_vec(uniform(&mut rng, n, 1.0), n, &dev).unwrap();
        let eval = |a: &[f32], u: &[f32]| -> f64 {
            let a = Tensor::from_vec(a.to_vec(), n, &dev).unwrap();
            let u = Tensor::from_vec(u.to_vec(), n, &dev).unwrap();
            let y = swiglu(&a, &u).unwrap();
            f64::from(
                (y * &g)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap(),
            )
        };
        let a = Var::from_vec(a0.clone(), n, &dev).unwrap();
        let u = Var::from_vec(u0.clone(), n, &dev).unwrap();
        let y = swiglu(a.as_tensor(), u.as_tensor()).unwrap();
        let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let (ga, gu) = (
            values(grads.get(&a).unwrap()),
            values(grads.get(&u).unwrap()),
        );
        let h = 1e-2f32;
        for i in 0..n {
            for (which, auto) in [(0, ga[i]), (1, gu[i])] {
                let (mut up, mut down) = ([a0.clone(), u0.clone()], [a0.clone(), u0.clone()]);
                up[which][i] += h;
                down[which][i] -= h;
                let fd = (eval(&up[0], &up[1]) - eval(&down[0], &down[1])) / (2.0 * f64::from(h));
                let err = (fd - f64::from(auto)).abs();
                assert!(
                    err < 2e-3 * fd.abs().max(0.1),
                    "{which}/{i}: autograd {auto} vs {fd}"
                );
            }
        }
    }
}
