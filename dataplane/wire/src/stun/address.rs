//! XOR-MAPPED-ADDRESS values (RFC 8489 §14.2).
//!
//! ```text
//! | 0 0 0 0 0 0 0 0 | family (1 v4, 2 v6) | X-Port (16)          |
//! | X-Address (32 or 128 bits)                                   |
//! ```
//! The port is XORed with the top 16 bits of the magic cookie; the address
//! with the cookie (IPv4) or cookie ‖ transaction id (IPv6).

use super::MAGIC_COOKIE;
use crate::{Result, WireError, be, ensure_room};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

fn xor_pad(txid: &[u8; 12]) -> [u8; 16] {
    let mut pad = [0u8; 16];
    pad[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    pad[4..].copy_from_slice(txid);
    pad
}

/// Decodes an XOR-MAPPED-ADDRESS value.
pub fn read_xor_address(value: &[u8], txid: &[u8; 12]) -> Result<SocketAddr> {
    if value.len() < 4 {
        return Err(WireError::Truncated);
    }
    let port = be::u16_at(value, 2) ^ (MAGIC_COOKIE >> 16) as u16;
    let pad = xor_pad(txid);
    let ip = match (value[1], value.len()) {
        (1, 8) => {
            let mut a = [0u8; 4];
            for (i, b) in a.iter_mut().enumerate() {
                *b = value[4 + i] ^ pad[i];
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        (2, 20) => {
            let mut a = [0u8; 16];
            for (i, b) in a.iter_mut().enumerate() {
                *b = value[4 + i] ^ pad[i];
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
        (1 | 2, _) => return Err(WireError::BadLength),
        _ => return Err(WireError::Malformed),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Encodes an XOR-MAPPED-ADDRESS value into `out`; returns its length (8 or 20).
pub fn write_xor_address(addr: SocketAddr, txid: &[u8; 12], out: &mut [u8]) -> Result<usize> {
    let pad = xor_pad(txid);
    let (family, len) = match addr.ip() {
        IpAddr::V4(_) => (1, 8),
        IpAddr::V6(_) => (2, 20),
    };
    ensure_room(out, len)?;
    out[0] = 0;
    out[1] = family;
    be::put_u16(out, 2, addr.port() ^ (MAGIC_COOKIE >> 16) as u16);
    let octets: &[u8] = match addr.ip() {
        IpAddr::V4(ip) => &ip.octets(),
        IpAddr::V6(ip) => &ip.octets(),
    };
    for (i, b) in octets.iter().enumerate() {
        out[4 + i] = b ^ pad[i];
    }
    Ok(len)
}
