//! Issue 13 item 5, the load generator's synthetic simulcast at scale behind a bandwidth cap:
//! `chorus serve` in one network namespace, and `chorus loadtest` processes in six others, each
//! on its own veth link to the server's (`support::star`). Link 0 carries one synthetic
//! simulcast publisher (layers q/h/f at 150/300/600 kbit/s of payload) and five free subscribers; links
//! 1–5 carry one subscriber each. All subscribers ask for the top layer and send TWCC feedback.
//! Each subscriber has its own link so that each cap is its own (one `tc … tbf` per link, sized
//! to carry the middle layer but not the top one); a shared cap would let one subscriber take
//! what another gives up, and the assertions would be about fairness between estimators rather
//! than about adaptation. Mid-call the capped links get the cap for 10 s, then lose it again.
//! From the loadtest's JSON reports (per subscriber: layer switches with times, freezes,
//! frames completed per second), the test asserts that every capped subscriber drops below the
//! top layer within a few seconds of the cap and stays there while capped without a freeze
//! over 1 s, and that the free ones stay on the top layer all along; it prints the figures
//! (time to adapt, frames/s before/during/after, bitrate per layer, time to recover). That the
//! capped ones climb back to the top layer within a bounded time of the cap's removal is the
//! second test. Skipped (with a message) without root or `ip`/`tc`, failed under `CI=true`.
//! The scenario runs once (about 55 s), whichever test comes first, and both read it.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::media::metric_value;
use support::netns::{self, Killed};
use support::star::Star;

const SIGNALING_PORT: u16 = 8080;
const MEDIA_PORT: u16 = 40000;
const FREE: usize = 5;
const CAPPED: usize = 5;
/// The publisher's top layer (the others are a half and a quarter of it), in packets of
/// `PACKET_SIZE` bytes (one per frame: 94, 47 and 23 frames/s).
const TOP_BPS: u64 = 600_000;
const PACKET_SIZE: u64 = 800;
/// Each capped link: carries the middle layer (about 330 kbit/s on the wire) but not the top
/// one (about 650 kbit/s).
const CAP_KBIT: u32 = 450;
/// How long the loadtest processes measure (they end on their own after it).
const DURATION_S: u64 = 52;
/// On the top layer this long before the cap.
const BEFORE: Duration = Duration::from_secs(4);
const CAPPED_FOR: Duration = Duration::from_secs(10);
/// Bounds asserted (milliseconds).
const ADAPT_WITHIN_MS: u64 = 6_000;
const MAX_FREEZE_MS: u64 = 1_000;
/// Failed probes while capped space the next ones out (up to 6 s, `bwe::probe`), the leg
/// holds 8 s after a fall (16 s when the fall undid a climb the cap allowed for a moment:
/// `simulcast::HOLD_MIN`, doubling), and the climb may take two steps, a probe each. (With
/// 18 s, which left out the doubled hold, one leg in a CI run took 18.1 s.)
const RECOVER_WITHIN_MS: u64 = 24_000;
const TOP: u64 = 2;

fn unix_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as u64)
}

#[test]
fn capped_synthetic_subscribers_step_down_without_freezing_and_free_ones_stay_on_top() {
    let Some(run) = shared_run() else {
        return;
    };
    for v in &run.free {
        check_free(v, &run.times);
    }
    let figures: Vec<Figures> = run
        .capped
        .iter()
        .map(|v| check_capped(v, &run.times))
        .collect();
    report(run, &figures);
}

/// The climb back once the cap is lifted, asserted within [`RECOVER_WITHIN_MS`], for every
/// capped subscriber, those that fell to the lowest layer included. Their climb rests on
/// probes: until the server renamed TWCC feedback that names the RTX stream the padding rides
/// on (`rtp::twcc_route`; `rtc` dropped it, and a sparse `q` leg's feedback often names the
/// padding's SSRC), their bursts proved nothing and they stayed on `q` for good.
#[test]
fn capped_synthetic_subscribers_climb_back_once_the_cap_is_lifted() {
    let Some(run) = shared_run() else {
        return;
    };
    let figures: Vec<Figures> = run
        .capped
        .iter()
        .map(|v| check_capped(v, &run.times))
        .collect();
    report(run, &figures);
    for (v, f) in run.capped.iter().zip(&figures) {
        let n = name(v);
        let recover_ms = f.recover_ms.unwrap_or_else(|| {
            panic!("{n} never climbed back: {:?}", switches(v));
        });
        assert!(
            recover_ms <= RECOVER_WITHIN_MS,
            "{n} took {recover_ms} ms to climb back"
        );
    }
}

/// The one run both tests read: started by the first test to ask, the other waiting for it
/// (two at once would double the load on two cores and measure the machine instead).
fn shared_run() -> Option<&'static Run> {
    static RUN: OnceLock<Option<Run>> = OnceLock::new();
    RUN.get_or_init(scenario).as_ref()
}

/// One run: what the free and the capped subscribers saw, and when the cap went on and off;
/// `None` when the test is skipped.
struct Run {
    free: Vec<Value>,
    capped: Vec<Value>,
    times: Times,
    server: [(f64, f64); 2],
}

/// Builds the star, runs the server and the loadtest processes, caps and uncaps the capped
/// links, and reads the reports.
fn scenario() -> Option<Run> {
    if let Some(why) = netns::unavailable() {
        netns::skip_or_fail(&why);
        return None;
    }
    let star = Star::create(1 + CAPPED).expect("network namespaces");
    let _server = serve(&star);
    let tag = format!("{}-{}", std::process::id(), unix_ms());
    let dir = std::env::temp_dir().join(format!("chorus-loadtest-capped-{tag}"));
    std::fs::create_dir_all(&dir).expect("report dir");
    let room = format!("capped-{tag}");
    let json = |k: usize| dir.join(format!("link{k}.json"));
    let mut runs = vec![loadtest(&star, 0, 1, FREE, &room, &json(0))];
    for k in 1..=CAPPED {
        runs.push(loadtest(&star, k, 0, 1, &room, &json(k)));
    }
    wait_for_legs(&star, FREE + CAPPED, Duration::from_secs(30));
    wait_all_on_top(&star, FREE + CAPPED, Duration::from_secs(30));
    let on_top_at = unix_ms();
    std::thread::sleep(BEFORE);
    let capped_at = unix_ms();
    for k in 1..=CAPPED {
        star.cap(k, CAP_KBIT).expect("tc tbf on a capped link");
    }
    std::thread::sleep(CAPPED_FOR);
    let uncapped_at = unix_ms();
    for k in 1..=CAPPED {
        star.uncap(k).expect("cap removed");
    }
    let server = server_figures(&star);
    for run in &mut runs {
        wait_exit(run, Duration::from_secs(DURATION_S + 20));
    }
    let free = viewers(&json(0));
    let capped: Vec<Value> = (1..=CAPPED).flat_map(|k| viewers(&json(k))).collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        (free.len(), capped.len()),
        (FREE, CAPPED),
        "every viewer reported"
    );
    let times = Times {
        on_top_at,
        capped_at,
        uncapped_at,
    };
    Some(Run {
        free,
        capped,
        times,
        server,
    })
}

/// When every leg was seen on the top layer, and when the cap went on and off (unix
/// milliseconds).
struct Times {
    on_top_at: u64,
    capped_at: u64,
    uncapped_at: u64,
}

/// What one capped subscriber did.
struct Figures {
    adapt_ms: u64,
    /// `None`: not back on the top layer by the end of the run.
    recover_ms: Option<u64>,
    settled_layer: u64,
    fps: [f64; 3],
    layer_kbps: Vec<(u64, f64)>,
}

/// `chorus serve` in the server's namespace, once it says `listening`.
fn serve(star: &Star) -> Killed {
    let ip = Star::server_ip().to_string();
    let listen = format!("{ip}:{SIGNALING_PORT}");
    let mut command = star.command(&star.server_ns, env!("CARGO_BIN_EXE_chorus"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CHORUS_")) {
        command.env_remove(key);
    }
    command
        .args([
            "serve",
            "--listen",
            &listen,
            "--udp-port",
            &MEDIA_PORT.to_string(),
        ])
        .args([
            "--udp-threads",
            "2",
            "--udp-bind",
            &ip,
            "--advertise-ip",
            &ip,
        ])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // To see why legs move: LOADTEST_CAPPED_SERVER_LOG=<file> keeps the server's layer log.
    if let Ok(path) = std::env::var("LOADTEST_CAPPED_SERVER_LOG") {
        let file = std::fs::File::create(path).expect("the server log file");
        command
            .args([
                "--log",
                "chorus::media::layer_review=trace,chorus::media::bwe=trace,warn",
            ])
            .stdout(file);
    }
    let server = Killed(command.spawn().expect("chorus serve"));
    let deadline = Instant::now() + Duration::from_secs(15);
    while metrics(star).is_none() {
        assert!(Instant::now() < deadline, "the server answers within 15 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    server
}

/// `chorus loadtest` on link `k`: `publishers` simulcast publishers and `subscribers`
/// subscribers in `room`, its JSON report to `json`.
fn loadtest(
    star: &Star,
    k: usize,
    publishers: usize,
    subscribers: usize,
    room: &str,
    json: &Path,
) -> Killed {
    let url = format!("ws://{}:{SIGNALING_PORT}/ws", Star::server_ip());
    let args: Vec<String> = [
        "loadtest",
        "--url",
        &url,
        "--room",
        room,
        "--simulcast",
        "--quiet",
        "--publishers",
        &publishers.to_string(),
        "--subscribers",
        &subscribers.to_string(),
        "--video-bitrate",
        &TOP_BPS.to_string(),
        "--duration",
        &format!("{DURATION_S}s"),
        "--bind",
        &Star::client_ip(k).to_string(),
        "--ramp",
        "20",
        "--packet-size",
        &PACKET_SIZE.to_string(),
        "--json",
        json.to_str().expect("a UTF-8 path"),
    ]
    .map(str::to_owned)
    .to_vec();
    let log = std::fs::File::create(json.with_extension("log")).expect("a loadtest log file");
    let mut command = star.command(&star.client_ns[k], env!("CARGO_BIN_EXE_chorus"));
    command
        .args(&args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log);
    Killed(command.spawn().expect("chorus loadtest"))
}

/// The server's `/metrics`, read inside its namespace.
fn metrics(star: &Star) -> Option<String> {
    let url = format!("http://{}:{SIGNALING_PORT}/metrics", Star::server_ip());
    let out = star
        .command(&star.server_ns, "curl")
        .args(["-s", "--max-time", "3", &url])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.contains("chorus_").then_some(text)
}

/// Waits until the server carries `legs` simulcast subscriber legs.
fn wait_for_legs(star: &Star, legs: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let text = metrics(star).unwrap_or_default();
        let now = metric_value(&text, "chorus_simulcast_legs").unwrap_or(0.0);
        if now >= legs as f64 {
            return;
        }
        assert!(Instant::now() < deadline, "{now} of {legs} simulcast legs");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until the server forwards `legs` times the top layer's packet rate (measured over 2 s):
/// every leg is on the top layer (one on the middle one would take it 5 % lower).
fn wait_all_on_top(star: &Star, legs: usize, within: Duration) {
    let top_pps = TOP_BPS as f64 / (PACKET_SIZE as f64 * 8.0);
    let want = legs as f64 * top_pps * 0.975;
    let forwarded = || {
        let text = metrics(star).unwrap_or_default();
        metric_value(&text, "chorus_forwarded_packets_total").unwrap_or(0.0)
    };
    let deadline = Instant::now() + within;
    loop {
        let (n0, t0) = (forwarded(), Instant::now());
        std::thread::sleep(Duration::from_secs(2));
        let rate = (forwarded() - n0) / t0.elapsed().as_secs_f64();
        if rate >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "forwarded {rate:.0} pkt/s, not {want:.0}: legs below the top layer"
        );
    }
}

/// The server's figures at the end: (sum, count) of its leg estimate histogram and of its
/// shard loops' lag behind their deadlines (a loaded machine pads late).
fn server_figures(star: &Star) -> [(f64, f64); 2] {
    let text = metrics(star).unwrap_or_default();
    let value = |n: &str| metric_value(&text, n).unwrap_or(0.0);
    let pair = |n: &str| (value(&format!("{n}_sum")), value(&format!("{n}_count")));
    [
        pair("chorus_leg_estimated_bitrate_bps"),
        pair("chorus_shard_loop_lag_seconds"),
    ]
}

fn wait_exit(run: &mut Killed, within: Duration) {
    let deadline = Instant::now() + within;
    while run.0.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "a loadtest run ends in time");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `viewers` of a loadtest JSON report; without one, fails with the end of the run's log.
fn viewers(path: &PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        let log = std::fs::read_to_string(path.with_extension("log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        panic!("no loadtest report {path:?} ({e}); its log ends:\n{tail}")
    });
    let report: Value = serde_json::from_str(&text).expect("JSON");
    report["viewers"].as_array().cloned().unwrap_or_default()
}

/// (at_ms, layer) of each switch of a viewer.
fn switches(v: &Value) -> Vec<(u64, u64)> {
    let log = v["switch_log"].as_array().cloned().unwrap_or_default();
    let pair = |s: &Value| Some((s["at_ms"].as_u64()?, s["layer"].as_u64()?));
    log.iter().filter_map(pair).collect()
}

/// The layer a viewer was on at `t` (unix ms).
fn layer_at(v: &Value, t: u64) -> Option<u64> {
    switches(v)
        .into_iter()
        .rfind(|(at, _)| *at <= t)
        .map(|(_, l)| l)
}

/// Frames completed per second in unix milliseconds `from..to` (whole seconds inside).
fn fps(v: &Value, from: u64, to: u64) -> f64 {
    let (a, b) = (from.div_ceil(1000), to / 1000);
    let timeline = v["timeline"].as_array().cloned().unwrap_or_default();
    let frames: u64 = timeline
        .iter()
        .filter(|s| s["t"].as_u64().is_some_and(|t| (a..b).contains(&t)))
        .filter_map(|s| s["frames"].as_u64())
        .sum();
    frames as f64 / b.saturating_sub(a).max(1) as f64
}

/// Mean payload kbit/s per layer over the whole seconds spent on it.
fn layer_kbps(v: &Value) -> Vec<(u64, f64)> {
    let timeline = v["timeline"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for layer in 0..=TOP {
        // Whole seconds on the layer: the seconds before and after are on it too.
        let on = |i: usize| timeline.get(i).and_then(|s| s["layer"].as_u64()) == Some(layer);
        let bytes: Vec<u64> = (1..timeline.len().saturating_sub(1))
            .filter(|&i| on(i - 1) && on(i) && on(i + 1))
            .filter_map(|i| timeline[i]["bytes"].as_u64())
            .collect();
        if !bytes.is_empty() {
            let mean = bytes.iter().sum::<u64>() as f64 / bytes.len() as f64;
            out.push((layer, mean * 8.0 / 1000.0));
        }
    }
    out
}

fn name(v: &Value) -> String {
    format!("{} ({})", v["subscriber"], v["track"])
}

fn check_free(v: &Value, t: &Times) {
    let n = name(v);
    assert_eq!(
        layer_at(v, t.capped_at),
        Some(TOP),
        "{n} on top before the cap"
    );
    // Once all were on top (a leg's first packets may come from a lower layer's keyframe).
    let switches = switches(v).into_iter();
    let off_top: Vec<_> = switches
        .filter(|(at, l)| *at >= t.on_top_at && *l != TOP)
        .collect();
    assert!(
        off_top.is_empty(),
        "free {n} left the top layer: {off_top:?}"
    );
    let worst = v["longest_freeze_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(worst <= MAX_FREEZE_MS as f64, "free {n} froze {worst} ms");
}

fn check_capped(v: &Value, t: &Times) -> Figures {
    let n = name(v);
    let log = switches(v);
    assert_eq!(
        layer_at(v, t.capped_at),
        Some(TOP),
        "{n} on top before the cap: {log:?}"
    );
    let down = log.iter().find(|(at, l)| *at > t.capped_at && *l < TOP);
    let &(down_at, settled_layer) =
        down.unwrap_or_else(|| panic!("{n} never left the top layer behind the cap: {log:?}"));
    let adapt_ms = down_at - t.capped_at;
    assert!(
        adapt_ms <= ADAPT_WITHIN_MS,
        "{n} took {adapt_ms} ms to step down"
    );
    let back_up = log
        .iter()
        .find(|(at, l)| (down_at..t.uncapped_at).contains(at) && *l == TOP);
    assert!(
        back_up.is_none(),
        "{n} went back to the top layer while capped: {log:?}"
    );
    let freezes = v["freezes"].as_array().cloned().unwrap_or_default();
    let long = freezes.iter().filter(|f| {
        let start = f["start_ms"].as_u64().unwrap_or(0);
        let ms = f["ms"].as_u64().unwrap_or(0);
        (down_at..t.uncapped_at).contains(&start) && ms > MAX_FREEZE_MS
    });
    let long: Vec<_> = long.collect();
    assert!(long.is_empty(), "{n} froze after settling: {long:?}");
    let during = fps(v, down_at + 1000, t.uncapped_at);
    assert!(during >= 10.0, "{n} got {during:.1} frames/s while capped");
    let up = log.iter().find(|(at, l)| *at >= t.uncapped_at && *l == TOP);
    let recover_ms = up.map(|(at, _)| at - t.uncapped_at);
    let before = fps(
        v,
        t.capped_at - BEFORE.as_millis() as u64 + 1000,
        t.capped_at,
    );
    let after = up.map_or(0.0, |(at, _)| fps(v, at + 1000, at + 6000));
    Figures {
        adapt_ms,
        recover_ms,
        settled_layer,
        fps: [before, during, after],
        layer_kbps: layer_kbps(v),
    }
}

fn report(run: &Run, capped: &[Figures]) {
    let t = &run.times;
    let free_fps: Vec<String> = run
        .free
        .iter()
        .map(|v| format!("{:.1}", fps(v, t.capped_at, t.uncapped_at)))
        .collect();
    eprintln!("free subscribers' frames/s while the others were capped: {free_fps:?}");
    for (i, f) in capped.iter().enumerate() {
        let back = f
            .recover_ms
            .map_or("not back on top by the end".to_owned(), |ms| {
                format!(
                    "back on top {ms} ms after the cap went, then {:.1} frames/s",
                    f.fps[2]
                )
            });
        eprintln!(
            "capped {i}: stepped down to layer {} in {} ms; frames/s before {:.1}, capped {:.1}; \
             {back}; payload kbit/s per layer {:?}",
            f.settled_layer, f.adapt_ms, f.fps[0], f.fps[1], f.layer_kbps
        );
    }
    let [(sum, count), (lag, turns)] = run.server;
    if count > 0.0 && turns > 0.0 {
        let (mean, lag_ms) = (sum / count / 1000.0, lag / turns * 1000.0);
        eprintln!("server: mean leg estimate {mean:.0} kbit/s over {count} samples; shard loops {lag_ms:.2} ms late on average over {turns} late turns");
    }
}
