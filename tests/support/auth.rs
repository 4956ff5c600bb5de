//! Access tokens in tests: the one test secret, and a server that requires tokens signed with it.

use chorus::RunningServer;

/// The secret every secured test server runs with (`--auth-secret`).
pub const SECRET: &str = "test-secret-0123456789abcdef";

/// A server that requires access tokens signed with [`SECRET`], with a short mesh grace.
pub async fn start_secured() -> RunningServer {
    super::start_with(|c| {
        c.auth_secret = Some(SECRET.to_owned());
        c.mesh_grace_ms = 300;
    })
    .await
}
