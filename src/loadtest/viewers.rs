//! The report's per-subscriber video lines: for each subscriber and video track it received,
//! the layer it ended on, its layer switches (with when), frames completed per second over the
//! measured window, the longest gap without a new frame and the freezes, and a per-second
//! timeline; plus the summary over all of them for the text table. Formatting of what
//! [`FrameWatch`] measured; it measures nothing itself.

use super::frames::{FrameWatch, Freeze, Second, Switch};
use super::layers::RIDS;
use serde::Serialize;

/// One subscriber's view of one video track.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriberVideo {
    pub subscriber: String,
    pub track: String,
    /// The layer it asked for (`--subscriber-layers`), if any.
    pub asked_layer: Option<u8>,
    /// The layer it was on at the end (`None`: not simulcast).
    pub layer: Option<usize>,
    pub switches: u64,
    pub frames: u64,
    /// Frames completed per second over the measured window.
    pub fps: f64,
    pub longest_freeze_ms: f64,
    pub switch_log: Vec<Switch>,
    pub freezes: Vec<Freeze>,
    pub timeline: Vec<Second>,
}

impl SubscriberVideo {
    /// The view of `watch`, frames per second counted over unix seconds `window`.
    pub fn of(
        subscriber: &str,
        track: &str,
        asked_layer: Option<u8>,
        watch: &FrameWatch,
        window: (u64, u64),
    ) -> Self {
        let secs = window.1.saturating_sub(window.0).max(1);
        Self {
            subscriber: subscriber.to_owned(),
            track: track.to_owned(),
            asked_layer,
            layer: watch.layer,
            switches: watch.switch_count,
            frames: watch.frames,
            fps: watch.frames_between(window.0, window.1) as f64 / secs as f64,
            longest_freeze_ms: watch.longest_gap_us as f64 / 1000.0,
            switch_log: watch.switches.clone(),
            freezes: watch.freezes.clone(),
            timeline: watch.seconds.iter().copied().collect(),
        }
    }
}

/// The text table's lines about the subscribers' video.
pub fn rows(videos: &[SubscriberVideo]) -> Vec<(String, String)> {
    if videos.is_empty() {
        return Vec::new();
    }
    let mut on_layer = [0usize; RIDS.len()];
    for v in videos {
        if let Some(l) = v.layer {
            on_layer[l.min(RIDS.len() - 1)] += 1;
        }
    }
    let layers = RIDS
        .iter()
        .zip(on_layer)
        .map(|(rid, n)| format!("{rid}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let switches: u64 = videos.iter().map(|v| v.switches).sum();
    let most = videos.iter().map(|v| v.switches).max().unwrap_or(0);
    let fps: Vec<f64> = videos.iter().map(|v| v.fps).collect();
    let freezes: Vec<f64> = videos.iter().map(|v| v.longest_freeze_ms).collect();
    let (fps_min, fps_mid) = (min(&fps), median(&fps));
    let (freeze_mid, freeze_max) = (median(&freezes), max(&freezes));
    vec![
        ("video tracks viewed".into(), videos.len().to_string()),
        ("layer at the end".into(), layers),
        (
            "layer switches".into(),
            format!("{switches} (at most {most} on one subscriber)"),
        ),
        (
            "frames/s per subscriber".into(),
            format!("median {fps_mid:.1}, lowest {fps_min:.1}"),
        ),
        (
            "longest freeze".into(),
            format!("median {freeze_mid:.0} ms, worst {freeze_max:.0} ms"),
        ),
    ]
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn median(v: &[f64]) -> f64 {
    let v = sorted(v);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn min(v: &[f64]) -> f64 {
    sorted(v).first().copied().unwrap_or(0.0)
}

fn max(v: &[f64]) -> f64 {
    sorted(v).last().copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_summarise_layers_switches_fps_and_freezes() {
        let mut a = FrameWatch::default();
        let mut b = FrameWatch::default();
        for i in 0..20u64 {
            a.on_packet(Some(2), true, i as u32, 100, 10_000_000 + i * 100_000);
            let layer = if i < 10 { 2 } else { 0 };
            b.on_packet(Some(layer), true, i as u32, 100, 10_000_000 + i * 100_000);
        }
        let videos = [
            SubscriberVideo::of("sub0", "t", None, &a, (10, 12)),
            SubscriberVideo::of("sub1", "t", None, &b, (10, 12)),
        ];
        assert_eq!(videos[0].fps, 10.0);
        assert_eq!((videos[1].layer, videos[1].switches), (Some(0), 1));
        let rows = rows(&videos);
        assert_eq!(rows[1].1, "q: 1, h: 0, f: 1");
        assert_eq!(rows[2].1, "1 (at most 1 on one subscriber)");
    }
}
