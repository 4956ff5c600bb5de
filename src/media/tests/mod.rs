//! Unit tests of the shard core ([`ShardState`](super::state::ShardState)) with in-memory
//! peers: real sans-IO PeerConnections as clients, datagrams moved between them in memory, and
//! a fake clock. No sockets, no sleeps.
