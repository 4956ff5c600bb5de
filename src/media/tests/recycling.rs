//! Long meetings: publishers come and go one after another while a member stays. The m-lines
//! of departed tracks are reused for the next ones, so the member's SDP stays as large as the
//! tracks present, not as the meeting's history, and the current tracks still play.

use super::harness::Bench;
use crate::protocol::TrackKind;

/// The m-lines of an SDP.
fn m_lines(sdp: &str) -> usize {
    sdp.lines().filter(|l| l.starts_with("m=")).count()
}

/// The member's current offer/answer pair: (m-lines, bytes of its own description).
fn member_sdp(bench: &Bench, member: usize) -> (usize, usize) {
    let pc = &bench.clients[member].pc;
    let local = pc.local_description().map(|d| d.sdp).unwrap_or_default();
    let remote = pc
        .remote_description()
        .map(|d| d.sdp.clone())
        .unwrap_or_default();
    (m_lines(&local).max(m_lines(&remote)), local.len())
}

/// Steps, with `publisher` sending on both its tracks, until `member` got packets on both.
fn receives(bench: &mut Bench, member: usize, publisher: usize) {
    let name = bench.clients[publisher].peer_id.clone();
    let name = name.as_str();
    let audio = bench.clients[member].track_id(name, TrackKind::Audio);
    let video = bench.clients[member].track_id(name, TrackKind::Video);
    let before = (
        bench.clients[member].received_on(&audio),
        bench.clients[member].received_on(&video),
    );
    for _ in 0..100 {
        let c = &bench.clients[member];
        if c.received_on(&audio) > before.0 + 2 && c.received_on(&video) > before.1 + 2 {
            return;
        }
        bench.send_from(publisher, TrackKind::Audio, 1);
        bench.send_from(publisher, TrackKind::Video, 1);
    }
    panic!(
        "{} does not receive {name}'s tracks",
        bench.clients[member].peer_id
    );
}

/// `departures` publishers (audio + video) join, are received by the member and leave, one
/// after another. Returns the most m-lines the member's descriptions had and the size of its
/// last answer.
fn churn(bench: &mut Bench, member: usize, departures: usize, publishes: bool) -> (usize, usize) {
    let mut most = 0;
    for i in 0..departures {
        let name = format!("p{i}");
        let p = bench.join("room", &name);
        bench.publish(p, &[TrackKind::Audio, TrackKind::Video]);
        bench.settle();
        receives(bench, member, p);
        if publishes {
            // The member's own tracks still reach the newcomer.
            receives(bench, p, member);
        }
        let (lines, _) = member_sdp(bench, member);
        most = most.max(lines);
        bench.leave(p);
        bench.clients.pop();
        bench.stabilize();
    }
    (most, member_sdp(bench, member).1)
}

#[test]
fn a_viewer_sdp_stays_bounded_while_42_publishers_come_and_go() {
    let mut bench = Bench::new();
    let viewer = bench.join("room", "viewer");
    let (most, answer) = churn(&mut bench, viewer, 42, false);
    let offer = bench.clients[viewer]
        .pc
        .remote_description()
        .map_or(0, |d| d.sdp.len());
    eprintln!(
        "viewer: at most {most} m-lines; after 42 departures answer {answer} bytes, offer \
         {offer} bytes"
    );
    // Present: one publisher's audio and video; two more may await the next negotiation.
    assert!(most <= 4, "the viewer's SDP grew to {most} m-lines");
}

#[test]
fn a_publishing_member_keeps_its_tracks_while_the_m_lines_it_receives_are_reused() {
    let mut bench = Bench::new();
    let member = bench.join("room", "member");
    bench.publish(member, &[TrackKind::Audio, TrackKind::Video]);
    bench.settle();
    let (most, _) = churn(&mut bench, member, 8, true);
    // Its own two sections, one publisher's two, two awaiting the next negotiation.
    assert!(most <= 6, "the member's SDP grew to {most} m-lines");
    bench.send_from(member, TrackKind::Audio, 3);
    assert!(bench.clients[member].errors().is_empty());
}

#[test]
fn released_m_lines_a_client_offer_stopped_are_not_reused_and_tracks_still_play() {
    // A client whose stack answers an inactive m-line by stopping its transceiver offers it
    // `inactive` next time, which stops ours too: such an m-line cannot take a track any more,
    // and the next subscription gets a new one instead.
    let mut bench = Bench::new();
    let member = bench.join("room", "member");
    bench.publish(member, &[TrackKind::Audio, TrackKind::Video]);
    bench.settle();
    for i in 0..4 {
        let p = bench.join("room", &format!("p{i}"));
        bench.publish(p, &[TrackKind::Audio, TrackKind::Video]);
        bench.settle();
        receives(&mut bench, member, p);
        receives(&mut bench, p, member);
        bench.leave(p);
        bench.clients.pop();
        bench.stabilize();
        bench.publish(member, &[]); // a re-offer with the released m-lines inactive
        bench.stabilize();
    }
    assert!(bench.clients[member].errors().is_empty());
}
