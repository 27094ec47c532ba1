//! Group-relative advantages (GRPO): each response's reward is compared with the other
//! responses to the same prompt.

use super::AdvantageKind;

/// The advantages of `kind` for consecutive groups of `group_size` rewards; `lengths` are the
/// responses' token counts (OPO's weights), `norm_by_std` is GRPO's std scaling and
/// `w_reinforce_lambda` W-REINFORCE's weight on negative samples.
pub fn for_method(
    kind: AdvantageKind,
    rewards: &[f32],
    lengths: &[usize],
    group_size: usize,
    norm_by_std: bool,
    w_reinforce_lambda: f64,
) -> Vec<f32> {
    match kind {
        AdvantageKind::Grpo => grpo(rewards, group_size, norm_by_std),
        AdvantageKind::Rloo => rloo(rewards, group_size),
        AdvantageKind::Opo => opo(rewards, lengths, group_size),
        AdvantageKind::WReinforce => w_reinforce(rewards, w_reinforce_lambda),
    }
}

/// `A_i = (r_i − mean_g) / (std_g + 1e-6)` within each consecutive group of `group_size`
/// rewards, with the unbiased (n−1) standard deviation as in verl; without `norm_by_std`
/// (Dr. GRPO) only the mean is removed. A group whose rewards are all equal gets 0.
///
/// # Panics
/// If `group_size < 2` or `rewards.len()` is not a multiple of it.
pub fn grpo(rewards: &[f32], group_size: usize, norm_by_std: bool) -> Vec<f32> {
    assert!(group_size >= 2, "GRPO needs at least 2 samples per prompt");
    assert_eq!(
        rewards.len() % group_size,
        0,
        "rewards must fill whole groups"
    );
    rewards
        .chunks(group_size)
        .flat_map(|g| {
            let n = g.len() as f64;
            let mean = g.iter().map(|&r| f64::from(r)).sum::<f64>() / n;
            let var = g
                .iter()
                .map(|&r| (f64::from(r) - mean).powi(2))
                .sum::<f64>()
                / (n - 1.0);
            let all_equal = g.iter().all(|&r| r == g[0]);
            g.iter().map(move |&r| {
                if all_equal {
                    0.0
                } else if norm_by_std {
                    ((f64::from(r) - mean) / (var.sqrt() + 1e-6)) as f32
                } else {
                    (f64::from(r) - mean) as f32
                }
            })
        })
        .collect()
}

/// RLOO: `A_i = n/(n−1) · (r_i − mean_g)` (leave-one-out baseline).
pub fn rloo(rewards: &[f32], group_size: usize) -> Vec<f32> {
    assert!(group_size >= 2, "RLOO needs at least 2 samples per prompt");
    rewards
        .chunks(group_size)
        .flat_map(|g| {
            let n = g.len() as f64;
            let mean = g.iter().map(|&r| f64::from(r)).sum::<f64>() / n;
            g.iter()
                .map(move |&r| (n / (n - 1.0) * (f64::from(r) - mean)) as f32)
        })
        .collect()
}

/// OPO: `A_i = r_i − Σ_j |o_j| r_j / Σ_j |o_j|`, the length-weighted optimal baseline.
pub fn opo(rewards: &[f32], lengths: &[usize], group_size: usize) -> Vec<f32> {
    assert_eq!(rewards.len(), lengths.len(), "one length per reward");
    rewards
        .chunks(group_size)
        .zip(lengths.chunks(group_size))
        .flat_map(|(g, l)| {
            let total: f64 = l.iter().map(|&x| x as f64).sum();
            let b = if total > 0.0 {
                g.iter()
                    .zip(l)
                    .map(|(&r, &x)| f64::from(r) * x as f64)
                    .sum::<f64>()
                    / total
            } else {
                0.0
            };
            g.iter().map(move |&r| (f64::from(r) - b) as f32)
        })
        .collect()
}

/// W-REINFORCE: the reward itself is the advantage, `+λ` for a correct response and `−1`
/// for an incorrect one (no baseline).
pub fn w_reinforce(rewards: &[f32], lambda: f64) -> Vec<f32> {
    rewards
        .iter()
        .map(|&r| if r > 0.0 { lambda as f32 } else { -1.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Golden numbers from an independent Python reimplementation:
    //   def grpo(r):
    //       n = len(r); mu = sum(r) / n
    //       sd = math.sqrt(sum((x - mu) ** 2 for x in r) / (n - 1))
    //       return [(x - mu) / (sd + 1e-6) for x in r]
    //   grpo([1, 0, 0, 1]) + grpo([0, 0, 0, 1])
    //   -> [0.866024, -0.866024, -0.866024, 0.866024, -0.499999, -0.499999, -0.499999, 1.499997]
    #[test]
    fn golden_numbers() {
        let a = grpo(&[1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], 4, true);
        let want = [
            0.866024, -0.866024, -0.866024, 0.866024, -0.499999, -0.499999, -0.499999, 1.499997,
        ];
        for (x, y) in a.iter().zip(want) {
            assert!((x - y).abs() < 1e-5, "{a:?}");
        }
    }

    // Independent Python:
    //   n=4; mu=sum(r)/n; rloo=[n/(n-1)*(x-mu) for x in r]             r=[1,0,0,1] -> ±0.666667
    //   b=sum(l*x for l,x in zip(lens,r))/sum(lens); opo=[x-b for x in r]  lens=[10,20,30,60] -> b=0.583333
    //   w_reinforce=[0.1 if x>0 else -1.0 for x in r]
    #[test]
    fn rloo_opo_and_w_reinforce_golden_numbers() {
        let r = [1.0f32, 0.0, 0.0, 1.0];
        for (x, y) in rloo(&r, 4)
            .iter()
            .zip([0.666_667f32, -0.666_667, -0.666_667, 0.666_667])
        {
            assert!((x - y).abs() < 1e-5);
        }
        for (x, y) in opo(&r, &[10, 20, 30, 60], 4).iter().zip([
            0.416_667f32,
            -0.583_333,
            -0.583_333,
            0.416_667,
        ]) {
            assert!((x - y).abs() < 1e-5);
        }
        assert_eq!(w_reinforce(&r, 0.1), vec![0.1, -1.0, -1.0, 0.1]);
    }

    #[test]
    fn equal_groups_get_zero_and_means_cancel() {
        assert_eq!(grpo(&[1.0, 1.0, 0.0, 0.0], 2, true), vec![0.0; 4]);
        let a = grpo(&[0.3, 0.9, 0.1, 0.5, 2.0, -1.0], 3, false);
        assert!((a[0] + a[1] + a[2]).abs() < 1e-6);
        assert!((a[3] + a[4] + a[5]).abs() < 1e-6);
        // Shifting every reward in a group leaves its advantages unchanged.
        let b = grpo(&[10.3, 10.9, 10.1], 3, true);
        let c = grpo(&[0.3, 0.9, 0.1], 3, true);
        for (x, y) in b.iter().zip(&c) {
            assert!((x - y).abs() < 1e-4);
        }
    }
}
