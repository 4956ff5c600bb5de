//! The interceptor shape every Chorus interceptor shares: packets pass through unchanged in
//! order, both ways, with no timers and no streams to bind; a [`PacketHook`] looks at (or
//! edits) each one on its way. The hooks are the tap that marks RTCP for the application
//! (`rtcp_tap`), the wire-side counter of NACKs and retransmissions (`media::stats::wire`) and
//! the report trimmer that keeps browsers stamping rids (`rid_keeper`).

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use std::collections::VecDeque;
use std::time::Instant;

/// What a pass-through interceptor does to a packet on its way (by default nothing).
pub trait PacketHook: Send + Sync + 'static {
    /// A packet from the network, on its way to the application.
    fn on_read(&mut self, _msg: &mut TaggedPacket) {}
    /// A packet from the application (or an interceptor above), on its way to the network.
    fn on_write(&mut self, _msg: &mut TaggedPacket) {}
    /// The connection started sending a stream.
    fn on_bind_local(&mut self, _info: &StreamInfo) {}
    /// It stopped sending one.
    fn on_unbind_local(&mut self, _info: &StreamInfo) {}
}

/// An interceptor that passes every packet through after its hook saw it.
pub struct PassThrough<H> {
    hook: H,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl<H: PacketHook> PassThrough<H> {
    pub fn new(hook: H) -> Self {
        Self {
            hook,
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }
}

impl<H: PacketHook> Protocol<TaggedPacket, TaggedPacket, ()> for PassThrough<H> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        self.hook.on_read(&mut msg);
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        self.hook.on_write(&mut msg);
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Self::Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        None
    }
}

impl<H: PacketHook> Interceptor for PassThrough<H> {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.hook.on_bind_local(info);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.hook.on_unbind_local(info);
    }
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
