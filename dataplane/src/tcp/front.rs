//! The ICE-TCP front: one thread that accepts TCP connections on the host's
//! ICE-TCP port, splits each stream into packets (RFC 4571), and passes
//! each connection's packets to its worker through a UDP socket of its own
//! on the host's loopback (or bind) address. The worker sees an ordinary
//! UDP peer and answers it; the front frames the answers back onto the
//! connection. Nothing on the workers' path changes, and a slow or stuck
//! TCP peer can only fill its own bounded queue.
//!
//! I/O only: the rules live in [`super::conn`] and [`super::route`].

use super::conn::{CloseReason, ConnState, Inbound, Limits, RecvBuffer, SendQueue};
use crate::abi::counters::{COUNTERS, TCP_CLOSED_BASE, TcpCounter};
use crate::abi::layout::header;
use crate::abi::region::Region;
use crate::log_budget::LogBudget;
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const LISTENER: Token = Token(usize::MAX);
/// Reads (TCP) or receives (UDP) per readiness before other connections get
/// a turn; the connection is visited again in the next round.
const ROUND: usize = 16;
/// SO_SNDBUF of each connection (the kernel doubles it for bookkeeping).
const KERNEL_SEND_BUFFER: usize = 64 << 10;
/// How often timers are checked and counters published.
const TICK: Duration = Duration::from_millis(100);

/// Where the front sends and what it is bound by.
#[derive(Debug, Clone)]
pub struct FrontConfig {
    /// Each worker's UDP socket, as the front reaches it.
    pub workers: Vec<SocketAddr>,
    /// The address the front's own UDP sockets bind to (the workers key
    /// their exception budget by this address and port).
    pub local_ip: IpAddr,
    /// Connection bounds.
    pub limits: Limits,
}

/// The counters, counted here and published to the region header.
struct Counts {
    values: [u64; COUNTERS],
    region: Option<Arc<Region>>,
}

impl Counts {
    fn add(&mut self, c: TcpCounter, n: u64) {
        self.values[c as usize] = self.values[c as usize].wrapping_add(n);
    }
    fn closed(&mut self, r: CloseReason) {
        let i = TCP_CLOSED_BASE + r as usize;
        self.values[i] = self.values[i].wrapping_add(1);
    }
    fn publish(&self) {
        if let Some(region) = &self.region {
            for (i, v) in self.values.iter().enumerate() {
                region
                    .u64_at(header::TCP_COUNTERS + 8 * i)
                    .store(*v, Ordering::Relaxed);
            }
        }
    }
}

/// A source whose pending connections are capped together: an IPv4
/// address, or an IPv6 /64 (one host usually has a whole /64).
fn source_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_bits()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_bits()),
            None => v6.to_bits() & !((1u128 << 64) - 1),
        },
    }
}

/// The reason a socket error closes a connection: the peer's reset (a
/// browser closing with data unread) is its close, not our error.
fn closed_by(e: &std::io::Error) -> CloseReason {
    match e.kind() {
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted => {
            CloseReason::PeerClosed
        }
        _ => CloseReason::Error,
    }
}

/// One pending connection of `source` is no longer pending.
fn release(pending: &mut HashMap<u128, usize>, source: u128) {
    if let Some(p) = pending.get_mut(&source) {
        *p = p.saturating_sub(1);
        if *p == 0 {
            pending.remove(&source);
        }
    }
}

struct Conn {
    tcp: TcpStream,
    peer: SocketAddr,
    source: u128,
    udp: Option<UdpSocket>,
    state: ConnState,
    recv: RecvBuffer,
    queue: Option<SendQueue>,
}

/// The front's loop state.
pub struct Front {
    config: FrontConfig,
    poll: Poll,
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    pending_by_source: HashMap<u128, usize>,
    again: Vec<Token>,
    /// This turn's tokens.
    ready: Vec<Token>,
    /// Accepting failed (no descriptors): try again at the next tick.
    accept_later: bool,
    counts: Counts,
    log: LogBudget,
    scratch: Box<[u8]>,
}

impl Front {
    /// A front on `listener`; counters go to `region`'s header when given.
    pub fn new(
        listener: std::net::TcpListener,
        config: FrontConfig,
        region: Option<Arc<Region>>,
    ) -> std::io::Result<Front> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Front {
            scratch: vec![0; crate::io::BUFFER_SIZE].into_boxed_slice(),
            config,
            poll,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            pending_by_source: HashMap::new(),
            again: Vec::new(),
            ready: Vec::new(),
            accept_later: false,
            counts: Counts {
                values: [0; COUNTERS],
                region,
            },
            log: LogBudget::per_minute(),
        })
    }

    /// The listening address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Runs until `stop` is set.
    pub fn run(mut self, stop: &AtomicBool) {
        let mut events = Events::with_capacity(256);
        let mut next_tick = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let timeout = if self.again.is_empty() {
                next_tick.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != ErrorKind::Interrupted
            {
                tracing::error!(target: "switchyard::tcp", error = %e, "polling failed; ICE-TCP stops");
                return;
            }
            let now = Instant::now();
            // (two lists that keep their capacity: nothing allocated per turn)
            let mut ready = std::mem::take(&mut self.ready);
            ready.clear();
            ready.append(&mut self.again);
            ready.extend(events.iter().map(|e| e.token()));
            for &token in &ready {
                self.handle(now, token);
            }
            self.ready = ready;
            if now >= next_tick {
                if std::mem::take(&mut self.accept_later) {
                    self.accept(now);
                }
                self.expire(now);
                self.counts.publish();
                next_tick = now + TICK;
            }
        }
        self.counts.values[TcpCounter::Open as usize] = 0;
        self.counts.publish();
    }

    fn handle(&mut self, now: Instant, token: Token) {
        if token == LISTENER {
            return self.accept(now);
        }
        let (slot, udp) = (token.0 / 2, token.0 % 2 == 1);
        if self.conns.get(slot).is_none_or(|c| c.is_none()) {
            return;
        }
        let result = if udp {
            self.read_worker(now, slot)
        } else {
            self.read_peer(now, slot)
                .and_then(|()| self.flush(now, slot))
        };
        if let Err(reason) = result {
            self.close(now, slot, reason);
        }
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let (mut tcp, peer) = match self.listener.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // out of descriptors or memory: the connections wait in
                    // the backlog until the next tick tries again (at once
                    // would spin)
                    if let Some(n) = self.log.allow(now) {
                        tracing::warn!(target: "switchyard::tcp", error = %e, suppressed = n, "accepting an ICE-TCP connection failed");
                    }
                    self.accept_later = true;
                    return;
                }
            };
            self.counts.add(TcpCounter::Accepted, 1);
            let source = source_of(peer.ip());
            let pending = self.pending_by_source.get(&source).copied().unwrap_or(0);
            let refused = if self.open >= self.config.limits.max_connections {
                Some(CloseReason::ConnectionCap)
            } else if pending >= self.config.limits.max_pending_per_source {
                Some(CloseReason::SourceCap)
            } else {
                None
            };
            if let Some(reason) = refused {
                self.counts.closed(reason);
                self.log_close(now, peer, reason);
                continue;
            }
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            // media: every packet leaves at once, and waits in the kernel
            // no longer than our own queue would hold it (autotuned, the
            // send buffer grows to megabytes: seconds of late media, and a
            // stuck reader found only after them)
            let _ = tcp.set_nodelay(true);
            let _ = socket2::SockRef::from(&tcp).set_send_buffer_size(KERNEL_SEND_BUFFER);
            if self
                .poll
                .registry()
                .register(
                    &mut tcp,
                    Token(slot * 2),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                self.free.push(slot);
                self.counts.closed(CloseReason::Error);
                continue;
            }
            *self.pending_by_source.entry(source).or_insert(0) += 1;
            self.open += 1;
            self.counts.values[TcpCounter::Open as usize] = self.open as u64;
            self.conns[slot] = Some(Conn {
                tcp,
                peer,
                source,
                udp: None,
                state: ConnState::new(now),
                recv: RecvBuffer::new(&self.config.limits),
                queue: None,
            });
        }
    }

    /// Reads what the peer sent and passes whole packets to the worker.
    fn read_peer(&mut self, now: Instant, slot: usize) -> Result<(), CloseReason> {
        for _ in 0..ROUND {
            let Some(conn) = self.conns[slot].as_mut() else {
                return Ok(());
            };
            let n = match conn.tcp.read(conn.recv.spare()) {
                Ok(0) => return Err(CloseReason::PeerClosed),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(closed_by(&e)),
            };
            conn.recv.filled(n);
            conn.state.received(now);
            loop {
                let Some(conn) = self.conns[slot].as_mut() else {
                    return Ok(());
                };
                let Some(packet) = conn.recv.next_packet()? else {
                    break;
                };
                match conn.state.on_packet(packet)? {
                    Inbound::Forward => {}
                    Inbound::Link(worker) => {
                        let Some(&to) = self.config.workers.get(worker) else {
                            return Err(CloseReason::NotIce);
                        };
                        let mut udp = UdpSocket::bind(SocketAddr::new(self.config.local_ip, 0))
                            .and_then(|u| u.connect(to).map(|()| u))
                            .map_err(|_| CloseReason::Error)?;
                        self.poll
                            .registry()
                            .register(&mut udp, Token(slot * 2 + 1), Interest::READABLE)
                            .map_err(|_| CloseReason::Error)?;
                        conn.udp = Some(udp);
                        conn.queue = Some(SendQueue::new(self.config.limits.send_queue));
                        self.counts.add(TcpCounter::Linked, 1);
                    }
                }
                let len = packet.len() as u64;
                let sent = conn.udp.as_ref().is_some_and(|u| u.send(packet).is_ok());
                if sent {
                    self.counts.add(TcpCounter::PacketsIn, 1);
                    self.counts.add(TcpCounter::BytesIn, len);
                } else {
                    self.counts.add(TcpCounter::WorkerRefused, 1);
                }
            }
        }
        self.again.push(Token(slot * 2));
        Ok(())
    }

    /// Takes the worker's packets for the peer into its queue.
    fn read_worker(&mut self, now: Instant, slot: usize) -> Result<(), CloseReason> {
        let mut more = true;
        for _ in 0..ROUND {
            let Some(conn) = self.conns[slot].as_mut() else {
                return Ok(());
            };
            let (Some(udp), Some(queue)) = (conn.udp.as_ref(), conn.queue.as_mut()) else {
                return Ok(());
            };
            let n = match udp.recv(&mut self.scratch) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    more = false;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // e.g. ECONNREFUSED after the worker's port went away
                Err(_) => continue,
            };
            // (a worker's datagram fits its send buffer, and so this one)
            let packet = &self.scratch[..n];
            if conn.state.on_reply(packet) {
                self.counts.add(TcpCounter::Answered, 1);
                release(&mut self.pending_by_source, conn.source);
            }
            if queue.push(packet) {
                self.counts.add(TcpCounter::PacketsOut, 1);
                self.counts.add(TcpCounter::BytesOut, packet.len() as u64);
            } else {
                self.counts.add(TcpCounter::QueueFull, 1);
            }
        }
        if more {
            self.again.push(Token(slot * 2 + 1));
        }
        self.flush(now, slot)
    }

    /// Writes as much of the queue as the peer's socket takes.
    fn flush(&mut self, now: Instant, slot: usize) -> Result<(), CloseReason> {
        let Some(conn) = self.conns[slot].as_mut() else {
            return Ok(());
        };
        let Some(queue) = conn.queue.as_mut() else {
            return Ok(());
        };
        while !queue.is_empty() {
            match conn.tcp.write(queue.front()) {
                Ok(0) => return Err(CloseReason::Error),
                Ok(n) => queue.consume(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(closed_by(&e)),
            }
        }
        conn.state.queue_is(now, queue.is_empty());
        Ok(())
    }

    fn expire(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let expired = self.conns[slot]
                .as_ref()
                .and_then(|c| c.state.expired(now, &self.config.limits));
            if let Some(reason) = expired {
                self.close(now, slot, reason);
            }
        }
    }

    fn close(&mut self, now: Instant, slot: usize, reason: CloseReason) {
        let Some(mut conn) = self.conns[slot].take() else {
            return;
        };
        let registry = self.poll.registry();
        let _ = registry.deregister(&mut conn.tcp);
        if let Some(udp) = conn.udp.as_mut() {
            let _ = registry.deregister(udp);
        }
        if !conn.state.answered() {
            release(&mut self.pending_by_source, conn.source);
        }
        self.free.push(slot);
        self.open -= 1;
        self.counts.values[TcpCounter::Open as usize] = self.open as u64;
        self.counts.closed(reason);
        if reason != CloseReason::PeerClosed {
            self.log_close(now, conn.peer, reason);
        }
    }

    fn log_close(&mut self, now: Instant, peer: SocketAddr, reason: CloseReason) {
        if let Some(suppressed) = self.log.allow(now) {
            tracing::info!(target: "switchyard::tcp", %peer, reason = reason.name(), suppressed, "ICE-TCP connection closed");
        }
    }
}
