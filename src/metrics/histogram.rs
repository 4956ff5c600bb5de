//! Histograms for hot paths that must not touch an atomic per observation: a thread fills a plain
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

/// Observations since the last merge, per bucket (not cumulative), owned by one thread.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct LocalHistogram {
    /// `counts[i]`: observations `<= bounds[i]` and `> bounds[i - 1]`; `counts[bounds.len()]`
    /// holds the ones above every bound.
    counts: [u64; MAX_BUCKETS + 1],
    sum: f64,
    count: u64,
}

impl LocalHistogram {
    /// Records `value` against `bounds` (ascending; the same bounds as the family it is merged
    /// into). NaN is ignored.
    pub fn observe(&mut self, bounds: &[f64], value: f64) {
        if value.is_nan() {
            return;
        }
        let finite = bounds.len().min(MAX_BUCKETS);
        let index = bounds[..finite]
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(finite);
        self.counts[index] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// Number of observations recorded.
    pub fn count(&self) -> u64 {
        self.count
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
        for (total, add) in totals.counts.iter_mut().zip(local.counts.iter()) {
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
    fn bad_bounds_are_refused() {
        assert!(HistogramFamily::new("a", "b", &[], &[]).is_err());
        assert!(HistogramFamily::new("a", "b", &[], &[1.0, 1.0]).is_err());
    }
}
