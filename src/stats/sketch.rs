//! Top hashtags by a count-min sketch.
//!
//! A count-min sketch of width `w` and depth `d` over a stream of `N` hashtags
//! overestimates any count by at most `ε·N` with probability at least `1 − δ`,
//! where `ε = e / w` and `δ = e^(−d)` (Cormode & Muthukrishnan, 2005). With the
//! defaults `w = 2048`, `d = 4`: `ε ≈ 0.13 %` of all hashtags counted,
//! `δ ≈ 1.8 %`, in 32 KiB of counters. Counts never underestimate.
//!
//! [`TopHashtags`] keeps the `k` heaviest hashtags seen so far: every time a
//! hashtag is counted, its new estimate is compared with the lightest of the
//! current top, which it replaces when heavier. Hashtags are case-insensitive on
//! Twitter, so they are counted lower-cased.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

/// Default sketch width (counters per row).
pub(crate) const DEFAULT_WIDTH: usize = 2048;
/// Default sketch depth (rows, i.e. hash functions).
pub(crate) const DEFAULT_DEPTH: usize = 4;

/// A count-min sketch of `u64` counters.
#[derive(Debug, Clone)]
pub struct CountMinSketch {
    width: usize,
    depth: usize,
    counters: Vec<u64>,
    total: u64,
}

impl CountMinSketch {
    /// A sketch of `depth` rows of `width` counters (both at least 1).
    pub fn new(width: usize, depth: usize) -> CountMinSketch {
        let (width, depth) = (width.max(1), depth.max(1));
        CountMinSketch {
            width,
            depth,
            counters: vec![0; width * depth],
            total: 0,
        }
    }

    /// The error bound `ε` (overestimate as a fraction of [`Self::total`]).
    pub fn epsilon(&self) -> f64 {
        std::f64::consts::E / self.width as f64
    }

    /// The probability `δ` that an estimate exceeds the `ε` bound.
    pub fn delta(&self) -> f64 {
        (-(self.depth as f64)).exp()
    }

    /// Everything counted so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Column of `key` in each row, by double hashing (Kirsch–Mitzenmacher).
    fn columns(&self, key: &str) -> impl Iterator<Item = usize> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let hash = h.finish();
        let (h1, h2) = (hash as u32 as u64, (hash >> 32) | 1);
        let width = self.width as u64;
        (0..self.depth as u64).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % width) as usize)
    }

    /// Adds `n` to `key`'s count and returns its new estimate.
    pub fn add(&mut self, key: &str, n: u64) -> u64 {
        self.total += n;
        let (width, columns) = (self.width, self.columns(key));
        let mut estimate = u64::MAX;
        for (row, col) in columns.enumerate() {
            let c = &mut self.counters[row * width + col];
            *c += n;
            estimate = estimate.min(*c);
        }
        estimate
    }

    /// The estimated count of `key` (never below the true count).
    pub fn estimate(&self, key: &str) -> u64 {
        self.columns(key)
            .enumerate()
            .map(|(row, col)| self.counters[row * self.width + col])
            .min()
            .unwrap_or(0)
    }
}

/// The `k` most frequent hashtags, by count-min estimates.
#[derive(Debug, Clone)]
pub struct TopHashtags {
    sketch: CountMinSketch,
    k: usize,
    top: Vec<(String, u64)>,
}

impl TopHashtags {
    /// Tracks the top `k` hashtags with a `width` × `depth` count-min sketch.
    pub fn new(k: usize, width: usize, depth: usize) -> TopHashtags {
        TopHashtags {
            sketch: CountMinSketch::new(width, depth),
            k: k.max(1),
            top: Vec::with_capacity(k + 1),
        }
    }

    /// The sketch behind the counts.
    pub fn sketch(&self) -> &CountMinSketch {
        &self.sketch
    }

    /// Counts one occurrence of `tag` (the leading `#`, if any, is dropped; case is folded).
    pub fn add(&mut self, tag: &str) {
        let tag = tag.trim().trim_start_matches('#');
        if tag.is_empty() {
            return;
        }
        let key = tag.to_lowercase();
        let estimate = self.sketch.add(&key, 1);
        if let Some(entry) = self.top.iter_mut().find(|(t, _)| *t == key) {
            entry.1 = estimate;
            return;
        }
        if self.top.len() < self.k {
            self.top.push((key, estimate));
            return;
        }
        if let Some((i, (_, min))) = self
            .top
            .iter()
            .enumerate()
            .min_by_key(|(_, (_, count))| *count)
        {
            if estimate > *min {
                self.top[i] = (key, estimate);
            }
        }
    }

    /// The top hashtags, heaviest first (ties by name), with their estimated counts.
    pub fn top(&self) -> Vec<(String, u64)> {
        let mut top = self.top.clone();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top
    }
}

/// Magic of a shared sketch ([`TopHashtags::share_bytes`]).
const SHARE_MAGIC: &[u8; 4] = b"TFS1";

/// Reads `N` bytes at `*at`, moving it on.
fn take<'a>(b: &'a [u8], at: &mut usize, n: usize) -> Option<&'a [u8]> {
    let end = at.checked_add(n)?;
    let out = b.get(*at..end)?;
    *at = end;
    Some(out)
}

fn take_u64(b: &[u8], at: &mut usize) -> Option<u64> {
    Some(u64::from_le_bytes(take(b, at, 8)?.try_into().ok()?))
}

fn take_u32(b: &[u8], at: &mut usize) -> Option<u32> {
    Some(u32::from_le_bytes(take(b, at, 4)?.try_into().ok()?))
}

impl CountMinSketch {
    /// Adds `other`'s counts to this sketch (count-min sketches of the same shape merge
    /// by addition); `false`, and nothing changed, when the shapes differ.
    pub fn merge(&mut self, other: &CountMinSketch) -> bool {
        if (self.width, self.depth) != (other.width, other.depth) {
            return false;
        }
        for (a, b) in self.counters.iter_mut().zip(&other.counters) {
            *a = a.saturating_add(*b);
        }
        self.total = self.total.saturating_add(other.total);
        true
    }
}

impl TopHashtags {
    /// The sketch and the current top candidates as bytes, for other instances to merge
    /// ([`merged_top`]): `TFS1`, width, depth (u32 LE), total, the counters (u64 LE),
    /// the number of candidates (u32 LE), each as a u16 LE length and UTF-8.
    pub fn share_bytes(&self) -> Vec<u8> {
        let cms = &self.sketch;
        let mut b = Vec::with_capacity(24 + cms.counters.len() * 8 + self.top.len() * 24);
        b.extend_from_slice(SHARE_MAGIC);
        b.extend_from_slice(&(cms.width as u32).to_le_bytes());
        b.extend_from_slice(&(cms.depth as u32).to_le_bytes());
        b.extend_from_slice(&cms.total.to_le_bytes());
        for c in &cms.counters {
            b.extend_from_slice(&c.to_le_bytes());
        }
        b.extend_from_slice(&(self.top.len() as u32).to_le_bytes());
        for (tag, _) in &self.top {
            let t = &tag.as_bytes()[..tag.len().min(u16::MAX as usize)];
            b.extend_from_slice(&(t.len() as u16).to_le_bytes());
            b.extend_from_slice(t);
        }
        b
    }
}

/// A shared sketch read back: `None` when the bytes are not one.
fn read_share(b: &[u8]) -> Option<(CountMinSketch, Vec<String>)> {
    let mut at = 0;
    if take(b, &mut at, 4)? != SHARE_MAGIC {
        return None;
    }
    let width = take_u32(b, &mut at)? as usize;
    let depth = take_u32(b, &mut at)? as usize;
    let total = take_u64(b, &mut at)?;
    let cells = width.checked_mul(depth)?;
    if cells == 0 || cells > (1 << 24) {
        return None;
    }
    let mut counters = Vec::with_capacity(cells);
    for _ in 0..cells {
        counters.push(take_u64(b, &mut at)?);
    }
    let n = take_u32(b, &mut at)?;
    let mut tags = Vec::new();
    for _ in 0..n.min(1024) {
        let len = u16::from_le_bytes(take(b, &mut at, 2)?.try_into().ok()?) as usize;
        tags.push(String::from_utf8_lossy(take(b, &mut at, len)?).into_owned());
    }
    Some((
        CountMinSketch {
            width,
            depth,
            counters,
            total,
        },
        tags,
    ))
}

/// The top `k` hashtags of every shared sketch together: the sketches are added, and
/// the union of their candidates is ranked by the merged estimates (heaviest first,
/// ties by name). Shares that are unreadable or of another shape than the first are
/// left out; returns the ranking and how many shares were merged.
pub(crate) fn merged_top(shares: &[Vec<u8>], k: usize) -> (Vec<(String, u64)>, usize) {
    let mut merged: Option<CountMinSketch> = None;
    let mut candidates = std::collections::BTreeSet::new();
    let mut used = 0;
    for b in shares {
        let Some((cms, tags)) = read_share(b) else {
            continue;
        };
        let ok = match merged.as_mut() {
            None => {
                merged = Some(cms);
                true
            }
            Some(m) => m.merge(&cms),
        };
        if ok {
            used += 1;
            candidates.extend(tags);
        }
    }
    let Some(m) = merged else {
        return (Vec::new(), 0);
    };
    let mut top: Vec<(String, u64)> = candidates
        .into_iter()
        .map(|t| {
            let e = m.estimate(&t);
            (t, e)
        })
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(k);
    (top, used)
}

impl Default for TopHashtags {
    fn default() -> Self {
        TopHashtags::new(10, DEFAULT_WIDTH, DEFAULT_DEPTH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_sketches_merge_to_the_counts_of_one_sketch_over_everything() {
        let (mut a, mut b, mut all) = (
            TopHashtags::default(),
            TopHashtags::default(),
            TopHashtags::default(),
        );
        // "split" is heavy only when both halves are added; each half sees other tags.
        for i in 0..300u64 {
            let tag = format!("t{}", i % 7);
            let (side, other) = if i % 2 == 0 {
                (&mut a, "x")
            } else {
                (&mut b, "y")
            };
            side.add(&tag);
            side.add("split");
            side.add(other);
            all.add(&tag);
            all.add("split");
            all.add(other);
        }
        let (top, used) = merged_top(&[a.share_bytes(), b.share_bytes(), b"junk".to_vec()], 3);
        assert_eq!(used, 2);
        assert_eq!(top[0], ("split".to_owned(), 300));
        assert_eq!(top, all.top()[..3].to_vec());
        assert_eq!(merged_top(&[], 3), (Vec::new(), 0));
        // A truncated share is refused, not misread.
        let mut cut = a.share_bytes();
        cut.truncate(cut.len() / 2);
        assert_eq!(merged_top(&[cut], 3).1, 0);
    }

    #[test]
    fn estimates_never_underestimate_and_stay_within_bound() {
        let mut cms = CountMinSketch::new(DEFAULT_WIDTH, DEFAULT_DEPTH);
        let mut truth = std::collections::HashMap::new();
        // 5,000 distinct keys with skewed counts.
        for i in 0..5_000u64 {
            let key = format!("tag{i}");
            let n = 1 + 10_000 / (i + 1);
            cms.add(&key, n);
            truth.insert(key, n);
        }
        let bound = (cms.epsilon() * cms.total() as f64).ceil() as u64;
        let mut over_bound = 0;
        for (key, n) in &truth {
            let e = cms.estimate(key);
            assert!(e >= *n, "{key}: {e} < {n}");
            if e - n > bound {
                over_bound += 1;
            }
        }
        // δ ≈ 1.8 %: allow a little slack over the expectation.
        assert!(
            over_bound as f64 <= 0.03 * truth.len() as f64,
            "{over_bound}"
        );
    }

    #[test]
    fn finds_the_heavy_hitters_of_a_zipf_stream() {
        let mut top = TopHashtags::default();
        // Interleave so that heavy tags are not simply first: tag i occurs 1000/(i+1) times.
        let counts: Vec<u64> = (0..500u64).map(|i| 1000 / (i + 1)).collect();
        let max = counts[0];
        for round in 0..max {
            for (i, c) in counts.iter().enumerate() {
                if round < *c {
                    top.add(&format!("#Tag{i}"));
                }
            }
        }
        let got: Vec<String> = top.top().into_iter().map(|(t, _)| t).collect();
        let want: Vec<String> = (0..10).map(|i| format!("tag{i}")).collect();
        assert_eq!(got, want);
        assert_eq!(top.top()[0].1, 1000);
    }

    #[test]
    fn case_and_hash_sign_are_folded_and_empty_tags_ignored() {
        let mut top = TopHashtags::new(3, 64, 2);
        for t in ["Rust", "#rust", "RUST", "go", "", "#", "  "] {
            top.add(t);
        }
        assert_eq!(
            top.top(),
            vec![("rust".to_string(), 3), ("go".to_string(), 1)]
        );
        assert_eq!(top.sketch().total(), 4);
    }
}
