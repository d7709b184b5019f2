//! Seeded randomness: how seeds are derived and the distributions drawn from.
//!
//! Every random choice of the emulator comes from a [`SmallRng`] seeded by
//! [`mix`]ing the base seed with a fixed tag and a number (the stream, the
//! event index, the purpose), never from a shared generator whose state
//! depends on what was drawn before. That is what makes event `N` of a stream
//! a function of `(seed, stream, N)` alone. Changing any tag, the mixing
//! function or the order of draws changes every generated tweet.

use rand::rngs::SmallRng;
use rand::Rng;
use rand_distr::StandardNormal;

/// Mixes a seed with a number (SplitMix64 finaliser).
pub(super) fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of one stream (1 or 2, or any other number) derived from the base seed.
pub(super) fn stream_seed(seed: u64, stream: u32) -> u64 {
    mix(mix(seed, 0x5354_5245_414d), u64::from(stream))
}

/// Cumulative weights for sampling an index.
#[derive(Debug, Clone)]
pub(super) struct Cdf(Vec<f64>);

impl Cdf {
    /// Cumulative sums of `weights` (negative weights count as 0).
    pub(super) fn new(weights: impl IntoIterator<Item = f64>) -> Cdf {
        let mut acc = 0.0;
        Cdf(weights
            .into_iter()
            .map(|w| {
                acc += w.max(0.0);
                acc
            })
            .collect())
    }

    /// Zipf-like weights `1 / (rank + offset)^s`.
    pub(super) fn zipf(n: usize, s: f64, offset: f64) -> Cdf {
        Cdf::new((0..n).map(|i| 1.0 / (i as f64 + offset).powf(s)))
    }

    /// An index drawn with probability proportional to its weight.
    pub(super) fn sample(&self, rng: &mut SmallRng) -> usize {
        let total = self.0.last().copied().unwrap_or(0.0);
        let x = rng.gen::<f64>() * total;
        self.0
            .partition_point(|&c| c <= x)
            .min(self.0.len().saturating_sub(1))
    }
}

/// A draw of the standard normal distribution.
fn normal(rng: &mut SmallRng) -> f64 {
    rng.sample(StandardNormal)
}

/// A draw of the log-normal distribution `exp(mu + sigma·N(0, 1))`.
pub(super) fn lognormal(rng: &mut SmallRng, mu: f64, sigma: f64) -> f64 {
    (mu + sigma * normal(rng)).exp()
}

/// One item of `items`, uniformly (`items` must not be empty).
pub(super) fn pick_any<'a, T>(rng: &mut SmallRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// One word of `items`, uniformly (`items` must not be empty).
pub(super) fn pick(rng: &mut SmallRng, items: &[&'static str]) -> &'static str {
    items[rng.gen_range(0..items.len())]
}
