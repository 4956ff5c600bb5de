//! Fuzz target: access-token parsing. Arbitrary bytes as a token (and as a token signed with the
//! right secret around fuzzed claims) must verify to claims or to a typed error with a wire
//! code, never panic.
#![no_main]

use chorus::auth::TokenAuthority;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const SECRET: &[u8] = b"fuzz-secret";

fn authority() -> &'static TokenAuthority {
    static AUTHORITY: OnceLock<TokenAuthority> = OnceLock::new();
    AUTHORITY.get_or_init(|| TokenAuthority::new(SECRET))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let authority = authority();
    // As a whole token, in a URL query or a `join`.
    match authority.verify_for_room(text, "lobby") {
        Ok(claims) => assert_eq!(claims.room, "lobby"),
        Err(error) => {
            let _ = error.code().as_str();
        }
    }
    // As a claims payload signed with the right key: the claim checks (types, `exp`, `nbf`,
    // `room`) run on hostile JSON.
    if let Ok(claims) = serde_json::from_str::<serde_json::Value>(text) {
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        if let Ok(token) = jsonwebtoken::encode(&header, &claims, &key) {
            match authority.verify(&token) {
                // `exp` is a required claim: nothing without it is ever accepted.
                Ok(_) => assert!(claims.get("exp").is_some()),
                Err(error) => {
                    let _ = error.code().as_str();
                }
            }
        }
    }
});
