//! Free loopback ports for the servers the tests start (Redis, PostgreSQL), drawn below
//! Linux's ephemeral range (32768+), so that no outgoing connection takes one while its
//! server is down for a restart.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where ports are drawn from; with offsets of up to 10,000 (a cluster's bus ports) they
/// stay under 32,768.
const RANGE: std::ops::Range<u32> = 10_000..22_000;

/// A port that nothing listens on right now, and neither does any of `port + offset` for
/// each of `offsets` (a cluster node's bus port).
pub fn free(offsets: &[u16]) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Spread parallel test processes over the range; within a process, count up.
    let seed = std::process::id().wrapping_mul(7_919)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
    let span = RANGE.end - RANGE.start;
    for _ in 0..span {
        let offset = seed.wrapping_add(NEXT.fetch_add(1, Ordering::SeqCst)) % span;
        let port = u16::try_from(RANGE.start + offset).unwrap();
        if bindable(port) && offsets.iter().all(|extra| bindable(port + extra)) {
            return port;
        }
    }
    panic!("no free loopback port in {RANGE:?}");
}

fn bindable(port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok()
}
