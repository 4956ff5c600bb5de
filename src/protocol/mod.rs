//! The wire vocabulary of Chorus, at the ground floor of the crate: every layer (auth, rooms,
//! media, sessions, metrics, the load tester) speaks these types and this module imports none of
//! them. The `/ws` protocol is JSON text frames with a `type` field: the SFU protocol v1 and the
//! mesh-compatible frames of the older peer-to-peer clients. This module only describes and
//! (de)serializes messages; it never routes them.

pub mod errors;
pub mod media;
pub mod messages;

pub use errors::*;
pub use media::*;
pub use messages::*;
