//! UDP datagrams as whole Ethernet frames — what an AF_XDP socket receives
//! and must transmit, with no kernel stack to add or strip headers:
//! Ethernet II (IEEE 802.3), IPv4 (RFC 791) or IPv6 (RFC 8200), UDP
//! (RFC 768), and the Internet checksum (RFC 1071) both need.
//!
//! [`parse`] finds the datagram in a received frame: its addresses, ports
//! and payload. It takes only what the media path should see — an
//! unfragmented UDP datagram over IPv4 (options allowed) or IPv6 (no
//! extension headers) — and refuses the rest with [`WireError::WrongType`],
//! so that a caller can hand such a frame back to the kernel. It does *not*
//! verify the UDP checksum: a frame from a veth peer whose transmit checksum
//! offload is on carries only the pseudo-header's partial sum there
//! (`CHECKSUM_PARTIAL`), which no receiver outside the kernel can check; SRTP
//! and STUN's MESSAGE-INTEGRITY authenticate what matters. The IPv4 header
//! checksum is always complete and is verified.
//!
//! [`write_headers`] writes the headers in front of a payload the caller
//! already placed at [`header_len`], with the IPv4 header checksum and the
//! full UDP checksum (required over IPv6, RFC 8200 §8.1; computed over IPv4
//! too, where 0 would mean "none"): nothing downstream completes it.

use crate::{Result, WireError, be, ensure_room};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Ethernet II header: destination, source, EtherType.
pub const ETH_LEN: usize = 14;
/// IPv4 header without options.
pub const IPV4_LEN: usize = 20;
/// IPv6 fixed header.
pub const IPV6_LEN: usize = 40;
/// UDP header.
pub const UDP_LEN: usize = 8;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const PROTO_UDP: u8 = 17;
/// The TTL / hop limit of what we send (Linux's default).
const HOP_LIMIT: u8 = 64;

/// A MAC address.
pub type Mac = [u8; 6];

/// A UDP datagram found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpFrame<'a> {
    /// The frame's destination MAC (ours).
    pub dst_mac: Mac,
    /// The frame's source MAC (the previous hop's).
    pub src_mac: Mac,
    /// Sender's address and port.
    pub src: SocketAddr,
    /// Our address and port it was sent to.
    pub dst: SocketAddr,
    /// Where the payload starts in the frame.
    pub payload_offset: usize,
    /// The UDP payload (as long as the UDP header says; Ethernet padding
    /// past it is left out).
    pub payload: &'a [u8],
}

/// The datagram in `frame`, or why it is none (see the module's notes).
pub fn parse(frame: &[u8]) -> Result<UdpFrame<'_>> {
    ensure_len(frame, ETH_LEN)?;
    let mut dst_mac = [0u8; 6];
    let mut src_mac = [0u8; 6];
    dst_mac.copy_from_slice(&frame[..6]);
    src_mac.copy_from_slice(&frame[6..12]);
    let ip = &frame[ETH_LEN..];
    let (src_ip, dst_ip, udp_at, udp_len_max) = match be::u16_at(frame, 12) {
        ETHERTYPE_IPV4 => {
            ensure_len(ip, IPV4_LEN)?;
            if ip[0] >> 4 != 4 {
                return Err(WireError::BadVersion);
            }
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(be::u16_at(ip, 2));
            if ihl < IPV4_LEN || total < ihl || ip.len() < total {
                return Err(WireError::BadLength);
            }
            if checksum(&ip[..ihl]) != 0 {
                return Err(WireError::Malformed);
            }
            // more fragments, or a fragment offset: the kernel reassembles
            if be::u16_at(ip, 6) & 0x3fff != 0 {
                return Err(WireError::WrongType);
            }
            if ip[9] != PROTO_UDP {
                return Err(WireError::WrongType);
            }
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            (IpAddr::V4(src), IpAddr::V4(dst), ETH_LEN + ihl, total - ihl)
        }
        ETHERTYPE_IPV6 => {
            ensure_len(ip, IPV6_LEN)?;
            if ip[0] >> 4 != 6 {
                return Err(WireError::BadVersion);
            }
            let payload = usize::from(be::u16_at(ip, 4));
            if ip.len() < IPV6_LEN + payload {
                return Err(WireError::BadLength);
            }
            // extension headers (a fragment header among them) go to the
            // kernel
            if ip[6] != PROTO_UDP {
                return Err(WireError::WrongType);
            }
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&ip[8..24]);
            d.copy_from_slice(&ip[24..40]);
            let (src, dst) = (Ipv6Addr::from(s), Ipv6Addr::from(d));
            (
                IpAddr::V6(src),
                IpAddr::V6(dst),
                ETH_LEN + IPV6_LEN,
                payload,
            )
        }
        _ => return Err(WireError::WrongType),
    };
    let udp = &frame[udp_at..];
    ensure_len(udp, UDP_LEN)?;
    let len = usize::from(be::u16_at(udp, 4));
    if len < UDP_LEN || len > udp_len_max {
        return Err(WireError::BadLength);
    }
    Ok(UdpFrame {
        dst_mac,
        src_mac,
        src: SocketAddr::new(src_ip, be::u16_at(udp, 0)),
        dst: SocketAddr::new(dst_ip, be::u16_at(udp, 2)),
        payload_offset: udp_at + UDP_LEN,
        payload: &udp[UDP_LEN..len],
    })
}

/// Bytes of headers in front of a datagram's payload from `ip`'s family.
pub fn header_len(ip: IpAddr) -> usize {
    match ip {
        IpAddr::V4(_) => ETH_LEN + IPV4_LEN + UDP_LEN,
        IpAddr::V6(_) => ETH_LEN + IPV6_LEN + UDP_LEN,
    }
}

/// The two ends of a datagram to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Our MAC.
    pub src_mac: Mac,
    /// The next hop's MAC.
    pub dst_mac: Mac,
    /// Our address and port.
    pub src: SocketAddr,
    /// The peer's address and port.
    pub dst: SocketAddr,
}

/// Writes the headers of a `payload_len`-byte datagram along `route` into
/// `frame[..header_len]`, the payload being at `frame[header_len..][..payload_len]`
/// already. Returns the frame's length. The two addresses must be of one
/// family ([`WireError::Malformed`] otherwise).
pub fn write_headers(frame: &mut [u8], route: &Route, payload_len: usize) -> Result<usize> {
    let hdr = header_len(route.src.ip());
    ensure_room(frame, hdr + payload_len)?;
    let udp_len = u16::try_from(UDP_LEN + payload_len).map_err(|_| WireError::OutOfRange)?;
    frame[..6].copy_from_slice(&route.dst_mac);
    frame[6..12].copy_from_slice(&route.src_mac);
    let udp_at = hdr - UDP_LEN;
    // the pseudo-header's sum (RFC 768; RFC 8200 §8.1)
    let pseudo = match (route.src.ip(), route.dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            be::put_u16(frame, 12, ETHERTYPE_IPV4);
            let ip = &mut frame[ETH_LEN..udp_at];
            let total = u16::try_from(IPV4_LEN + usize::from(udp_len))
                .map_err(|_| WireError::OutOfRange)?;
            ip[0] = 0x45;
            ip[1] = 0;
            be::put_u16(ip, 2, total);
            be::put_u16(ip, 4, 0); // identification: unfragmented
            be::put_u16(ip, 6, 0x4000); // don't fragment
            ip[8] = HOP_LIMIT;
            ip[9] = PROTO_UDP;
            be::put_u16(ip, 10, 0);
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let c = checksum(ip);
            be::put_u16(ip, 10, c);
            sum(&s.octets()) + sum(&d.octets()) + u32::from(PROTO_UDP) + u32::from(udp_len)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            be::put_u16(frame, 12, ETHERTYPE_IPV6);
            let ip = &mut frame[ETH_LEN..udp_at];
            ip[..4].copy_from_slice(&[0x60, 0, 0, 0]);
            be::put_u16(ip, 4, udp_len);
            ip[6] = PROTO_UDP;
            ip[7] = HOP_LIMIT;
            ip[8..24].copy_from_slice(&s.octets());
            ip[24..40].copy_from_slice(&d.octets());
            sum(&s.octets()) + sum(&d.octets()) + u32::from(PROTO_UDP) + u32::from(udp_len)
        }
        _ => return Err(WireError::Malformed),
    };
    let udp = &mut frame[udp_at..hdr + payload_len];
    be::put_u16(udp, 0, route.src.port());
    be::put_u16(udp, 2, route.dst.port());
    be::put_u16(udp, 4, udp_len);
    be::put_u16(udp, 6, 0);
    let c = fold(pseudo + sum(udp));
    // RFC 768: a computed 0 is sent as all ones (0 means "no checksum")
    be::put_u16(udp, 6, if c == 0 { 0xffff } else { c });
    Ok(hdr + payload_len)
}

/// The Internet checksum of `data` (RFC 1071): the ones' complement of the
/// ones' complement sum of its 16-bit words. Over data that includes a
/// correct checksum it is 0.
pub fn checksum(data: &[u8]) -> u16 {
    fold(sum(data))
}

/// The 16-bit words of `data` added up (an odd last byte padded with zero),
/// carries not yet folded. Fits any datagram: 2^16 words of 2^16 − 1.
fn sum(data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    let mut s: u32 = chunks
        .by_ref()
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        s += u32::from(*last) << 8;
    }
    s
}

/// Folds the carries of a sum into 16 bits and complements it.
fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn ensure_len(buf: &[u8], need: usize) -> Result<()> {
    if buf.len() < need {
        return Err(WireError::Truncated);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_checksum_adds_words_as_rfc_1071_shows() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to 0x2ddf0, folded
        // 0xddf2, whose complement is the checksum
        assert_eq!(checksum(&hex("0001 f203 f4f5 f6f7")), !0xddf2);
        // an odd byte counts as the high half of a last word
        assert_eq!(checksum(&[0x01]), !0x0100);
        // a header with its correct checksum sums to zero: an IPv4 header
        // often used to teach it (192.168.0.1 → 192.168.0.199, UDP,
        // checksum b861)
        let ip = hex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7");
        assert_eq!(checksum(&ip), 0);
        let mut zeroed = ip.clone();
        zeroed[10..12].fill(0);
        assert_eq!(checksum(&zeroed), 0xb861);
    }

    fn route(src: &str, dst: &str) -> Route {
        Route {
            src_mac: [0x02, 0, 0, 0, 0, 1],
            dst_mac: [0x02, 0, 0, 0, 0, 2],
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
        }
    }

    /// A frame of `payload` built along `r`.
    fn built(r: &Route, payload: &[u8]) -> Vec<u8> {
        let hdr = header_len(r.src.ip());
        let mut f = vec![0u8; hdr + payload.len()];
        f[hdr..].copy_from_slice(payload);
        let n = write_headers(&mut f, r, payload.len()).unwrap();
        assert_eq!(n, f.len());
        f
    }

    /// The UDP checksum of `frame` checked as a receiver does: the
    /// pseudo-header, header and payload sum to zero.
    fn udp_checksum_ok(frame: &[u8]) -> bool {
        let p = parse(frame).unwrap();
        let udp = &frame[p.payload_offset - UDP_LEN..p.payload_offset + p.payload.len()];
        let (s, d) = match (p.src.ip(), p.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (s.octets().to_vec(), d.octets().to_vec()),
            (IpAddr::V6(s), IpAddr::V6(d)) => (s.octets().to_vec(), d.octets().to_vec()),
            _ => unreachable!(),
        };
        fold(sum(&s) + sum(&d) + u32::from(PROTO_UDP) + udp.len() as u32 + sum(udp)) == 0
    }

    #[test]
    fn built_frames_parse_back_with_valid_checksums_in_both_families() {
        for (src, dst) in [
            ("192.0.2.1:10000", "198.51.100.7:53211"),
            ("[2001:db8::1]:10000", "[2001:db8:1::7]:53211"),
        ] {
            let r = route(src, dst);
            for len in [0usize, 1, 2, 171, 1200] {
                let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let f = built(&r, &payload);
                let p = parse(&f).unwrap();
                assert_eq!((p.src, p.dst), (r.src, r.dst));
                assert_eq!((p.src_mac, p.dst_mac), (r.src_mac, r.dst_mac));
                assert_eq!(p.payload, &payload[..]);
                assert!(udp_checksum_ok(&f), "{src} {len}");
            }
        }
        // the families must match
        let mut f = vec![0u8; 100];
        let mixed = route("192.0.2.1:1", "[2001:db8::1]:2");
        assert_eq!(write_headers(&mut f, &mixed, 10), Err(WireError::Malformed));
        // too small a buffer
        let r = route("192.0.2.1:1", "192.0.2.2:2");
        assert_eq!(
            write_headers(&mut [0u8; 50], &r, 10),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn what_the_kernel_should_take_is_refused() {
        let r = route("192.0.2.1:10000", "198.51.100.7:5000");
        let good = built(&r, b"hello");
        let refused = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut f = good.clone();
            edit(&mut f);
            parse(&f).unwrap_err()
        };
        // re-checksummed IPv4 header after an edit
        let fix = |f: &mut Vec<u8>| {
            f[ETH_LEN + 10..ETH_LEN + 12].fill(0);
            let c = checksum(&f[ETH_LEN..ETH_LEN + IPV4_LEN]);
            f[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&c.to_be_bytes());
        };
        // ARP, a VLAN tag
        assert_eq!(
            refused(&|f| f[12..14].copy_from_slice(&[0x08, 0x06])),
            WireError::WrongType
        );
        assert_eq!(
            refused(&|f| f[12..14].copy_from_slice(&[0x81, 0x00])),
            WireError::WrongType
        );
        // TCP
        assert_eq!(
            refused(&|f| {
                f[ETH_LEN + 9] = 6;
                fix(f)
            }),
            WireError::WrongType
        );
        // a first fragment (more fragments) and a later one
        for frag in [[0x20, 0x00], [0x00, 0x10]] {
            assert_eq!(
                refused(&|f| {
                    f[ETH_LEN + 6..ETH_LEN + 8].copy_from_slice(&frag);
                    fix(f)
                }),
                WireError::WrongType
            );
        }
        // a wrong IPv4 header checksum, a header length below 20, a total
        // length past the frame, a UDP length past the IP packet
        assert_eq!(refused(&|f| f[ETH_LEN + 10] ^= 1), WireError::Malformed);
        assert_eq!(
            refused(&|f| {
                f[ETH_LEN] = 0x44;
                fix(f)
            }),
            WireError::BadLength
        );
        assert_eq!(
            refused(&|f| {
                f[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&2000u16.to_be_bytes());
                fix(f)
            }),
            WireError::BadLength
        );
        let udp = ETH_LEN + IPV4_LEN;
        assert_eq!(
            refused(&|f| f[udp + 4..udp + 6].copy_from_slice(&100u16.to_be_bytes())),
            WireError::BadLength
        );
        // every cut of the frame is refused, never a panic
        for n in 0..good.len() {
            assert!(parse(&good[..n]).is_err(), "{n}");
        }
        // IPv6 with an extension header (hop-by-hop, fragment)
        let v6 = built(&route("[2001:db8::1]:1", "[2001:db8::2]:2"), b"x");
        for next in [0u8, 44] {
            let mut f = v6.clone();
            f[ETH_LEN + 6] = next;
            assert_eq!(parse(&f).unwrap_err(), WireError::WrongType);
        }
    }

    #[test]
    fn ethernet_padding_and_ipv4_options_are_handled() {
        // a 5-byte datagram in a frame padded to Ethernet's 60-byte minimum
        let r = route("192.0.2.1:10000", "198.51.100.7:5000");
        let mut f = built(&r, b"hello");
        f.resize(60, 0);
        assert_eq!(parse(&f).unwrap().payload, b"hello");
        // an IPv4 header with 4 bytes of options (NOPs + end of list)
        let mut o = f[..ETH_LEN].to_vec();
        let mut ip = f[ETH_LEN..ETH_LEN + IPV4_LEN].to_vec();
        ip[0] = 0x46;
        let total = u16::from_be_bytes([ip[2], ip[3]]) + 4;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[1, 1, 1, 0]);
        ip[10..12].fill(0);
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        o.extend_from_slice(&ip);
        o.extend_from_slice(&f[ETH_LEN + IPV4_LEN..ETH_LEN + IPV4_LEN + UDP_LEN + 5]);
        let p = parse(&o).unwrap();
        assert_eq!(
            (p.payload, p.payload_offset),
            (&b"hello"[..], ETH_LEN + 24 + UDP_LEN)
        );
    }

    // Frames captured on this machine (kernel 6.18) on a veth pair between
    // two network namespaces: 192.0.2.1:10000 (02:00:00:00:00:0a) sent
    // "switchyard over af_xdp" to 192.0.2.2:5004 (02:00:00:00:00:0b), and
    // the same over IPv6 (2001:db8::1 → ::2). With the sender's transmit
    // checksum offload off (`ethtool -K … tx off`) the kernel wrote the
    // full UDP checksum; with it on (veth's default), only the
    // pseudo-header's partial sum.
    const KERNEL_V4: &str =
        "0200 0000 000b 0200 0000 000a 0800 4500 0032 7514 4000 4011 41a3 c000 0201 c000
        0202 2710 138c 001e e6b3 7377 6974 6368 7961 7264 206f 7665 7220 6166 5f78 6470";
    const KERNEL_V6: &str =
        "0200 0000 000b 0200 0000 000a 86dd 6009 1f50 001e 1140 2001 0db8 0000 0000 0000
        0000 0000 0001 2001 0db8 0000 0000 0000 0000 0000 0002 2710 138c 001e 0f43 7377
        6974 6368 7961 7264 206f 7665 7220 6166 5f78 6470";
    const KERNEL_V4_PARTIAL: &str =
        "0200 0000 000b 0200 0000 000a 0800 4500 0032 7820 4000 4011 3e97 c000 0201 c000
        0202 2710 138c 001e 8433 7377 6974 6368 7961 7264 206f 7665 7220 6166 5f78 6470";
    const PAYLOAD: &[u8] = b"switchyard over af_xdp";

    #[test]
    fn frames_the_kernel_sent_parse_and_ours_carry_its_checksums() {
        for (frame, src, dst, udp_checksum) in [
            (KERNEL_V4, "192.0.2.1:10000", "192.0.2.2:5004", 0xe6b3u16),
            (
                KERNEL_V6,
                "[2001:db8::1]:10000",
                "[2001:db8::2]:5004",
                0x0f43,
            ),
        ] {
            let f = hex(frame);
            let p = parse(&f).unwrap();
            assert_eq!(
                (p.src, p.dst, p.payload),
                (src.parse().unwrap(), dst.parse().unwrap(), PAYLOAD)
            );
            assert_eq!(
                (p.src_mac, p.dst_mac),
                ([2, 0, 0, 0, 0, 0x0a], [2, 0, 0, 0, 0, 0x0b])
            );
            assert!(udp_checksum_ok(&f));
            // the same datagram built here carries the kernel's UDP checksum
            // (the IP headers differ in what the checksum does not cover:
            // IPv4 identification, IPv6 flow label)
            let ours = built(
                &Route {
                    src_mac: p.src_mac,
                    dst_mac: p.dst_mac,
                    src: p.src,
                    dst: p.dst,
                },
                PAYLOAD,
            );
            let at = p.payload_offset - 2;
            assert_eq!(
                u16::from_be_bytes([ours[at], ours[at + 1]]),
                udp_checksum,
                "{src}"
            );
            assert_eq!(ours[p.payload_offset..], f[p.payload_offset..]);
        }
        // veth with offload on: the partial sum is there, the datagram is
        // taken all the same (its checksum cannot be checked outside the
        // kernel; SRTP authenticates the payload)
        let partial = hex(KERNEL_V4_PARTIAL);
        assert_eq!(parse(&partial).unwrap().payload, PAYLOAD);
        assert!(!udp_checksum_ok(&partial));
    }
}
