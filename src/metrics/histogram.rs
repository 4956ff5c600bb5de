//! The crate's one histogram ([`Histogram`]: bucket counts against caller-kept bounds), and
//! its use on hot paths that must not touch an atomic per observation: a thread fills a plain
//! [`LocalHistogram`] and merges it into a shared [`HistogramFamily`] now and then (the media
//! shards do it about once a second). The family is a Prometheus collector that exposes ordinary
//! cumulative `_bucket`/`_sum`/`_count` series. It only counts; it must not decide anything.

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto;
use std::collections::HashMap;
use std::sync::Arc;

/// Most finite bucket bounds a [`LocalHistogram`] can hold.
pub const MAX_BUCKETS: usize = 15;

/// The crate's one histogram: per-bucket counts (not cumulative) against ascending bounds
/// that the caller keeps, plus the sum and count of the observations. `C` is the storage: a
/// fixed array for hot paths ([`LocalHistogram`]: no allocation, `Copy`, merged into a
/// [`HistogramFamily`] now and then) or a `Vec` for fine-grained ones (the load tester's
/// latency, [`Histogram::with_buckets`]). `counts[i]` holds observations `<= bounds[i]` and
/// `> bounds[i - 1]`; the last count holds the ones above every bound.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Histogram<C> {
    counts: C,
    sum: f64,
    count: u64,
}

/// Observations since the last merge, owned by one thread, for at most [`MAX_BUCKETS`] bounds.
pub type LocalHistogram = Histogram<[u64; MAX_BUCKETS + 1]>;

impl Histogram<Vec<u64>> {
    /// An empty histogram for `bounds` (any number of them).
    pub fn with_buckets(bounds: &[f64]) -> Self {
        Self {
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }
}

impl<C: AsRef<[u64]> + AsMut<[u64]>> Histogram<C> {
    /// Records `value` against `bounds` (ascending; always the same bounds for one histogram,
    /// and for a [`LocalHistogram`] those of the family it is merged into). NaN is ignored.
    pub fn observe(&mut self, bounds: &[f64], value: f64) {
        if value.is_nan() {
            return;
        }
        let counts = self.counts.as_mut();
        let finite = bounds.len().min(counts.len() - 1);
        let index = bounds[..finite].partition_point(|bound| *bound < value);
        counts[index] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// Number of observations recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the observations recorded.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Adds the observations of `other` (same bounds).
    pub fn merge(&mut self, other: &Self) {
        for (total, add) in self.counts.as_mut().iter_mut().zip(other.counts.as_ref()) {
            *total += add;
        }
        self.sum += other.sum;
        self.count += other.count;
    }

    /// What was recorded since `earlier`, a copy of this same histogram taken before.
    pub fn since(&self, earlier: &Self) -> Self
    where
        C: Clone,
    {
        let mut counts = self.counts.clone();
        for (now, then) in counts.as_mut().iter_mut().zip(earlier.counts.as_ref()) {
            *now = now.saturating_sub(*then);
        }
        Self {
            counts,
            sum: (self.sum - earlier.sum).max(0.0),
            count: self.count.saturating_sub(earlier.count),
        }
    }

    /// The `q` quantile (0..=1) as the upper bound of the bucket it falls in (the last bound
    /// for observations above every bound); 0 when empty.
    pub fn quantile(&self, bounds: &[f64], q: f64) -> f64 {
        if self.count == 0 || bounds.is_empty() {
            return 0.0;
        }
        let target = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, n) in self.counts.as_ref().iter().enumerate() {
            seen += n;
            if seen >= target {
                return bounds[index.min(bounds.len() - 1)];
            }
        }
        bounds[bounds.len() - 1]
    }
}

/// Running totals of one labelled series.
#[derive(Debug, Clone)]
struct Totals {
    labels: Vec<String>,
    /// Per bucket, not cumulative; one more than the bounds (the `+Inf` remainder).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// A histogram metric (optionally with labels) fed by merging [`LocalHistogram`]s.
#[derive(Clone)]
pub struct HistogramFamily {
    desc: Desc,
    bounds: &'static [f64],
    series: Arc<Mutex<Vec<Totals>>>,
}

impl std::fmt::Debug for HistogramFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistogramFamily")
            .field("name", &self.desc.fq_name)
            .finish()
    }
}

impl HistogramFamily {
    /// A family called `name` with `labels` (may be empty) and at most [`MAX_BUCKETS`] ascending
    /// `bounds`.
    pub fn new(
        name: &str,
        help: &str,
        labels: &[&str],
        bounds: &'static [f64],
    ) -> prometheus::Result<Self> {
        if bounds.is_empty()
            || bounds.len() > MAX_BUCKETS
            || bounds.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(prometheus::Error::Msg(format!(
                "{name}: 1 to {MAX_BUCKETS} strictly ascending bucket bounds needed"
            )));
        }
        let desc = Desc::new(
            name.to_owned(),
            help.to_owned(),
            labels.iter().map(|l| (*l).to_owned()).collect(),
            HashMap::new(),
        )?;
        Ok(Self {
            desc,
            bounds,
            series: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// The bucket bounds observations must be recorded against.
    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// Makes the series with these label values exist (all zero) so it is exported before its
    /// first observation; `rate()` then starts from zero instead of from nothing.
    pub fn touch(&self, label_values: &[&str]) {
        self.merge(label_values, &LocalHistogram::default());
    }

    /// Adds `local` to the series with these label values.
    pub fn merge(&self, label_values: &[&str], local: &LocalHistogram) {
        let mut series = self.series.lock();
        let index = match series.iter().position(|s| {
            s.labels
                .iter()
                .map(String::as_str)
                .eq(label_values.iter().copied())
        }) {
            Some(index) => index,
            None => {
                series.push(Totals {
                    labels: label_values.iter().map(|v| (*v).to_owned()).collect(),
                    counts: vec![0; self.bounds.len() + 1],
                    sum: 0.0,
                    count: 0,
                });
                series.len() - 1
            }
        };
        let totals = &mut series[index];
        for (total, add) in totals.counts.iter_mut().zip(local.counts.as_ref()) {
            *total += add;
        }
        totals.sum += local.sum;
        totals.count += local.count;
    }
}

impl Collector for HistogramFamily {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        let series = self.series.lock();
        let metrics = series
            .iter()
            .map(|totals| {
                let mut cumulative = 0;
                let buckets = self
                    .bounds
                    .iter()
                    .zip(totals.counts.iter())
                    .map(|(bound, n)| {
                        cumulative += n;
                        let mut bucket = proto::Bucket::default();
                        bucket.set_upper_bound(*bound);
                        bucket.set_cumulative_count(cumulative);
                        bucket
                    })
                    .collect();
                let mut histogram = proto::Histogram::default();
                histogram.set_bucket(buckets);
                histogram.set_sample_sum(totals.sum);
                histogram.set_sample_count(totals.count);
                let labels = self
                    .desc
                    .variable_labels
                    .iter()
                    .zip(totals.labels.iter())
                    .map(|(name, value)| {
                        let mut pair = proto::LabelPair::default();
                        pair.set_name(name.clone());
                        pair.set_value(value.clone());
                        pair
                    })
                    .collect();
                let mut metric = proto::Metric::default();
                metric.set_label(labels);
                metric.set_histogram(histogram);
                metric
            })
            .collect();
        let mut family = proto::MetricFamily::default();
        family.set_name(self.desc.fq_name.clone());
        family.set_help(self.desc.help.clone());
        family.set_field_type(proto::MetricType::HISTOGRAM);
        family.set_metric(metrics);
        vec![family]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, Registry, TextEncoder};

    const BOUNDS: &[f64] = &[0.1, 0.5, 1.0];

    #[test]
    fn merged_observations_render_as_cumulative_buckets() {
        let family =
            HistogramFamily::new("test_seconds", "A test", &["kind"], BOUNDS).expect("family");
        let registry = Registry::new();
        registry
            .register(Box::new(family.clone()))
            .expect("register");
        family.touch(&["audio"]);
        let mut local = LocalHistogram::default();
        for v in [0.05, 0.1, 0.7, 3.0, f64::NAN] {
            local.observe(family.bounds(), v);
        }
        assert_eq!(local.count(), 4);
        family.merge(&["video"], &local);
        family.merge(&["video"], &local);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .expect("encode");
        let text = String::from_utf8(out).expect("utf-8");
        for line in [
            "# TYPE test_seconds histogram",
            r#"test_seconds_bucket{kind="audio",le="+Inf"} 0"#,
            r#"test_seconds_bucket{kind="video",le="0.1"} 4"#,
            r#"test_seconds_bucket{kind="video",le="0.5"} 4"#,
            r#"test_seconds_bucket{kind="video",le="1"} 6"#,
            r#"test_seconds_bucket{kind="video",le="+Inf"} 8"#,
            r#"test_seconds_count{kind="video"} 8"#,
            r#"test_seconds_sum{kind="video"} 7.7"#,
        ] {
            assert!(text.contains(line), "missing `{line}` in:\n{text}");
        }
    }

    #[test]
    fn quantiles_merges_and_differences_agree() {
        let bounds: Vec<f64> = (1..=100).map(f64::from).collect();
        let mut h = Histogram::with_buckets(&bounds);
        for v in 1..=100 {
            h.observe(&bounds, f64::from(v) - 0.5);
        }
        assert_eq!(h.quantile(&bounds, 0.5), 50.0);
        assert_eq!(h.quantile(&bounds, 0.99), 99.0);
        let before = h.clone();
        h.observe(&bounds, 1000.0);
        assert_eq!(
            h.quantile(&bounds, 1.0),
            100.0,
            "overflow reads as the last bound"
        );
        let added = h.since(&before);
        assert_eq!((added.count(), added.sum()), (1, 1000.0));
        let mut twice = before.clone();
        twice.merge(&before);
        assert_eq!(twice.count(), 200);
        assert_eq!(twice.quantile(&bounds, 0.5), 50.0);
        assert_eq!(Histogram::with_buckets(&bounds).quantile(&bounds, 0.5), 0.0);
    }

    #[test]
    fn bad_bounds_are_refused() {
        assert!(HistogramFamily::new("a", "b", &[], &[]).is_err());
        assert!(HistogramFamily::new("a", "b", &[], &[1.0, 1.0]).is_err());
    }
}
