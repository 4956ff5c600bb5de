//! The README's protocol tables must match the code: every example message in them is parsed
//! with the real serde types (and serialized back to the same JSON, so a misspelled or extra
//! field fails), every message type and error code is documented, every `chorus serve` flag
//! appears in the configuration table with its variable and default, and `.ci/run` runs the
//! README's test command.

mod support;

use chorus::protocol::{
    ClientMessage, ErrorCode, MediaErrorCode, MediaEvent, RawFrame, ServerMessage,
    CLIENT_MESSAGE_TYPES,
};
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use support::readme::{cells, read};

const SERVER_MESSAGE_TYPES: &[&str] = &[
    "joined",
    "participant-joined",
    "participant-left",
    "chat",
    "left",
    "room-full",
    "error",
    "client-id",
    "peer-list",
    "peer-joined",
    "peer-left",
];
const MEDIA_EVENT_TYPES: &[&str] = &[
    "offer",
    "answer",
    "candidate",
    "track-published",
    "track-unpublished",
    "mute",
    "error",
];
const SEED_MESH_TYPES: &[&str] = &[
    "offer",
    "answer",
    "candidate",
    "ice-candidate",
    "chat",
    "call-request",
    "call-ack",
    "call-offer",
    "call-answer",
    "call-hangup",
];

/// One example message from a protocol table row.
#[derive(Debug)]
struct Example {
    line: usize,
    mesh: bool,
    direction: String,
    json: String,
}

fn examples(readme: &str) -> Vec<Example> {
    let mut mesh = false;
    let mut found = Vec::new();
    for (index, line) in readme.lines().enumerate() {
        if line.starts_with('#') {
            mesh = line.contains("Mesh");
            continue;
        }
        if !line.starts_with('|') {
            continue;
        }
        let row = cells(line);
        let Some(example) = row.iter().rev().find(|c| !c.is_empty()) else {
            continue;
        };
        if let Some(json) = example
            .strip_prefix("`{")
            .and_then(|rest| rest.strip_suffix("}`"))
        {
            found.push(Example {
                line: index + 1,
                mesh,
                direction: row[1].clone(),
                json: format!("{{{json}}}"),
            });
        }
    }
    found
}

fn value(example: &Example) -> Value {
    serde_json::from_str(&example.json).unwrap_or_else(|e| {
        panic!(
            "README line {}: not JSON ({e}): {}",
            example.line, example.json
        )
    })
}

/// Serializes `typed` (plus `type` when given) and demands the README's exact fields back.
fn assert_round_trip(example: &Example, typed: &impl Serialize, kind: Option<&str>) {
    let mut back = serde_json::to_value(typed).expect("serialize");
    if let (Some(kind), Some(fields)) = (kind, back.as_object_mut()) {
        fields.insert("type".into(), Value::from(kind));
    }
    assert_eq!(
        back,
        value(example),
        "README line {} does not round-trip",
        example.line
    );
}

fn check_client_example(example: &Example) -> String {
    let raw = RawFrame::parse(&example.json)
        .unwrap_or_else(|e| panic!("README line {}: {e}", example.line));
    let kind = raw.kind.clone();
    match raw.into_message() {
        Ok(ClientMessage::Join(join)) => {
            assert_eq!(join.is_sfu(), !example.mesh, "README line {}", example.line);
            assert_round_trip(example, &join, Some("join"));
        }
        Ok(ClientMessage::Chat(chat)) => assert_round_trip(example, &chat, Some("chat")),
        Ok(ClientMessage::Leave) => assert_eq!(value(example), serde_json::json!({"type":"leave"})),
        Ok(ClientMessage::Media(request)) => assert_round_trip(example, &request, None),
        Err(e) => panic!("README line {}: {e}: {}", example.line, example.json),
    }
    kind
}

fn check_server_example(example: &Example) -> String {
    let json = &example.json;
    if let Ok(message) = serde_json::from_str::<ServerMessage>(json) {
        assert_round_trip(example, &message, None);
    } else {
        let event: MediaEvent = serde_json::from_str(json).unwrap_or_else(|e| {
            panic!(
                "README line {}: neither a server message nor a media event ({e}): {json}",
                example.line
            )
        });
        assert_round_trip(example, &event, None);
    }
    value(example)["type"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn check_relayed_example(example: &Example) -> String {
    let raw = RawFrame::parse(&example.json)
        .unwrap_or_else(|e| panic!("README line {}: {e}", example.line));
    let to = raw
        .to()
        .unwrap_or_else(|e| panic!("README line {}: {e}", example.line));
    assert!(
        to.is_some() || raw.kind == "chat",
        "README line {}: a targeted mesh example needs `to`",
        example.line
    );
    raw.kind
}

#[test]
fn every_readme_example_parses_with_the_real_types() {
    let readme = read("README.md");
    let examples = examples(&readme);
    assert!(
        examples.len() >= 35,
        "found only {} examples",
        examples.len()
    );
    let (mut client_types, mut server_types, mut mesh_types) = (Vec::new(), Vec::new(), Vec::new());
    for example in &examples {
        match (example.mesh, example.direction.as_str()) {
            (_, "C→S") => client_types.push(check_client_example(example)),
            (_, "S→C") => server_types.push(check_server_example(example)),
            (true, "C→peer") => mesh_types.push(check_relayed_example(example)),
            (_, other) => panic!("README line {}: unknown direction {other}", example.line),
        }
    }
    for kind in CLIENT_MESSAGE_TYPES {
        assert!(
            client_types.iter().any(|t| t == kind),
            "no README example of client {kind}"
        );
    }
    for kind in SERVER_MESSAGE_TYPES.iter().chain(MEDIA_EVENT_TYPES) {
        assert!(
            server_types.iter().any(|t| t == kind),
            "no README example of server {kind}"
        );
    }
    for kind in SEED_MESH_TYPES {
        assert!(
            mesh_types.iter().any(|t| t == kind),
            "no README example of mesh {kind}"
        );
    }
}

#[test]
fn every_error_code_is_documented() {
    let readme = read("README.md");
    for code in ErrorCode::ALL {
        let cell = format!("| `{}` |", code.as_str());
        assert!(
            readme.contains(&cell),
            "error code {} is not in the README table",
            code.as_str()
        );
    }
}

#[test]
fn every_media_error_code_is_documented_in_the_media_table() {
    let readme = read("README.md");
    let start = readme
        .find("<!-- media-error-codes -->")
        .expect("README has the media error code table");
    let end = readme[start..]
        .find("<!-- /media-error-codes -->")
        .expect("the media error code table ends");
    let table = &readme[start..start + end];
    let rows = table.lines().filter(|l| l.starts_with("| `")).count();
    assert_eq!(
        rows,
        MediaErrorCode::ALL.len(),
        "one row per media error code"
    );
    for code in MediaErrorCode::ALL {
        let cell = format!("| `{}` |", code.as_str());
        assert!(
            table.contains(&cell),
            "media error code {code} is not in the README media error table"
        );
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = read("README.md");
    let command = readme
        .lines()
        .find(|line| line.starts_with("cargo test"))
        .expect("README names the test command");
    let ci = read(".ci/run");
    let runs = ci
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .any(|line| line == command);
    assert!(runs, ".ci/run has no uncommented line `{command}`");
}

/// The rows of the README's configuration table: flag → (env, default).
fn flag_table(readme: &str) -> BTreeMap<String, (String, String)> {
    let rows: Vec<&str> = readme
        .lines()
        .skip_while(|line| !line.starts_with("| flag | env | default |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .collect();
    assert!(rows.len() > 20, "the configuration table is not found");
    rows.iter()
        .map(|row| {
            let c = cells(row);
            let unquote = |s: &str| s.trim_matches('`').to_owned();
            (unquote(&c[0]), (unquote(&c[1]), unquote(&c[2])))
        })
        .collect()
}

#[test]
fn every_serve_flag_is_in_the_readme_table_with_its_env_and_default() {
    let table = flag_table(&read("README.md"));
    let command = chorus::Config::augment_args(clap::Command::new("serve"));
    let mut flags = Vec::new();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        let flag = format!("--{long}");
        let (env, default) = table
            .get(&flag)
            .unwrap_or_else(|| panic!("`{flag}` is missing from the README flag table"));
        let clap_env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        assert_eq!(
            Some(env.clone()),
            clap_env,
            "environment variable of `{flag}`"
        );
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        match defaults.as_slice() {
            [] => assert!(
                matches!(default.as_str(), "unset" | "none"),
                "`{flag}` has no default in clap, the README says `{default}`"
            ),
            values => assert_eq!(*default, values.join(","), "default of `{flag}`"),
        }
        flags.push(flag);
    }
    let extra: Vec<&String> = table.keys().filter(|f| !flags.contains(f)).collect();
    assert!(
        extra.is_empty(),
        "the README lists flags `chorus serve` lacks: {extra:?}"
    );
}
