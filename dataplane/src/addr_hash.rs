//! FNV-1a over a socket address (IP bytes, then port): cheap, and spreads
//! neighbouring addresses, for the fixed tables found by hash
//! (`engine::exception_budget`, `io::pktinfo`).

use std::net::{IpAddr, SocketAddr};

/// The hash of `addr`.
#[inline]
pub fn addr_hash(addr: SocketAddr) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    match addr.ip() {
        IpAddr::V4(v4) => eat(&v4.octets()),
        IpAddr::V6(v6) => eat(&v6.octets()),
    }
    eat(&addr.port().to_be_bytes());
    h
}
