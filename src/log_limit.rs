//! Per-peer limiting of repeated log lines: a client that misbehaves in a loop (answers but never
//! connects, floods bad packets) must not make the server write a log line per packet. Each log
//! statement may write [`BURST`] lines per peer every [`WINDOW`]; further lines from the same
//! statement about the same peer are dropped and counted, and a reporter thread logs how many
//! were dropped once per window. The peer is the first field of the event named like one in
//! [`PEER_FIELDS`], else the nearest enclosing span's (the connection span carries `remote` and
//! `peer`); events with none share one budget per statement. It is a `tracing` layer installed
//! by the binary; library code logs as usual.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::callsite::Identifier;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Lines one statement may write about one peer per window.
pub const BURST: u32 = 10;
/// The window of [`BURST`], and how often suppressed lines are reported.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Field names that identify the peer an event is about, most specific first.
pub const PEER_FIELDS: &[&str] = &["peer", "key", "remote", "peer_addr", "addr", "source"];
/// Distinct (statement, peer) pairs tracked; beyond it, new peers share one budget per statement.
const MAX_KEYS: usize = 4096;
/// Target of the reporter's own lines (never limited).
const TARGET: &str = "chorus::log_limit";

type Key = (Identifier, String);

struct Entry {
    window_start: Instant,
    written: u32,
    suppressed: u64,
    /// Target and message of the statement, for the report.
    what: String,
}

/// Counts log lines per (statement, peer) and decides which are written.
#[derive(Default)]
pub struct RepeatLimiter {
    entries: Mutex<HashMap<Key, Entry>>,
}

/// Lines dropped for one statement and peer since the last report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    pub what: String,
    pub peer: String,
    pub count: u64,
}

impl RepeatLimiter {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Whether a line from `callsite` about `peer` may be written now. `what` names the
    /// statement in reports (called only for the first line of a window).
    pub fn allow(
        &self,
        callsite: Identifier,
        peer: &str,
        now: Instant,
        what: impl FnOnce() -> String,
    ) -> bool {
        let mut entries = self.entries.lock();
        let mut key = (callsite, peer.to_owned());
        if entries.len() >= MAX_KEYS && !entries.contains_key(&key) {
            key.1 = "*".to_owned();
        }
        let entry = entries.entry(key).or_insert_with(|| Entry {
            window_start: now,
            written: 0,
            suppressed: 0,
            what: what(),
        });
        if now.duration_since(entry.window_start) >= WINDOW {
            entry.window_start = now;
            entry.written = 0;
        }
        if entry.written < BURST {
            entry.written += 1;
            true
        } else {
            entry.suppressed += 1;
            false
        }
    }

    /// Takes the counts of dropped lines, and forgets pairs that went quiet.
    pub fn take_suppressed(&self, now: Instant) -> Vec<Suppressed> {
        let mut entries = self.entries.lock();
        let mut report = Vec::new();
        entries.retain(|(_, peer), entry| {
            if entry.suppressed > 0 {
                report.push(Suppressed {
                    what: entry.what.clone(),
                    peer: peer.clone(),
                    count: std::mem::take(&mut entry.suppressed),
                });
                return true;
            }
            now.duration_since(entry.window_start) < WINDOW
        });
        report
    }

    /// Logs the dropped-line counts every [`WINDOW`], on a thread of its own.
    pub fn spawn_reporter(self: &Arc<Self>) -> std::io::Result<()> {
        let limiter = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("log-limit".to_owned())
            .spawn(move || loop {
                std::thread::sleep(WINDOW);
                let Some(limiter) = limiter.upgrade() else {
                    return;
                };
                for s in limiter.take_suppressed(Instant::now()) {
                    tracing::warn!(
                        target: TARGET,
                        suppressed = s.count,
                        peer = %s.peer,
                        line = %s.what,
                        "repeated log lines suppressed"
                    );
                }
            })
            .map(drop)
    }
}

/// The `tracing` layer: tags spans with their peer and drops lines over the budget.
pub struct RepeatLimitLayer {
    limiter: Arc<RepeatLimiter>,
}

impl RepeatLimitLayer {
    pub fn new(limiter: Arc<RepeatLimiter>) -> Self {
        Self { limiter }
    }
}

/// The peer a span is about (kept in its extensions).
struct PeerTag(String);

impl<S> Layer<S> for RepeatLimitLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut finder = PeerFinder::default();
        attrs.record(&mut finder);
        tag_span(id, &ctx, finder);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut finder = PeerFinder::default();
        values.record(&mut finder);
        tag_span(id, &ctx, finder);
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if metadata.target() == TARGET {
            return true;
        }
        let mut finder = PeerFinder::default();
        event.record(&mut finder);
        let peer = finder.best().or_else(|| span_peer(event, &ctx));
        let what = || format!("{}: {}", metadata.target(), finder.message);
        self.limiter.allow(
            metadata.callsite(),
            peer.as_deref().unwrap_or(""),
            Instant::now(),
            what,
        )
    }
}

fn tag_span<S>(id: &Id, ctx: &Context<'_, S>, finder: PeerFinder)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let (Some(peer), Some(span)) = (finder.best(), ctx.span(id)) else {
        return;
    };
    let mut extensions = span.extensions_mut();
    match extensions.get_mut::<PeerTag>() {
        Some(tag) => tag.0 = peer,
        None => extensions.insert(PeerTag(peer)),
    }
}

/// The peer tag of the nearest enclosing span that has one.
fn span_peer<S>(event: &Event<'_>, ctx: &Context<'_, S>) -> Option<String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let scope = ctx.event_scope(event)?;
    scope
        .into_iter()
        .find_map(|span| span.extensions().get::<PeerTag>().map(|tag| tag.0.clone()))
}

/// Collects the peer fields and the message of an event or span.
#[derive(Default)]
struct PeerFinder {
    /// Values found, by index in [`PEER_FIELDS`].
    found: [Option<String>; PEER_FIELDS.len()],
    message: String,
}

impl PeerFinder {
    fn best(&self) -> Option<String> {
        self.found.iter().flatten().next().cloned()
    }
}

impl Visit for PeerFinder {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else if let Some(i) = PEER_FIELDS.iter().position(|name| *name == field.name()) {
            self.found[i] = Some(format!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(i) = PEER_FIELDS.iter().position(|name| *name == field.name()) {
            self.found[i] = Some(value.to_owned());
        } else {
            self.record_debug(field, &value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tracing_subscriber::layer::SubscriberExt;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines_with(buffer: &Buffer, needle: &str) -> usize {
        let text = String::from_utf8_lossy(&buffer.0.lock()).into_owned();
        text.lines().filter(|l| l.contains(needle)).count()
    }

    #[test]
    fn repeated_lines_are_limited_per_peer() {
        let limiter = RepeatLimiter::new();
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry()
            .with(RepeatLimitLayer::new(limiter.clone()))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || writer.clone()),
            );
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..100 {
                for key in ["a", "b"] {
                    tracing::warn!(key, "media connection ended; rebuilding it");
                }
                let span = tracing::info_span!("conn", remote = "192.0.2.1:5000");
                span.in_scope(|| tracing::warn!("bad packet"));
            }
            tracing::warn!(key = "c", "once");
        });
        assert_eq!(lines_with(&buffer, "key=\"a\""), BURST as usize);
        assert_eq!(lines_with(&buffer, "key=\"b\""), BURST as usize);
        assert_eq!(lines_with(&buffer, "bad packet"), BURST as usize);
        assert_eq!(lines_with(&buffer, "once"), 1);
        let mut report = limiter.take_suppressed(Instant::now());
        report.sort_by(|x, y| x.peer.cmp(&y.peer));
        let counts: Vec<_> = report.iter().map(|s| (s.peer.as_str(), s.count)).collect();
        assert_eq!(counts, [("192.0.2.1:5000", 90), ("a", 90), ("b", 90)]);
        assert!(report[1].what.contains("media connection ended"));
        assert!(limiter.take_suppressed(Instant::now()).is_empty());
    }

    #[test]
    fn the_budget_comes_back_after_the_window() {
        let limiter = RepeatLimiter::new();
        let callsite = tracing::callsite::Identifier(&CALLSITE);
        let start = Instant::now();
        let allowed = (0..BURST + 5)
            .filter(|_| limiter.allow(callsite.clone(), "p", start, String::new))
            .count();
        assert_eq!(allowed, BURST as usize);
        assert!(limiter.allow(callsite, "p", start + WINDOW, String::new));
    }

    struct TestCallsite;
    static CALLSITE: TestCallsite = TestCallsite;
    impl tracing::Callsite for TestCallsite {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &tracing::Metadata<'_> {
            unimplemented!("not needed for counting")
        }
    }
}
