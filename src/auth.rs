//! Access tokens: HS256 JWTs that admit one identity to one room with a set of grants. This
//! module mints and verifies tokens and maps failures to wire error codes; it must not decide
//! what a grant permits (the session does) or know about sockets.

use crate::protocol::ErrorCode;
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the holder of a token may do in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// Send media.
    #[serde(default)]
    pub publish: bool,
    /// Receive media.
    #[serde(default)]
    pub subscribe: bool,
    /// Send chat messages.
    #[serde(default)]
    pub chat: bool,
}

impl Grants {
    /// Everything allowed (open servers, and the default for minted tokens).
    pub const ALL: Grants = Grants {
        publish: true,
        subscribe: true,
        chat: true,
    };
}

/// The claims of a Chorus access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The room the token admits to.
    pub room: String,
    /// Identity of the holder (logged; not the peer ID).
    pub sub: String,
    /// Display name shown to the others; empty or missing: the `sub` is shown.
    #[serde(default)]
    pub name: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Not valid before, Unix seconds (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default = "no_grants")]
    pub grants: Grants,
}

fn no_grants() -> Grants {
    Grants {
        publish: false,
        subscribe: false,
        chat: false,
    }
}

impl Claims {
    /// Claims for `identity` in `room`, valid for `ttl` from now, with every grant.
    pub fn new(room: &str, identity: &str, name: &str, ttl: Duration) -> Self {
        Self {
            room: room.to_owned(),
            sub: identity.to_owned(),
            name: name.to_owned(),
            exp: unix_now().saturating_add(ttl.as_secs()),
            nbf: None,
            grants: Grants::ALL,
        }
    }

    /// The name shown to the others: `name`, or the `sub` when the token names no one.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.sub
        } else {
            &self.name
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this server requires an access token")]
    Missing,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet (its nbf is in the future)")]
    NotYetValid,
    #[error("the access token is not valid: {0}")]
    Invalid(String),
    #[error("the access token is for room `{token_room}`, not `{room}`")]
    WrongRoom { token_room: String, room: String },
    #[error("could not sign the token: {0}")]
    Signing(String),
}

impl AuthError {
    /// The wire error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::Missing => ErrorCode::AuthRequired,
            AuthError::Expired => ErrorCode::TokenExpired,
            AuthError::NotYetValid => ErrorCode::TokenNotYetValid,
            AuthError::Invalid(_) | AuthError::Signing(_) => ErrorCode::BadToken,
            AuthError::WrongRoom { .. } => ErrorCode::WrongRoom,
        }
    }
}

/// Mints and verifies tokens with one shared secret.
#[derive(Clone)]
pub struct TokenAuthority {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenAuthority { .. }")
    }
}

impl TokenAuthority {
    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    pub const LEEWAY_SECS: u64 = 5;

    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = Self::LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Signs `claims` into a compact JWT.
    pub fn mint(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }

    /// Checks signature and expiry and returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                _ => AuthError::Invalid(e.to_string()),
            })
    }

    /// Verifies `token` and checks that it admits to `room`.
    pub fn verify_for_room(&self, token: &str, room: &str) -> Result<Claims, AuthError> {
        let claims = self.verify(token)?;
        if claims.room != room {
            return Err(AuthError::WrongRoom {
                token_room: claims.room,
                room: room.to_owned(),
            });
        }
        Ok(claims)
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef-test-secret";

    #[test]
    fn mint_then_verify_round_trips() {
        let authority = TokenAuthority::new(SECRET);
        let claims = Claims::new(
            "standup",
            "alice@example.org",
            "Alice",
            Duration::from_secs(60),
        );
        let token = authority.mint(&claims).expect("mint");
        assert_eq!(authority.verify(&token), Ok(claims.clone()));
        assert_eq!(authority.verify_for_room(&token, "standup"), Ok(claims));
    }

    #[test]
    fn refusals_have_stable_codes() {
        let authority = TokenAuthority::new(SECRET);
        let mut claims = Claims::new("standup", "alice", "Alice", Duration::from_secs(60));
        let token = authority.mint(&claims).expect("mint");
        let wrong_room = authority.verify_for_room(&token, "other").unwrap_err();
        assert_eq!(wrong_room.code(), ErrorCode::WrongRoom);

        let other_secret = TokenAuthority::new(b"another-secret-of-16+bytes");
        assert_eq!(
            other_secret.verify(&token).unwrap_err().code(),
            ErrorCode::BadToken
        );
        assert_eq!(
            authority.verify("not.a.jwt").unwrap_err().code(),
            ErrorCode::BadToken
        );

        claims.exp = unix_now() - 3600;
        let expired = authority.mint(&claims).expect("mint");
        assert_eq!(authority.verify(&expired), Err(AuthError::Expired));
    }

    #[test]
    fn nbf_in_the_future_is_refused_and_a_missing_name_shows_the_sub() {
        let authority = TokenAuthority::new(SECRET);
        let mut claims = Claims::new("standup", "alice", "", Duration::from_secs(600));
        claims.nbf = Some(unix_now() + 300);
        let early = authority.mint(&claims).expect("mint");
        let refused = authority.verify(&early).unwrap_err();
        assert_eq!(refused, AuthError::NotYetValid);
        assert_eq!(refused.code(), ErrorCode::TokenNotYetValid);
        claims.nbf = Some(unix_now() - 1);
        let ready = authority.mint(&claims).expect("mint");
        let verified = authority.verify(&ready).expect("valid now");
        assert_eq!(verified.display_name(), "alice");
        let unnamed: Claims =
            serde_json::from_str(r#"{"room":"r","sub":"bob","exp":1}"#).expect("parse");
        assert_eq!(unnamed.display_name(), "bob");
    }

    #[test]
    fn missing_grants_mean_none() {
        let claims: Claims =
            serde_json::from_str(r#"{"room":"r","sub":"s","name":"n","exp":1}"#).expect("parse");
        assert_eq!(claims.grants, no_grants());
    }
}
