//! The floor forwarder (`chorus bench-floor`) allocates nothing per forwarded packet: with a
//! counting global allocator, one batch of 64 packets to 20 legs (1,280 sealed datagrams)
//! allocates nothing once warm: not even the shard `SendQueue`'s `sendmmsg` arrays, which it
//! keeps between calls.

use chorus::floor::forwarder::Forwarder;
use chorus::floor::leg::{Leg, LegSecret};
use chorus::net::udp::{bind, BATCH};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const LEGS: usize = 20;

#[test]
fn forwarding_a_batch_allocates_nothing_once_warm() {
    let loopback = || bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let input = loopback();
    let to = input.local_addr().unwrap();
    let sinks: Vec<_> = (0..LEGS).map(|_| loopback()).collect();
    let legs = sinks
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let leg = Leg::new(i as u32 + 1, 100, 0, LegSecret::random());
            (leg, s.local_addr().unwrap())
        })
        .collect();
    let mut forwarder = Forwarder::new(input, legs);
    let publisher = loopback();
    let mut packet = vec![0x80, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    packet.resize(12 + 1200, 0xAB);
    let mut seq = 0u16;
    let mut send_batch = |publisher: &std::net::UdpSocket| {
        for _ in 0..BATCH {
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            seq = seq.wrapping_add(1);
            publisher.send_to(&packet, to).unwrap();
        }
    };
    // Warm-up until one read held a full batch: that sizes the send queue for any batch
    // (and shares the send buffer, once).
    let mut largest = 0;
    for round in 1..=50 {
        send_batch(&publisher);
        largest = largest.max(forward_until(&mut forwarder, round * BATCH as u64));
        if largest == BATCH {
            break;
        }
    }
    assert_eq!(largest, BATCH, "a full batch was read in one call");
    let warm = forwarder.stats().received;
    send_batch(&publisher);
    // However the batch lands (one read or several), count what each read may allocate.
    let (before, forwarded_before) = (allocations(), forwarder.stats().forwarded);
    let deadline = Instant::now() + Duration::from_secs(5);
    while forwarder.stats().received < warm + BATCH as u64 {
        assert!(Instant::now() < deadline, "the second batch arrives");
        forwarder.forward_once();
    }
    let allocated = allocations() - before;
    let forwarded = forwarder.stats().forwarded - forwarded_before;
    assert_eq!(forwarded, (BATCH * LEGS) as u64);
    assert_eq!(
        allocated, 0,
        "{allocated} allocations for {forwarded} forwarded datagrams"
    );
}

/// Forwards until `received` packets came in; the largest batch read.
fn forward_until(forwarder: &mut Forwarder, received: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut largest = 0;
    while forwarder.stats().received < received {
        assert!(Instant::now() < deadline, "the publisher's packets arrive");
        largest = largest.max(forwarder.forward_once());
    }
    largest
}
