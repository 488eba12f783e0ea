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
///
/// An IPv4-mapped IPv6 address (what a dual-stack IPv6 socket reports for
/// an IPv4 peer) is written as the IPv4 address it is: the peer sent from
/// that, and a mapped address in IPv6 form would look to it like another
/// address of its own (a peer-reflexive candidate of the wrong family).
pub fn write_xor_address(addr: SocketAddr, txid: &[u8; 12], out: &mut [u8]) -> Result<usize> {
    let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_mapped_address_is_written_as_ipv4() {
        let txid = [7u8; 12];
        let v4: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:32853".parse().unwrap();
        let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
        let n = write_xor_address(v4, &txid, &mut a).unwrap();
        assert_eq!(write_xor_address(mapped, &txid, &mut b).unwrap(), 8);
        assert_eq!(a[..n], b[..n]);
        assert_eq!(read_xor_address(&b[..8], &txid).unwrap(), v4);
        // a real IPv6 address stays IPv6
        let v6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        assert_eq!(write_xor_address(v6, &txid, &mut b).unwrap(), 20);
        assert_eq!(read_xor_address(&b, &txid).unwrap(), v6);
    }
}
