//! Little-endian field cursors for the fixed message layouts of the ABI.
//! Reads past the end yield zeros and set a flag, so decoding a short or
//! corrupt message is one check at the end, never a panic.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Bytes of an encoded socket address.
pub const ADDR_LEN: usize = 20;

/// Writes fields into a buffer.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
    overflow: bool,
}

impl<'a> Writer<'a> {
    /// Starts writing at the front of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer {
            buf,
            at: 0,
            overflow: false,
        }
    }
    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        match self.buf.get_mut(self.at..self.at + b.len()) {
            Some(dst) => dst.copy_from_slice(b),
            None => self.overflow = true,
        }
        self.at += b.len();
        self
    }
    /// Appends a `u8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes(&[v])
    }
    /// Appends a `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    /// Appends a `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    /// Appends a `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    /// Appends a socket address: family (4 or 6), 0, port, 16 address bytes.
    pub fn addr(&mut self, a: SocketAddr) -> &mut Self {
        let mut ip = [0u8; 16];
        let family = match a.ip() {
            IpAddr::V4(v4) => {
                ip[..4].copy_from_slice(&v4.octets());
                4
            }
            IpAddr::V6(v6) => {
                ip = v6.octets();
                6
            }
        };
        self.u8(family).u8(0).u16(a.port()).bytes(&ip)
    }
    /// Appends `b` in a field of exactly `n` bytes (zero padded; truncated).
    pub fn fixed(&mut self, b: &[u8], n: usize) -> &mut Self {
        let take = b.len().min(n);
        self.bytes(&b[..take]);
        for _ in take..n {
            self.u8(0);
        }
        self
    }
    /// Bytes written, or `None` if the buffer overflowed.
    pub fn finish(&self) -> Option<usize> {
        (!self.overflow).then_some(self.at)
    }
}

/// Reads fields from a buffer.
pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    short: bool,
}

impl<'a> Reader<'a> {
    /// Starts reading at the front of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            at: 0,
            short: false,
        }
    }
    /// Takes `n` raw bytes (zeros past the end).
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        match self.buf.get(self.at..self.at + N) {
            Some(src) => out.copy_from_slice(src),
            None => self.short = true,
        }
        self.at += N;
        out
    }
    /// Takes the rest of the buffer.
    pub fn rest(&mut self) -> &'a [u8] {
        let r = self.buf.get(self.at..).unwrap_or(&[]);
        self.at = self.buf.len();
        r
    }
    /// Takes a `u8`.
    pub fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    /// Takes a `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }
    /// Takes a `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
    /// Takes a `u64`.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
    /// Takes a socket address; `None` for an unknown family.
    pub fn addr(&mut self) -> Option<SocketAddr> {
        let family = self.u8();
        self.u8();
        let port = self.u16();
        let ip: [u8; 16] = self.bytes();
        match family {
            4 => Some(SocketAddr::new(
                Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).into(),
                port,
            )),
            6 => Some(SocketAddr::new(Ipv6Addr::from(ip).into(), port)),
            _ => None,
        }
    }
    /// True if any read ran past the end.
    pub fn is_short(&self) -> bool {
        self.short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_short_reads_flag() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        let v6: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        w.u8(1)
            .u16(2)
            .u32(3)
            .u64(4)
            .addr("10.0.0.1:9".parse().unwrap())
            .addr(v6);
        let n = w.finish().unwrap();
        assert_eq!(n, 1 + 2 + 4 + 8 + 2 * ADDR_LEN);
        let mut r = Reader::new(&buf[..n]);
        assert_eq!((r.u8(), r.u16(), r.u32(), r.u64()), (1, 2, 3, 4));
        assert_eq!(r.addr(), Some("10.0.0.1:9".parse().unwrap()));
        assert_eq!(r.addr(), Some(v6));
        assert!(!r.is_short());
        assert_eq!(r.u32(), 0);
        assert!(r.is_short());
        assert!(Writer::new(&mut [0u8; 3]).u32(1).finish().is_none());
    }
}
