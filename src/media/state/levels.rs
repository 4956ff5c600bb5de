//! The shard's absolute levels for the gauges (connections, tracks, subscriptions, rooms,
//! fast-path legs, simulcast legs per layer, layers paused by dynacast). Part of
//! [`ShardState`].

use super::ShardState;
use crate::media::stats::ShardLevels;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

impl ShardState {
    /// Current absolute levels for the gauges.
    pub fn levels(&self) -> ShardLevels {
        let publications = || self.rooms.values().flat_map(|r| r.publications.values());
        let audio = publications()
            .filter(|p| p.kind == RtpCodecKind::Audio)
            .count();
        ShardLevels {
            peer_connections: self.peers.len() as i64,
            published_audio: audio as i64,
            published_video: (publications().count() - audio) as i64,
            subscriptions: self
                .peers
                .values()
                .map(|p| p.subscriptions.len())
                .sum::<usize>() as i64,
            rooms: self.rooms.len() as i64,
            fast_path_legs: self.peers.values().filter(|p| p.fast.is_some()).count() as i64,
            simulcast_legs: self.simulcast_legs(),
            simulcast_paused_layers: publications()
                .map(|p| p.layers.dynacast.paused().count_ones() as i64)
                .sum(),
            cpu_nanos: 0,
        }
    }

    /// Subscriber legs per simulcast layer they are on.
    fn simulcast_legs(&self) -> [i64; 4] {
        let mut legs = [0; 4];
        let layers = self
            .peers
            .values()
            .flat_map(|p| p.subscriptions.values())
            .filter_map(|s| s.simulcast.selector.current());
        for layer in layers {
            legs[crate::media::stats::simulcast::label_index(layer)] += 1;
        }
        legs
    }
}
