//! The embedded web client in real browsers (issue 4): headless Chromium from Debian (through
//! playwright-core) and Firefox ESR (through puppeteer-core over WebDriver BiDi), fake camera,
//! microphone and screen, against the real server started in-process on 127.0.0.1. Each test
//! runs one Node scenario of `tests/browser/scenarios/` that drives the pages like a person
//! (types a name, clicks Join, presses the controls) and reports what it measured; the
//! assertions are here. Needs `npm ci --prefix tests/browser` and the two browsers (`.ci/run`
//! installs them); without them these tests fail, they do not skip.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::browser::{no_page_errors, num, start};

/// Generous bound for one scenario (they take 5–25 s on two cores).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

/// Asserts every page decodes every other page's video (frames growing) and gets its audio.
fn assert_everyone_decodes_everyone(result: &Value, names: &[&str]) {
    for page in names {
        let tiles: Vec<&str> = result["tiles"][page]
            .as_array()
            .expect("tiles")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut expected: Vec<&str> = names.iter().copied().filter(|n| n != page).collect();
        expected.sort();
        assert_eq!(tiles, expected, "{page} shows the wrong remote tiles");
        for other in names.iter().filter(|n| *n != page) {
            let growth = &result["growth"][page][other];
            let frames = [
                num(growth, &["framesDecoded", "0"]),
                num(growth, &["framesDecoded", "1"]),
            ];
            let audio = [
                num(growth, &["audioPacketsReceived", "0"]),
                num(growth, &["audioPacketsReceived", "1"]),
            ];
            assert!(
                frames[0] > 0.0 && frames[1] >= frames[0] + 15.0,
                "{page} does not keep decoding {other}'s video: framesDecoded {frames:?}"
            );
            assert!(
                audio[1] >= audio[0] + 50.0,
                "{page} does not keep receiving {other}'s audio: packetsReceived {audio:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_pages_decode_each_other() {
    let test = start().await;
    let result = test.scenario("three-way-call", SCENARIO_TIMEOUT).await;
    assert_everyone_decodes_everyone(&result, &["Alice", "Bob", "Carol"]);
    // The fake microphones play a tone: every page saw both others speak; quality was graded.
    for page in ["Alice", "Bob", "Carol"] {
        let others: Vec<&str> = ["Alice", "Bob", "Carol"]
            .into_iter()
            .filter(|n| *n != page)
            .collect();
        assert_eq!(result["spoke"][page], serde_json::json!(others), "{page}");
        for other in others {
            let grade = result["quality"][page][other].as_str().unwrap_or("none");
            assert!(
                grade == "good" || grade == "fair",
                "{page} grades {other}'s connection {grade}"
            );
        }
    }
    no_page_errors(&result);
}

/// Issue 10, item 1: a page that joins without camera and microphone never offers; it declares
/// what it decodes in its `join` and, there before them, decodes an H264 and a VP8 publisher
/// that join at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_page_without_devices_decodes_an_h264_and_a_vp8_publisher() {
    let test = start().await;
    let result = test.scenario("receive-only", SCENARIO_TIMEOUT).await;
    assert_eq!(
        result["codecs"],
        serde_json::json!(["video/H264", "video/VP8"]),
        "{result:#}"
    );
    let declared: Vec<&str> = result["declared"]
        .as_array()
        .expect("the viewer's join was seen")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for mime in ["audio/opus", "video/VP8", "video/H264"] {
        assert!(
            declared.contains(&mime),
            "join.receive lacks {mime}: {declared:?}"
        );
    }
    let announced = result["announced"].as_array().expect("announced");
    assert_eq!(announced.len(), 4, "{announced:?}");
    assert!(
        announced.iter().all(|t| t["playable"] == true),
        "{announced:?}"
    );
    assert_eq!(
        result["negotiation"]["offersSent"], 0,
        "the viewer never offered"
    );
    no_page_errors(&result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_bitrate_reaches_500_kbps_within_15_s() {
    let test = start().await;
    let result = test.scenario("publisher-bitrate", SCENARIO_TIMEOUT).await;
    let reached = result["reachedAtMs"].as_f64().unwrap_or_else(|| {
        panic!("the publisher never sent 500 kbps: {result:#}");
    });
    assert!(reached <= 15_000.0, "500 kbps only after {reached} ms");
    assert!(
        num(&result, &["maxInKbps"]) >= 500.0,
        "the subscriber never received 500 kbps through the SFU: {result:#}"
    );
}

/// Issue 13 item 4: each page is told by the server (`active-speakers`) that the other page,
/// whose fake microphone plays a steady tone, speaks, shows its tile's speaking ring, and reads
/// the audio level from the forwarded packets' RFC 6464 extension.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_names_a_chromium_publisher_in_active_speakers() {
    let test = start().await;
    let result = test.scenario("active-speakers", SCENARIO_TIMEOUT).await;
    no_page_errors(&result);
    for (page, other) in [("Alice", "Bob"), ("Bob", "Alice")] {
        let first = result["firstMs"][page].as_f64().unwrap_or_else(|| {
            panic!("{page} was never told that {other} speaks: {result:#}");
        });
        assert!(first <= 10_000.0, "{page} told only after {first} ms");
        assert_eq!(result["ring"][page], true, "{page}'s ring: {result:#}");
        // −12 dBFS tone: audioLevel ≈ 0.25 when the extension arrives, absent when it does not.
        let level = num(&result, &["level", page]);
        assert!(
            level > 0.05,
            "{page} got no audio level from {other}: {result:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_round_trip_and_a_late_fourth_page_sees_everyone_and_the_history() {
    let test = start().await;
    let result = test.scenario("chat", SCENARIO_TIMEOUT).await;
    assert!(num(&result, &["roundTripMs"]) < 2_000.0);
    for page in ["Alice", "Bob", "Carol"] {
        assert!(num(&result, &["replyShownMs", page]) < 2_000.0);
    }
    // Carol's panel stayed closed: two unread; Alice's was open for her own message.
    assert_eq!(num(&result, &["badges", "carol"]), 2.0);
    let late = &result["late"];
    assert_eq!(late["tiles"], serde_json::json!(["Alice", "Bob", "Carol"]));
    assert_eq!(
        late["people"],
        serde_json::json!(["Dave (you)", "Alice", "Bob", "Carol"])
    );
    assert_eq!(
        late["history"],
        serde_json::json!([
            {"from": "Alice", "text": "Hello everyone — agenda in 5 minutes"},
            {"from": "Bob", "text": "Hi Alice! 👋 <b>not bold</b>"},
        ])
    );
    assert_eq!(
        num(&result, &["boldInjected"]),
        0.0,
        "chat text became HTML"
    );
    no_page_errors(&result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toggles_show_on_the_others_within_2_s_and_leave_removes_the_tile() {
    let test = start().await;
    let result = test.scenario("controls", SCENARIO_TIMEOUT).await;
    for step in [
        "micMutedShown",
        "cameraOffShown",
        "micUnmutedShown",
        "cameraOnShown",
        "leaveShown",
    ] {
        let ms = num(&result, &["ms", step]);
        assert!(ms <= 2_000.0, "{step} took {ms} ms");
    }
    // Muted tracks are not forwarded (counters that were growing settle, then hold still for
    // 1.5 s of samples); unmuted ones are again.
    assert!(num(&result, &["audioPacketsBeforeMute"]) > 0.0);
    assert!(num(&result, &["videoPacketsBeforeOff"]) > 0.0);
    for held in ["audioWhileMuted", "videoWhileOff"] {
        assert!(
            num(&result, &[held, "samples"]) >= 3.0,
            "{held}: {}",
            result[held]
        );
    }
    assert_eq!(num(&result, &["audioPacketsWhileMuted"]), 0.0);
    assert_eq!(num(&result, &["videoPacketsWhileOff"]), 0.0);
    assert!(num(&result, &["audioPacketsAfterUnmute"]) > 20.0);
    let frames = [
        num(&result, &["framesAfterCameraOn", "0"]),
        num(&result, &["framesAfterCameraOn", "1"]),
    ];
    assert!(
        frames[1] >= frames[0] + 10.0,
        "video did not resume: {frames:?}"
    );
    // The toggling page's own buttons say what a press does next.
    assert_eq!(result["buttonsWhileOff"]["mic"], "true");
    assert_eq!(result["buttonsWhileOff"]["cam"], "true");
    assert_eq!(result["buttonsWhileOff"]["micLabel"], "Unmute");
    assert_eq!(result["buttonsWhileOff"]["camLabel"], "Start video");
    assert_eq!(result["buttonsAfter"]["mic"], "false");
    assert_eq!(result["buttonsAfter"]["cam"], "false");
    assert_eq!(result["buttonsAfter"]["micLabel"], "Mute");
    assert_eq!(result["buttonsAfter"]["camLabel"], "Stop video");
    assert_eq!(result["leftNotice"]["visible"], true);
    assert_eq!(result["leftNotice"]["title"], "You left the call");
    assert_eq!(
        result["tilesAfterLeave"]["Bob"],
        serde_json::json!(["Bob (you)", "Carol"])
    );
    no_page_errors(&result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_share_appears_as_an_extra_tile_on_the_others() {
    let test = start().await;
    let result = test.scenario("screen-share", SCENARIO_TIMEOUT).await;
    for page in ["Bob", "Carol"] {
        assert!(num(&result, &["shownMs", page]) < 5_000.0);
        let after: Vec<&str> = result["after"][page]
            .as_array()
            .expect("tiles after")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(after.len(), 3, "{page} after the share: {after:?}");
        assert!(after.iter().all(|t| t.ends_with("/camera")), "{after:?}");
    }
    let frames = [
        num(&result, &["screenFramesDecoded", "0"]),
        num(&result, &["screenFramesDecoded", "1"]),
    ];
    assert!(
        frames[1] > frames[0],
        "screen frames not decoded: {frames:?}"
    );
    let bob = result["whileSharing"]["bob"]
        .as_array()
        .expect("Bob's tiles");
    assert_eq!(bob.len(), 4, "camera tiles + one screen tile: {bob:?}");
    assert!(bob.iter().any(|t| t["source"] == "screen"
        && t["name"] == "Alice’s screen"
        && t["hasVideo"] == true));
    assert!(bob
        .iter()
        .any(|t| t["source"] == "camera" && t["name"] == "Alice"));
    assert_eq!(result["whileSharing"]["button"], "Stop sharing");
    no_page_errors(&result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_mesh_pages_call_each_other_directly_through_ws() {
    let test = start().await;
    let result = test.scenario("mesh", SCENARIO_TIMEOUT).await;
    for (me, other) in [("meshA", "meshB"), ("meshB", "meshA")] {
        let page = &result[me];
        assert_eq!(page["peers"], serde_json::json!([other]), "{me}");
        assert_eq!(page["connected"], serde_json::json!([other]), "{me}");
        assert!(
            num(page, &["framesDecoded", other]) > 0.0,
            "{me} decoded nothing from {other}"
        );
        assert_eq!(page["errors"], serde_json::json!([]), "{me}");
        assert_eq!(page["pageErrors"], serde_json::json!([]), "{me}");
    }
    // The callee got the relayed offer, the caller the relayed answer; both got candidates.
    let a_types = result["meshA"]["messageTypes"].to_string();
    let b_types = result["meshB"]["messageTypes"].to_string();
    assert!(a_types.contains("\"offer\"") && a_types.contains("\"candidate\""));
    assert!(b_types.contains("\"answer\"") && b_types.contains("\"candidate\""));
    assert!(a_types.contains("\"peer-joined\"") && b_types.contains("\"peer-list\""));
    // The media path is direct between the two pages, not through the SFU's port.
    let pair_b = &result["meshB"]["pair"];
    assert!(pair_b["remote"].is_string(), "no selected pair: {result:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_and_two_chromium_pages_decode_each_other() {
    let test = start().await;
    let result = test.scenario("firefox", SCENARIO_TIMEOUT).await;
    assert!(result["userAgents"]["Fiona"]
        .as_str()
        .is_some_and(|ua| ua.contains("Firefox/")));
    assert!(result["userAgents"]["Chris"]
        .as_str()
        .is_some_and(|ua| ua.contains("Chrome/")));
    assert_everyone_decodes_everyone(&result, &["Fiona", "Chris", "Chloe"]);
    no_page_errors(&result);
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.len() > 24 && bytes[..8] == *b"\x89PNG\r\n\x1a\n" && &bytes[12..16] == b"IHDR",
        "not a PNG"
    );
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshot_of_a_three_person_call() {
    let test = start().await;
    let result = test.scenario("screenshot", SCENARIO_TIMEOUT).await;
    // Every remote tile paints a real picture, not black.
    let painted = result["painted"].as_array().expect("painted");
    assert_eq!(painted.len(), 2, "{painted:?}");
    for tile in painted {
        assert!(num(tile, &["width"]) > 0.0, "{tile}");
        assert!(num(tile, &["mean"]) > 20.0, "a dark tile: {tile}");
        assert!(num(tile, &["spread"]) > 5.0, "a flat tile: {tile}");
    }
    let shots = result["screenshots"].as_array().expect("screenshots");
    let expected = [(1280, 720), (390, 844), (1280, 720)];
    for (shot, size) in shots.iter().zip(expected) {
        let file = shot["file"].as_str().expect("file");
        let bytes = std::fs::read(file).expect("the screenshot exists");
        assert_eq!(png_size(&bytes), size, "{file}");
        assert!(bytes.len() > 20_000, "{file} is suspiciously small");
        eprintln!("screenshot: {file} ({} bytes)", bytes.len());
    }
    // The controls are on screen, below the grid.
    assert!(num(&result, &["layout", "controls", "bottom"]) <= 720.0);
    // Phone-sized: nothing wider than the screen, all six controls visible, whole labels,
    // finger-sized.
    let phone = &result["phoneLayout"];
    assert!(
        num(phone, &["scrollWidth"]) <= num(phone, &["width"]),
        "{phone}"
    );
    let controls = phone["controls"].as_array().expect("controls");
    assert_eq!(controls.len(), 6, "{phone}");
    for control in controls {
        assert!(num(control, &["left"]) >= 0.0 && num(control, &["right"]) <= 390.0);
        assert!(num(control, &["bottom"]) <= num(phone, &["height"]));
        assert!(num(control, &["width"]) >= 44.0 && num(control, &["height"]) >= 44.0);
        assert_eq!(control["clipped"], false, "{control}");
    }
    no_page_errors(&result);
}

/// `GET path` on the server: (status line, headers, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    (
        status.to_owned(),
        headers.to_owned(),
        raw[split + 4..].to_vec(),
    )
}

#[tokio::test]
async fn the_client_is_served_at_the_root_with_its_content_types() {
    let server = chorus::spawn(support::browser::browser_config())
        .await
        .expect("server");
    let addr = server.addr();
    let (status, headers, body) = http_get(addr, "/").await;
    assert!(status.ends_with("200 ok"), "{status}");
    assert!(
        headers.contains("content-type: text/html; charset=utf-8"),
        "{headers}"
    );
    assert!(headers.contains("content-security-policy: default-src 'self'"));
    let page = String::from_utf8_lossy(&body);
    assert!(page.contains(r#"<script type="module" src="app.js">"#));
    for (path, kind) in [
        ("/app.js", "text/javascript"),
        ("/call.js", "text/javascript"),
        ("/localmedia.js", "text/javascript"),
        ("/viewmodel.js", "text/javascript"),
        ("/style.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let (status, headers, body) = http_get(addr, path).await;
        assert!(status.ends_with("200 ok"), "{path}: {status}");
        assert!(
            headers.contains(&format!("content-type: {kind}")),
            "{path}: {headers}"
        );
        assert!(headers.contains("etag: \""), "{path}: {headers}");
        assert!(!body.is_empty(), "{path}");
    }
    for path in ["/nope.js", "/.hidden", "/../Cargo.toml"] {
        let (status, _, _) = http_get(addr, path).await;
        assert!(status.contains(" 404 "), "{path}: {status}");
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_devices_missing_camera_full_room_kick_and_closed_room_are_explained() {
    const ADMIN_KEY: &str = "browser-test-admin-key";
    let mut config = support::browser::browser_config();
    config.max_participants = 2;
    config.admin_key = Some(ADMIN_KEY.to_owned());
    let test = support::browser::start_with(config).await;
    let result = test
        .scenario_with_env(
            "states",
            SCENARIO_TIMEOUT,
            &[("CHORUS_ADMIN_KEY", ADMIN_KEY)],
        )
        .await;
    // Camera and microphone blocked: said in the lobby; joining still works, to watch and chat.
    assert_eq!(result["denied"]["kind"], "permission-denied");
    assert!(result["denied"]["note"]
        .as_str()
        .is_some_and(|n| n.contains("blocked")));
    assert_eq!(
        result["denied"]["joinLabel"],
        "Join without camera and microphone"
    );
    assert_eq!(result["deniedInCall"]["state"], "connected");
    // No camera: microphone only; the others see the avatar and get the sound.
    assert_eq!(result["noCamera"]["kind"], "not-found");
    assert!(result["noCamera"]["note"]
        .as_str()
        .is_some_and(|n| n.starts_with("No camera found")));
    assert_eq!(result["danSeesNora"]["avatarVisible"], true);
    assert_eq!(result["danSeesNora"]["audioMuted"], false);
    assert_eq!(result["noraSelf"]["avatarVisible"], true);
    // A full room, a kick, a closed room: each a full-screen notice with a way on.
    assert_eq!(result["full"]["title"], "This room is full");
    assert!(result["full"]["text"]
        .as_str()
        .is_some_and(|t| t.contains("2 people")));
    assert_eq!(result["kicked"]["title"], "You were removed from the call");
    assert_eq!(
        result["kicked"]["actions"],
        serde_json::json!(["Back to the lobby"])
    );
    assert_eq!(result["closed"]["title"], "The call has ended");
    assert_eq!(result["afterRemoval"]["dan"], "ended");
    assert_eq!(result["afterRemoval"]["nora"], "ended");
    assert!(num(&result, &["afterRemoval", "samples"]) >= 4.0);
    no_page_errors(&result);
}
