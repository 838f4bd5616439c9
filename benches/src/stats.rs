//! What the load clients share for their figures: a latency histogram and the open-files
//! limit.

/// Latencies in µs: exact below 2,048, then 1,024 buckets per power of two (~0.1 %
/// resolution).
pub struct Histogram {
    counts: Vec<u64>,
    /// Samples recorded.
    pub n: u64,
    /// The largest sample.
    pub max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; 2048 + 54 * 1024],
            n: 0,
            max: 0,
        }
    }

    /// The bucket of value `v`.
    pub fn index(v: u64) -> usize {
        if v < 2048 {
            return v as usize;
        }
        let e = 63 - u64::from(v.leading_zeros());
        2048 + (e as usize - 11) * 1024 + ((v >> (e - 10)) & 1023) as usize
    }

    /// The smallest value of bucket `i`.
    pub fn value(i: usize) -> u64 {
        if i < 2048 {
            return i as u64;
        }
        let e = (i - 2048) / 1024 + 11;
        let m = ((i - 2048) % 1024) as u64;
        (1024 + m) << (e - 10)
    }

    /// Counts one sample.
    pub fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.n += 1;
        self.max = self.max.max(v);
    }

    /// The `p` quantile (0..=1) in µs, `None` without samples: the lower bound of its
    /// bucket (at most 0.1 % below the exact value).
    pub fn quantile(&self, p: f64) -> Option<u64> {
        if self.n == 0 {
            return None;
        }
        let want = ((self.n as f64 * p).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Some(Self::value(i).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// Microseconds as milliseconds with three decimals, `nan` for `None`.
pub fn fmt_ms(us: Option<u64>) -> String {
    us.map_or_else(|| "nan".into(), |us| format!("{:.3}", us as f64 / 1e3))
}

/// The soft limit on open files, from `/proc/self/limits`.
pub fn fd_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_within_a_thousandth() {
        for v in [
            0, 1, 2047, 2048, 2049, 10_000, 123_456, 9_999_999, 60_000_000,
        ] {
            let low = Histogram::value(Histogram::index(v));
            assert!(low <= v && v - low <= v / 1000, "{v} -> {low}");
        }
        let mut h = Histogram::new();
        for v in 1..=1000 {
            h.record(v * 100);
        }
        // A quantile is its bucket's lower bound: within 0.1 % below the exact value.
        for (p, exact) in [(0.5, 50_000), (0.99, 99_000), (1.0, 100_000)] {
            let q = h.quantile(p).unwrap();
            assert!(q <= exact && exact - q <= exact / 1000, "{p}: {q}");
        }
        assert_eq!(h.max, 100_000);
        assert_eq!(Histogram::new().quantile(0.5), None);
    }
}
