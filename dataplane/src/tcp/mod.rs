//! ICE-TCP (RFC 6544 passive candidates, RFC 4571 framing): a front that
//! turns each TCP connection into a UDP peer of its worker.
//!
//! - [`route`]: which worker a connection belongs to (from the bridge's
//!   ufrag in its first Binding request).
//! - [`conn`]: a connection's buffers, phase and timeouts, without I/O.
//! - [`front`]: the thread that accepts, reads, writes and closes.
//!
//! Why a front and not TCP inside the workers: docs/dataplane.md.

pub mod conn;
pub mod front;
pub mod route;

pub use conn::{CloseReason, Limits};
pub use front::{Front, FrontConfig};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Where the front reaches a worker bound to `bind:port`, and the address
/// its own sockets bind to: the loopback address of the same family when
/// the workers listen on a wildcard address, else that address itself.
pub fn worker_route(bind: IpAddr, port: u16) -> (SocketAddr, IpAddr) {
    let ip = match bind {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    (SocketAddr::new(ip, port), ip)
}
