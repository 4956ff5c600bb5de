//! Issue 12 (RSS per subscriber leg): a leg's bandwidth estimation (`media::bwe::LegBwe`: send
//! history, estimator, prober, meters) holds a bounded amount of heap whatever the leg's packet
//! rate, and little at an ordinary one, counted by a global allocator that tracks this thread's
//! live bytes. The leg is fed TWCC feedback every 100 ms, as the load generator's and browsers'
//! receivers send it.

use chorus::media::bwe::{history, LegBwe};
use rtc::interceptor::Acknowledgement;
use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.with(|l| l.get())
}

/// Heap bytes a leg's estimation holds after `secs` seconds at `pps` packets/s of 1,200 bytes,
/// every packet acknowledged 20 ms after it left, in feedback every 100 ms.
fn held_after(pps: u64, secs: u64) -> isize {
    let t0 = Instant::now();
    let before = live();
    let mut bwe = LegBwe::default();
    let gap = Duration::from_micros(1_000_000 / pps);
    let mut acks = Vec::new();
    let mut next_feedback = Duration::from_millis(100);
    for i in 0..pps * secs {
        let at = gap * i as u32;
        let seq = bwe.next_transport_seq();
        bwe.on_sent(Some(seq), 1_200, false, t0 + at);
        let arrival = Some(at + Duration::from_millis(20));
        acks.push(Acknowledgement::received(seq, arrival, Ecn::NotEct));
        if at >= next_feedback {
            bwe.on_acks(&acks, t0 + at + Duration::from_millis(40));
            acks.clear();
            next_feedback += Duration::from_millis(100);
        }
    }
    drop(acks);
    let held = live() - before;
    assert!(bwe.estimate_bps().is_some());
    drop(bwe);
    held
}

#[test]
fn a_legs_estimation_memory_is_bounded_at_any_packet_rate() {
    // The send history's ring (8 bytes a slot, sized to hold a second of packets: at most
    // twice the packet rate's power of two, at most `SLOTS`) plus 4 KiB: nothing per packet.
    let bound = |pps: u64| {
        let slots = (2 * pps.next_power_of_two() as usize).min(history::SLOTS);
        (slots * 8 + 4 * 1024) as isize
    };
    let held: Vec<_> = [250, 3_000, 10_000]
        .into_iter()
        .map(|pps| (pps, held_after(pps, 4), bound(pps)))
        .collect();
    assert!(
        held.iter().all(|&(_, bytes, bound)| bytes <= bound),
        "(packets/s, bytes held, bound): {held:?}"
    );
}
