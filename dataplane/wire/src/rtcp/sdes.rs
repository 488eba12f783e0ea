//! Source description (RFC 3550 §6.5).
//!
//! ```text
//! header (PT=202, count = chunks)
//! chunk: SSRC | items (type, length, text)… | type 0 | zero padding to 32 bits
//! ```

use super::header::{self, HEADER_LEN, RtcpHeader, packet_type};
use crate::{Result, WireError, be, ensure_room};

/// SDES item types (RFC 3550 §6.5).
pub mod sdes_item {
    /// End of the item list in a chunk.
    pub const END: u8 = 0;
    /// Canonical end-point identifier.
    pub const CNAME: u8 = 1;
    /// User name.
    pub const NAME: u8 = 2;
    /// Tool name.
    pub const TOOL: u8 = 6;
    /// Private extension.
    pub const PRIV: u8 = 8;
}

/// One SDES item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// Item type (non-zero).
    pub kind: u8,
    /// Item text (up to 255 bytes).
    pub text: &'a [u8],
}

/// One chunk of a parsed SDES packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: u32,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// The items of this chunk.
    pub fn items(&self) -> impl Iterator<Item = SdesItem<'a>> + 'a {
        let data = self.items;
        let mut pos = 0;
        core::iter::from_fn(move || {
            let kind = *data.get(pos)?;
            let len = *data.get(pos + 1)? as usize;
            let text = data.get(pos + 2..pos + 2 + len)?;
            pos += 2 + len;
            Some(SdesItem { kind, text })
        })
    }

    /// The CNAME item, if present.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items()
            .find(|i| i.kind == sdes_item::CNAME)
            .map(|i| i.text)
    }
}

/// A view of an SDES packet, checked chunk by chunk.
#[derive(Debug, Clone, Copy)]
pub struct Sdes<'a> {
    body: &'a [u8],
    count: u8,
}

impl<'a> Sdes<'a> {
    /// Checks the packet type and the structure of every chunk.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        let (h, body) = header::body(buf)?;
        if h.packet_type != packet_type::SDES {
            return Err(WireError::WrongType);
        }
        let mut pos = 0;
        for _ in 0..h.count {
            pos = chunk_end(body, pos)?;
        }
        Ok(Sdes {
            body,
            count: h.count,
        })
    }

    /// The chunks.
    pub fn chunks(&self) -> impl Iterator<Item = SdesChunk<'a>> + 'a {
        let body = self.body;
        let mut pos = 0;
        (0..self.count).filter_map(move |_| {
            let end = chunk_end(body, pos).ok()?;
            let chunk = SdesChunk {
                ssrc: be::u32_at(body, pos),
                items: items_of(&body[pos + 4..end]),
            };
            pos = end;
            Some(chunk)
        })
    }
}

/// Returns the (4-aligned) end of the chunk starting at `pos`.
fn chunk_end(body: &[u8], pos: usize) -> Result<usize> {
    if body.len() < pos + 4 {
        return Err(WireError::Truncated);
    }
    let mut at = pos + 4;
    loop {
        match body.get(at) {
            None => return Err(WireError::Truncated),
            Some(0) => {
                let end = (at + 1).next_multiple_of(4);
                return if end <= body.len() {
                    Ok(end)
                } else {
                    Err(WireError::Truncated)
                };
            }
            Some(_) => {
                let len = *body.get(at + 1).ok_or(WireError::Truncated)? as usize;
                at += 2 + len;
            }
        }
    }
}

/// The item bytes of a chunk body, up to (not including) the end marker.
fn items_of(data: &[u8]) -> &[u8] {
    let mut at = 0;
    while let Some(&kind) = data.get(at) {
        if kind == 0 {
            break;
        }
        at += 2 + data.get(at + 1).copied().unwrap_or(0) as usize;
    }
    &data[..at.min(data.len())]
}

/// The chunks of an SDES packet, for building one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SdesRepr<'a> {
    /// (SSRC, items) per chunk; at most 31 chunks.
    pub chunks: &'a [(u32, &'a [SdesItem<'a>])],
}

impl SdesRepr<'_> {
    /// Bytes `emit` writes.
    pub fn len(&self) -> usize {
        HEADER_LEN
            + self
                .chunks
                .iter()
                .map(|(_, items)| {
                    (4 + items.iter().map(|i| 2 + i.text.len()).sum::<usize>() + 1)
                        .next_multiple_of(4)
                })
                .sum::<usize>()
    }
    /// Always false.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Writes the packet; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.len();
        ensure_room(buf, len)?;
        let count = u8::try_from(self.chunks.len()).map_err(|_| WireError::OutOfRange)?;
        RtcpHeader::emit(buf, count, packet_type::SDES, len)?;
        let mut at = HEADER_LEN;
        for (ssrc, items) in self.chunks {
            be::put_u32(buf, at, *ssrc);
            at += 4;
            for item in *items {
                let n = u8::try_from(item.text.len()).map_err(|_| WireError::OutOfRange)?;
                if item.kind == 0 {
                    return Err(WireError::OutOfRange);
                }
                buf[at] = item.kind;
                buf[at + 1] = n;
                buf[at + 2..at + 2 + item.text.len()].copy_from_slice(item.text);
                at += 2 + item.text.len();
            }
            let end = (at + 1).next_multiple_of(4);
            buf[at..end].fill(0);
            at = end;
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cname_round_trip() {
        let items = [SdesItem {
            kind: sdes_item::CNAME,
            text: b"user@host",
        }];
        let tool = [SdesItem {
            kind: sdes_item::TOOL,
            text: b"sw",
        }];
        let chunks = [(0x11u32, &items[..]), (0x22, &tool[..])];
        let mut buf = [0u8; 64];
        let n = SdesRepr { chunks: &chunks }.emit(&mut buf).unwrap();
        assert_eq!(n % 4, 0);
        let s = Sdes::new_checked(&buf[..n]).unwrap();
        let got: Vec<_> = s.chunks().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].cname(), Some(&b"user@host"[..]));
        assert_eq!(got[1].items().collect::<Vec<_>>(), tool);
    }

    #[test]
    fn unterminated_chunk_is_rejected() {
        // header says one chunk, the chunk has an item running past the end
        let buf = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, b'a', b'b'];
        assert_eq!(Sdes::new_checked(&buf).unwrap_err(), WireError::Truncated);
    }
}
