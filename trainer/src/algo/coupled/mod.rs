//! Entropy-change estimates that see cross-position coupling: one update moves every
//! position's entropy through the parameters all positions share, which the token-local
//! estimates (STEER's Ω, Cui et al.'s covariance) cannot see. `docs/entropy-study.md` derives
//! them and measures how well each tracks the realised change.
//!
//! * [`head`]: the output head's empirical NTK between positions, in closed form.
//! * [`blocks`]: the output head, the final norm and the last `k` blocks, rerun from a cached
//!   residual stream (finite differences along a parameter direction).

pub mod blocks;
pub mod head;

pub use blocks::{Cached, Network, TopBlocks};
pub use head::{HeadInputs, PairMatrix, pair_matrix};
