//! Reads the Prometheus text exposition format (what `/metrics` serves): the samples of a
//! scrape, the sum of one metric over its label sets, one exact series, the names exported.
//! Used by the load tester's scrape of a running server and by the integration tests. It only
//! reads text; comments (`# HELP`, `# TYPE`) and malformed lines are skipped.

use std::collections::BTreeSet;

/// One sample line: `name{labels} value [timestamp]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    /// The metric name (for histograms, with its `_bucket`/`_sum`/`_count` suffix).
    pub name: &'a str,
    /// What stands between the braces, verbatim (empty without labels).
    pub labels: &'a str,
    pub value: f64,
}

impl Sample<'_> {
    /// The series as written: `name` or `name{labels}`.
    pub fn series(&self) -> String {
        if self.labels.is_empty() {
            self.name.to_owned()
        } else {
            format!("{}{{{}}}", self.name, self.labels)
        }
    }
}

/// Parses one line; `None` for comments, blank and malformed lines.
pub fn parse_line(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find(['{', ' ']) {
        Some(open) if line[open..].starts_with('{') => {
            let close = open + line[open..].rfind('}')?;
            (&line[..open], &line[open + 1..close], &line[close + 1..])
        }
        Some(space) => (&line[..space], "", &line[space..]),
        None => return None,
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Every sample of `text`, in order.
pub fn samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines().filter_map(parse_line)
}

/// The sum of `name` over all its label sets; `None` when it is not exported.
pub fn sum(text: &str, name: &str) -> Option<f64> {
    samples(text)
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .reduce(|a, b| a + b)
}

/// The value of one exact series, written as `name{labels}` (or a bare `name`).
pub fn series(text: &str, series: &str) -> Option<f64> {
    let (name, labels) = match series.split_once('{') {
        Some((name, labels)) => (name, labels.strip_suffix('}')?),
        None => (series, ""),
    };
    samples(text)
        .find(|s| s.name == name && s.labels == labels)
        .map(|s| s.value)
}

/// The distinct metric names that have samples.
pub fn names(text: &str) -> BTreeSet<&str> {
    samples(text).map(|s| s.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP chorus_x_total Things.\n\
                        # TYPE chorus_x_total counter\n\
                        chorus_x_total{shard=\"0\"} 1.5\n\
                        chorus_x_total{shard=\"1\",note=\"a b}\"} 2\n\
                        chorus_x_total_extra 9\n\
                        process_open_fds 7 1700000000\n\
                        not a sample\n";

    #[test]
    fn sums_label_sets_and_ignores_longer_names() {
        assert_eq!(sum(TEXT, "chorus_x_total"), Some(3.5));
        assert_eq!(sum(TEXT, "chorus_x_total_extra"), Some(9.0));
        assert_eq!(sum(TEXT, "chorus_absent"), None);
    }

    #[test]
    fn finds_exact_series_with_spaces_and_braces_in_label_values() {
        assert_eq!(series(TEXT, "chorus_x_total{shard=\"0\"}"), Some(1.5));
        assert_eq!(
            series(TEXT, "chorus_x_total{shard=\"1\",note=\"a b}\"}"),
            Some(2.0)
        );
        assert_eq!(series(TEXT, "process_open_fds"), Some(7.0));
        assert_eq!(series(TEXT, "chorus_x_total{shard=\"2\"}"), None);
    }

    #[test]
    fn skips_comments_and_malformed_lines() {
        let names: Vec<&str> = names(TEXT).into_iter().collect();
        assert_eq!(
            names,
            ["chorus_x_total", "chorus_x_total_extra", "process_open_fds"]
        );
        assert_eq!(parse_line("# TYPE x counter"), None);
        assert_eq!(parse_line("x{a=\"1\" 3"), None);
        assert_eq!(parse_line("x 3").map(|s| s.series()), Some("x".to_owned()));
    }
}
