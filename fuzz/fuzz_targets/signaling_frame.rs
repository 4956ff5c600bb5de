//! Fuzz target: one WebSocket text frame through everything the session does with it before any
//! room sees it, for both protocols: JSON parse and classification (`RawFrame`), the mesh `to`
//! lookup, typing as an SFU message, and validation of the names a `join` carries. Every
//! outcome must be an `Ok` or a typed error with a wire code, never a panic.
#![no_main]

use chorus::protocol::{ClientMessage, MediaRequest, RawFrame, ServerMessage};
use chorus::room::ids::{is_valid_peer_id, is_valid_room_name, normalize_display_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The WebSocket layer only hands over valid UTF-8 text frames.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let frame = match RawFrame::parse(text) {
        Ok(frame) => frame,
        Err(error) => {
            // Every parse failure has a wire code and a message that serializes.
            let reply = ServerMessage::error(error.code(), error.to_string()).to_json();
            assert!(reply.starts_with("{\"type\":\"error\""));
            return;
        }
    };
    // Mesh routing: the `to` field, and the join-form test.
    let _ = frame.to();
    let _ = frame.has_field("room");
    let _ = frame.has_field("peerId");
    match frame.into_message() {
        Ok(ClientMessage::Join(join)) => {
            let _ = join.is_sfu();
            if let Some(room) = &join.room {
                let _ = is_valid_room_name(room);
            }
            if let Some(name) = &join.name {
                if let Some(name) = normalize_display_name(name) {
                    assert!(!name.is_empty());
                }
            }
            if let Some(peer_id) = &join.peer_id {
                let _ = is_valid_peer_id(peer_id);
            }
        }
        Ok(ClientMessage::Chat(chat)) => {
            let _ = chat.text.chars().count();
        }
        Ok(ClientMessage::Media(request)) => {
            // A typed media request round-trips through its wire form.
            let wire = serde_json::to_string(&request).expect("serialize a parsed request");
            let back: MediaRequest = serde_json::from_str(&wire).expect("reparse own output");
            assert_eq!(back, request);
        }
        Ok(ClientMessage::Leave) => {}
        Err(error) => {
            let _ = error.code().as_str();
        }
    }
});
