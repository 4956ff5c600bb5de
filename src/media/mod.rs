//! The SFU media engine: one WebRTC PeerConnection per client, RTP forwarded between the members
//! of a room. Signaling talks to it only through [`MediaEngine::join`] and the [`MediaLeg`] it
//! returns; everything the engine has to tell a client arrives as [`MediaEvent`]s on the channel
//! given at join. (Interface stub: the engine itself lands with the media issue.)

use crate::signal::protocol::{MediaEvent, MediaRequest};
use std::net::IpAddr;
use tokio::sync::mpsc;

/// Settings of the media engine, taken from the command line.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// First UDP port; shard k listens on `udp_port + k`.
    pub udp_port: u16,
    /// Number of shard threads (0 = one per core).
    pub udp_threads: usize,
    /// Address the UDP sockets bind to.
    pub bind_ip: IpAddr,
    /// Addresses advertised as ICE host candidates (empty = every usable interface + 127.0.0.1).
    pub advertise_ips: Vec<IpAddr>,
}

/// Errors starting the engine.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("media socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Handle to the running engine; cheap to clone.
#[derive(Clone, Debug)]
pub struct MediaEngine {
    _config: std::sync::Arc<MediaConfig>,
}

impl MediaEngine {
    /// Binds the shard sockets and starts the shard threads.
    pub fn start(config: MediaConfig) -> Result<Self, MediaError> {
        Ok(Self {
            _config: std::sync::Arc::new(config),
        })
    }

    /// Registers `peer_id` as a media participant of `room`. Events for the client (server
    /// offers, candidates, track announcements, errors) are sent on `events`. Dropping the
    /// returned leg tears the participant's PeerConnection down and unpublishes its tracks.
    pub fn join(
        &self,
        room: &str,
        peer_id: &str,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> MediaLeg {
        let _ = (room, peer_id);
        MediaLeg { events }
    }
}

/// One participant's media session, owned by its signaling session.
#[derive(Debug)]
pub struct MediaLeg {
    events: mpsc::UnboundedSender<MediaEvent>,
}

impl MediaLeg {
    /// Hands a client media request (offer, answer, candidate, mute, subscribe…) to the engine.
    pub fn request(&self, request: MediaRequest) {
        let _ = request;
        let _ = self.events.send(MediaEvent::Error {
            code: "media-unavailable".into(),
            message: "the media engine is not running".into(),
        });
    }
}
