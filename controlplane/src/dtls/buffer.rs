//! An in-memory datagram transport for OpenSSL: each `read` hands OpenSSL
//! one whole received datagram, each `write` is one datagram to send.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

/// Datagrams waiting for OpenSSL and datagrams OpenSSL produced.
#[derive(Debug, Default)]
pub struct DatagramBuffer {
    pub incoming: VecDeque<Vec<u8>>,
    pub outgoing: VecDeque<Vec<u8>>,
}

/// Bytes of a DTLS record header (RFC 6347 §4.1).
const RECORD_HEADER: usize = 13;

/// Datagrams held for OpenSSL before the oldest are dropped (a flood of
/// junk must not grow memory).
const MAX_QUEUED: usize = 64;

impl DatagramBuffer {
    /// Queues a received datagram. One shorter than a DTLS record header
    /// cannot be DTLS and is dropped: an empty read would look like
    /// end-of-stream to OpenSSL and end the association.
    pub fn push_incoming(&mut self, datagram: &[u8]) {
        if datagram.len() < RECORD_HEADER {
            return;
        }
        if self.incoming.len() >= MAX_QUEUED {
            self.incoming.pop_front();
        }
        self.incoming.push_back(datagram.to_vec());
    }
}

impl Read for DatagramBuffer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.incoming.pop_front() {
            Some(d) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                Ok(n)
            }
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for DatagramBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.outgoing.len() >= MAX_QUEUED {
            self.outgoing.pop_front();
        }
        self.outgoing.push_back(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
