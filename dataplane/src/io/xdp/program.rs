//! The XDP program: media for this dataplane goes to its AF_XDP socket,
//! everything else to the kernel. A frame is media when it is IPv4 without
//! options and unfragmented, or IPv6 whose next header is UDP, its
//! destination address is one the dataplane serves (the `addrs` map, keyed
//! by the address as IPv6, IPv4 mapped: [`addr_key`]) and its UDP
//! destination port is one the dataplane serves on the queue it arrived on
//! (the `ports` map holds the serving queue + 1 per port). ARP,
//! ICMP, TCP (signalling, ICE-TCP), fragments, IPv4 options, IPv6
//! extension headers and other ports pass to the kernel untouched. A media
//! frame on a queue with no socket in the `xsks` map passes too (the
//! helper's fallback), so attaching before the sockets exist loses
//! nothing; so does one that arrived on another queue than its port's
//! socket (the NIC's hashing put it there; the worker's kernel socket
//! serves it). The `stats` map counts frames passed (0) and media (1).

use super::insn::{Asm, Cond, Insn, R0, R1, R2, R3, R4, R5, R6, R10, Reg, Size};

/// `XDP_PASS`.
const XDP_PASS: i32 = 2;
/// Kernel helpers by number (include/uapi/linux/bpf.h).
const MAP_LOOKUP_ELEM: i32 = 1;
const REDIRECT_MAP: i32 = 51;

/// Index in the stats map: frames handed to the kernel.
pub const STAT_PASSED: u32 = 0;
/// Index in the stats map: media frames (redirected, or passed for want of
/// a socket on their queue).
pub const STAT_MEDIA: u32 = 1;

/// The key of `port` in the ports map: the port's two bytes as they sit in
/// the frame, read as a little-endian number (what the program loads).
pub fn port_key(port: u16) -> u32 {
    u32::from(u16::from_le_bytes(port.to_be_bytes()))
}

/// The key of `ip` in the addrs map: its 16 bytes as IPv6, an IPv4 address
/// mapped (`::ffff:a.b.c.d`), as the program builds it from the frame.
pub fn addr_key(ip: std::net::IpAddr) -> [u8; 16] {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(v6) => v6.octets(),
    }
}

/// Where the program builds the addrs key on its stack (16 bytes), and the
/// ports key (4 bytes).
const ADDR_KEY: i16 = -32;
const PORT_KEY: i16 = -4;

/// `stats[index] += 1` (clobbers R0–R5).
fn count(a: &mut Asm, stats: i32, index: u32) {
    let skip = a.label();
    a.mov_imm(R1, index as i32)
        .store(Size::W, R10, -8, R1)
        .mov(R2, R10)
        .add_imm(R2, -8)
        .load_map(R1, stats)
        .call(MAP_LOOKUP_ELEM)
        .jump_imm(Cond::Eq, R0, 0, skip)
        .mov_imm(R1, 1)
        .atomic_add64(R0, 0, R1);
    a.place(skip);
}

/// `if data + len > data_end goto fail` with data in R2, data_end in R3.
fn need(a: &mut Asm, len: i32, fail: super::insn::Label) {
    a.mov(R4, R2)
        .add_imm(R4, len)
        .jump_reg(Cond::Gt, R4, R3, fail);
}

/// The maps the program uses, by fd.
#[derive(Debug, Clone, Copy)]
pub struct Maps {
    /// Served addresses ([`addr_key`] → anything).
    pub addrs: i32,
    /// Served ports ([`port_key`] → serving queue + 1).
    pub ports: i32,
    /// AF_XDP sockets by receive queue.
    pub xsks: i32,
    /// Counters ([`STAT_PASSED`], [`STAT_MEDIA`]).
    pub stats: i32,
}

/// The program.
pub fn filter(maps: Maps) -> Vec<Insn> {
    const CTX: Reg = R6;
    let Maps {
        addrs,
        ports,
        xsks,
        stats,
    } = maps;
    let mut a = Asm::new();
    let (pass, ipv4, ipv6, port) = (a.label(), a.label(), a.label(), a.label());
    a.mov(CTX, R1)
        .load(Size::W, R2, CTX, 0) // data
        .load(Size::W, R3, CTX, 4); // data_end
    need(&mut a, 14, pass);
    a.load(Size::H, R5, R2, 12) // ethertype, as the bytes lie
        .jump_imm(Cond::Eq, R5, 0x0008, ipv4)
        .jump_imm(Cond::Eq, R5, 0xdd86, ipv6)
        .jump(pass);

    a.place(ipv4);
    need(&mut a, 14 + 20 + 8, pass);
    a.load(Size::B, R5, R2, 14) // version 4, header 5 words: no options
        .jump_imm(Cond::Ne, R5, 0x45, pass)
        .load(Size::B, R5, R2, 14 + 9) // protocol
        .jump_imm(Cond::Ne, R5, 17, pass)
        .load(Size::H, R5, R2, 14 + 6) // more-fragments flag and offset
        .and_imm(R5, 0xff3f)
        .jump_imm(Cond::Ne, R5, 0, pass)
        // the destination as ::ffff:a.b.c.d
        .mov_imm(R4, 0)
        .store(Size::DW, R10, ADDR_KEY, R4)
        .mov_imm(R4, u32::from_ne_bytes([0, 0, 0xff, 0xff]) as i32)
        .store(Size::W, R10, ADDR_KEY + 8, R4)
        .load(Size::W, R4, R2, 14 + 16)
        .store(Size::W, R10, ADDR_KEY + 12, R4)
        .load(Size::H, R5, R2, 14 + 20 + 2) // UDP destination port
        .jump(port);

    a.place(ipv6);
    need(&mut a, 14 + 40 + 8, pass);
    a.load(Size::B, R5, R2, 14 + 6) // next header: UDP, no extensions
        .jump_imm(Cond::Ne, R5, 17, pass);
    for word in 0..4 {
        // the destination address, a word at a time
        a.load(Size::W, R4, R2, 14 + 24 + 4 * word)
            .store(Size::W, R10, ADDR_KEY + 4 * word, R4);
    }
    a.load(Size::H, R5, R2, 14 + 40 + 2);

    // from here on only the stack: helper calls clobber R1–R5
    a.place(port);
    a.store(Size::W, R10, PORT_KEY, R5)
        .mov(R2, R10)
        .add_imm(R2, i32::from(ADDR_KEY))
        .load_map(R1, addrs)
        .call(MAP_LOOKUP_ELEM)
        .jump_imm(Cond::Eq, R0, 0, pass) // not an address we serve
        .mov(R2, R10)
        .add_imm(R2, i32::from(PORT_KEY))
        .load_map(R1, ports)
        .call(MAP_LOOKUP_ELEM)
        .jump_imm(Cond::Eq, R0, 0, pass)
        .load(Size::W, R5, R0, 0) // the serving queue + 1, or 0
        .jump_imm(Cond::Eq, R5, 0, pass)
        .load(Size::W, R4, CTX, 16) // rx_queue_index
        .add_imm(R4, 1)
        .jump_reg(Cond::Ne, R5, R4, pass); // another queue's: the kernel's
    count(&mut a, stats, STAT_MEDIA);
    a.load(Size::W, R2, CTX, 16) // rx_queue_index
        .load_map(R1, xsks)
        .mov_imm(R3, XDP_PASS) // no socket on the queue: to the kernel
        .call(REDIRECT_MAP)
        .exit();

    a.place(pass);
    count(&mut a, stats, STAT_PASSED);
    a.mov_imm(R0, XDP_PASS).exit();
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_s_key_is_its_bytes_on_the_wire_read_little_endian() {
        // port 10000 is 0x2710: on the wire 27 10, read as 0x1027
        assert_eq!(port_key(10000), 0x1027);
        assert_eq!(port_key(0x0102), 0x0201);
    }

    #[test]
    fn an_address_s_key_is_its_ipv6_form() {
        let v4: std::net::IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            addr_key(v4),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3]
        );
        let v6: std::net::IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(addr_key(v6)[0], 0xfd);
        assert_eq!(addr_key(v6)[15], 1);
    }

    #[test]
    fn the_program_ends_in_exits_and_every_jump_lands_inside_it() {
        let p = filter(Maps {
            addrs: 2,
            ports: 3,
            xsks: 4,
            stats: 5,
        });
        assert_eq!(p.last().map(|i| i.code), Some(0x95));
        for (i, insn) in p.iter().enumerate() {
            let class = insn.code & 0x07;
            let op = insn.code & 0xf0;
            if class == 0x05 && op != 0x80 && op != 0x90 {
                let to = i as i64 + 1 + i64::from(insn.off);
                assert!((0..p.len() as i64).contains(&to), "jump at {i} to {to}");
            }
        }
    }
}
