//! Unit tests of the configuration: defaults, flag and environment parsing, validation.

use super::*;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

#[test]
fn clap_defaults_equal_default_impl() {
    let parsed = Cli::try_parse_from(["chorus"]).map(|c| c.config);
    // Environment variables of the developer's shell could change the parse; only compare
    // when none is set.
    if std::env::vars().all(|(k, _)| !k.starts_with("CHORUS_")) {
        assert_eq!(parsed.ok(), Some(Config::default()));
    }
    assert_eq!(Config::default().validate(), Ok(()));
}

#[test]
fn repeatable_flags_and_validation() {
    let cli = Cli::try_parse_from([
        "chorus",
        "--advertise-ip",
        "10.0.0.1",
        "--advertise-ip",
        "192.0.2.7",
        "--udp-port",
        "0",
        "--log-format",
        "json",
    ])
    .map(|c| c.config);
    let config = cli.expect("flags parse");
    assert_eq!(config.advertise_ips.len(), 2);
    assert_eq!(config.media().udp_port, 0);
    assert_eq!(config.log_format, LogFormat::Json);
    let bad = Config {
        max_participants: 0,
        ..Config::default()
    };
    assert!(bad.validate().is_err());
}

#[test]
fn the_sdp_limit_follows_the_room_size() {
    let config = Config::default();
    assert_eq!(config.sdp_limit(), 16 * 1024 + 16 * 8 * 1024);
    let big = Config {
        max_participants: 100,
        ..Config::default()
    };
    assert_eq!(big.sdp_limit(), 16 * 1024 + 100 * 8 * 1024);
    let tiny = Config {
        max_participants: 1,
        max_frame_bytes: 65536,
        ..Config::default()
    };
    assert_eq!(tiny.sdp_limit(), 65536, "never below --max-frame-bytes");
    let set = Config {
        max_sdp_bytes: 300_000,
        ..Config::default()
    };
    assert_eq!(set.sdp_limit(), 300_000);
    assert_eq!(set.message_limit(), 300_000);
}

#[test]
fn durations() {
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
    assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172800)));
    assert!(parse_duration("h").is_err());
    assert!(parse_duration("5y").is_err());
    assert!(parse_duration("99999999999999999999d").is_err());
}
