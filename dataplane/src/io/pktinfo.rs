//! Answering from the address a peer reached us at, on a socket bound to a
//! wildcard address (IP_PKTINFO / IPV6_PKTINFO).
//!
//! A host with several addresses that binds `0.0.0.0` or `::` would
//! otherwise send every reply from whatever source the routing table picks
//! for the peer, and a browser that checked one address gets its answers
//! from another: ICE drops them (RFC 8445 §7.2.5.2.1 wants the pair
//! symmetric). So the backends ask the kernel for each datagram's
//! destination address, remember it per peer in [`Sources`] (a fixed table:
//! nothing allocated per packet), and give that address as the source of
//! what they send the peer. A socket bound to one address needs none of it.
//!
//! The memory is per peer address, so a peer that reaches two of our
//! addresses from one port gets each answer from the one it reached last.
//! ICE paces its checks tens of milliseconds apart, and a check is answered
//! within about one, so each check's answer leaves from where it went; were
//! one to leave from the other address, the browser retries the check.

use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;

/// Control-message space for one datagram: `UDP_SEGMENT` (24 bytes) and an
/// `IPV6_PKTINFO` (40) on send; either PKTINFO on receive.
pub const CONTROL_WORDS: usize = 8;

/// Control-message buffer, 8-byte aligned as `cmsghdr` wants.
pub type Control = [u64; CONTROL_WORDS];

/// Asks for each datagram's destination address when `local` is a wildcard
/// address; whether the socket now reports it.
pub fn enable(fd: RawFd, local: SocketAddr) -> bool {
    if !local.ip().is_unspecified() {
        return false;
    }
    let on: libc::c_int = 1;
    let set = |level: libc::c_int, name: libc::c_int| {
        // SAFETY: sets an int option from a local of the stated size.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    };
    match local {
        SocketAddr::V4(_) => set(libc::IPPROTO_IP, libc::IP_PKTINFO),
        // IPv4 peers of a dual-stack socket: IP_PKTINFO as well (either
        // message names the same address)
        SocketAddr::V6(_) => {
            let _ = set(libc::IPPROTO_IP, libc::IP_PKTINFO);
            set(libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
        }
    }
}

/// The control messages of one send: `UDP_SEGMENT` when `segment` is
/// given (a GSO run), the source address when known; their length.
pub fn send_control(
    ctrl: &mut Control,
    segment: Option<u16>,
    source: Option<IpAddr>,
    to: SocketAddr,
) -> usize {
    let mut used = 0;
    if let Some(size) = segment {
        used = push(
            ctrl,
            used,
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            &size.to_ne_bytes(),
        );
    }
    if let Some(src) = source {
        used = push_source(ctrl, used, src, to);
    }
    used
}

/// The destination address in a received datagram's control messages.
pub fn destination(control: &[u8]) -> Option<IpAddr> {
    let mut at = 0;
    let header = size_of::<libc::cmsghdr>();
    while at + header <= control.len() {
        // SAFETY: `header` bytes at `at` are inside `control`; read
        // unaligned, since a received buffer need not be aligned.
        let cmsg: libc::cmsghdr = unsafe {
            control
                .as_ptr()
                .add(at)
                .cast::<libc::cmsghdr>()
                .read_unaligned()
        };
        let len = cmsg.cmsg_len;
        if len < header || at + len > control.len() {
            return None;
        }
        let data = &control[at + header..at + len];
        match (cmsg.cmsg_level, cmsg.cmsg_type) {
            (libc::IPPROTO_IP, libc::IP_PKTINFO) if data.len() >= size_of::<libc::in_pktinfo>() => {
                // in_pktinfo: ifindex (4), spec_dst (4), addr (4): the
                // header's destination is `addr`
                let a: [u8; 4] = data[8..12].try_into().ok()?;
                return Some(IpAddr::V4(Ipv4Addr::from(a)));
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                if data.len() >= size_of::<libc::in6_pktinfo>() =>
            {
                // in6_pktinfo: addr (16), ifindex (4)
                let a: [u8; 16] = data[..16].try_into().ok()?;
                return Some(IpAddr::V6(Ipv6Addr::from(a)).to_canonical());
            }
            _ => {}
        }
        // the next message starts at the next multiple of the word size
        at += len.next_multiple_of(size_of::<usize>());
    }
    None
}

/// Appends a control message to `ctrl` at byte `used`; the new length
/// (unchanged when it does not fit).
pub fn push(ctrl: &mut Control, used: usize, level: i32, kind: i32, data: &[u8]) -> usize {
    // SAFETY: CMSG_SPACE / CMSG_LEN are pure arithmetic.
    let (space, len) = unsafe {
        (
            libc::CMSG_SPACE(data.len() as u32) as usize,
            libc::CMSG_LEN(data.len() as u32) as usize,
        )
    };
    if !used.is_multiple_of(8) || used + space > size_of::<Control>() {
        return used;
    }
    let bytes = ctrl.as_mut_ptr().cast::<u8>();
    // SAFETY: `used + space` bytes fit in `ctrl` (checked), `used` is
    // 8-aligned inside an 8-aligned buffer, so the header is aligned; the
    // payload is written within the message's space.
    unsafe {
        let cmsg = bytes.add(used).cast::<libc::cmsghdr>();
        core::ptr::write_bytes(cmsg.cast::<u8>(), 0, space);
        (*cmsg).cmsg_len = len as _;
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        core::ptr::copy_nonoverlapping(data.as_ptr(), libc::CMSG_DATA(cmsg), data.len());
    }
    used + space
}

/// Appends the control message that sends from `source` to `to`.
pub fn push_source(ctrl: &mut Control, used: usize, source: IpAddr, to: SocketAddr) -> usize {
    let mapped_v4 = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    match (mapped_v4(to.ip()), mapped_v4(source)) {
        // IPv4, also from a dual-stack socket to an IPv4-mapped peer
        (Some(_), Some(src)) => {
            let mut info = [0u8; 12];
            info[4..8].copy_from_slice(&src.octets()); // ipi_spec_dst
            push(ctrl, used, libc::IPPROTO_IP, libc::IP_PKTINFO, &info)
        }
        (None, None) => {
            let IpAddr::V6(src) = source else {
                return used;
            };
            let mut info = [0u8; 20];
            info[..16].copy_from_slice(&src.octets());
            push(ctrl, used, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &info)
        }
        // families differ: let the kernel choose
        _ => used,
    }
}

/// Slots in [`Sources`].
const SLOTS: usize = 1 << 14;

/// The address each peer last reached this socket at: a fixed table, found
/// by hash; a peer whose slot another took gets the routing table's choice
/// until it sends again.
pub struct Sources {
    slots: Box<[Option<(SocketAddr, IpAddr)>]>,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            slots: vec![None; SLOTS].into_boxed_slice(),
        }
    }
}

fn slot_of(peer: SocketAddr) -> usize {
    (crate::addr_hash::addr_hash(peer) as usize) & (SLOTS - 1)
}

impl Sources {
    /// `peer` sent a datagram to `local`.
    #[inline]
    pub fn learn(&mut self, peer: SocketAddr, local: IpAddr) {
        let slot = &mut self.slots[slot_of(peer)];
        if *slot != Some((peer, local)) {
            *slot = Some((peer, local));
        }
    }

    /// Where `peer` last reached us.
    #[inline]
    pub fn source_for(&self, peer: SocketAddr) -> Option<IpAddr> {
        match self.slots[slot_of(peer)] {
            Some((p, local)) if p == peer => Some(local),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_round_trip() {
        let to: SocketAddr = "192.0.2.9:5000".parse().unwrap();
        let mut ctrl: Control = [0; CONTROL_WORDS];
        let used = push(
            &mut ctrl,
            0,
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            &1200u16.to_ne_bytes(),
        );
        let used = push_source(&mut ctrl, used, "10.1.2.3".parse().unwrap(), to);
        assert_eq!(used, 24 + 32);
        // a received IP_PKTINFO names the header's destination in its third
        // field; build one the kernel's way and read it back
        let mut rx: Control = [0; CONTROL_WORDS];
        let mut info = [0u8; 12];
        info[8..12].copy_from_slice(&[10, 1, 2, 3]);
        let n = push(&mut rx, 0, libc::IPPROTO_IP, libc::IP_PKTINFO, &info);
        let bytes: Vec<u8> = rx.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(destination(&bytes[..n]), Some("10.1.2.3".parse().unwrap()));
        let mut info6 = [0u8; 20];
        info6[..16].copy_from_slice(&"::ffff:10.9.9.9".parse::<Ipv6Addr>().unwrap().octets());
        let n = push(&mut rx, 0, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &info6);
        let bytes: Vec<u8> = rx.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(destination(&bytes[..n]), Some("10.9.9.9".parse().unwrap()));
        assert_eq!(destination(&bytes[..10]), None, "truncated");
        assert_eq!(destination(&[0xff; 40]), None, "garbage");
        // no source of the other family
        let v6_to: SocketAddr = "[2001:db8::1]:5".parse().unwrap();
        assert_eq!(
            push_source(&mut ctrl, 0, "10.1.2.3".parse().unwrap(), v6_to),
            0
        );
    }

    #[test]
    fn sources_remember_each_peer() {
        let mut s = Sources::default();
        let (a, b): (SocketAddr, SocketAddr) = (
            "192.0.2.1:1000".parse().unwrap(),
            "192.0.2.1:1001".parse().unwrap(),
        );
        s.learn(a, "10.0.0.1".parse().unwrap());
        s.learn(b, "10.0.0.2".parse().unwrap());
        assert_eq!(s.source_for(a), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(s.source_for(b), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(s.source_for("192.0.2.1:1002".parse().unwrap()), None);
        s.learn(a, "10.0.0.3".parse().unwrap());
        assert_eq!(s.source_for(a), Some("10.0.0.3".parse().unwrap()));
    }
}
