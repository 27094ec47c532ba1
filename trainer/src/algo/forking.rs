//! Forking tokens / 80-20 (Wang et al. 2025): keep the policy gradient only on tokens whose
//! entropy is in the top ρ of the batch: `A_t ← A_t · 1[H_t ≥ τ_ρ]`.

/// Advantages with low-entropy tokens zeroed; `rho` default 0.2. τ is the ⌈ρN⌉-th largest
/// valid entropy.
pub fn keep_high_entropy(adv: &[f32], entropy: &[f32], mask: &[bool], rho: f64) -> Vec<f32> {
    let mut valid: Vec<f32> = entropy
        .iter()
        .zip(mask)
        .filter(|&(_, &m)| m)
        .map(|(&h, _)| h)
        .collect();
    if valid.is_empty() {
        return adv.to_vec();
    }
    valid.sort_by(|a, b| b.total_cmp(a));
    let k = ((rho * valid.len() as f64).ceil() as usize).clamp(1, valid.len());
    let tau = valid[k - 1];
    adv.iter()
        .zip(entropy)
        .map(|(&a, &h)| if h >= tau { a } else { 0.0 })
        .collect()
}
