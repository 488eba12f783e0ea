//! The client side of the ABI: what the control plane, the C ABI and tests
//! use to drive a dataplane.

use super::access;
use super::client_state::ClientState;
use super::command::{Command, SourceSpec, SubscriptionSpec};
use super::continuity::{Continuity, ContinuityTable};
use super::counters::CounterBlock;
use super::event::{Event, PACKET_HEADER, PacketHeader};
use super::layout::{self, Layout, Params, header};
use super::region::{self, Region};
use super::ring::{Consumer, PopError, Producer, Ring};
use super::table::{Table, TableEntry};
use super::wakeup;
use super::{ABI_MAJOR, AbiError, MAGIC};
use core::sync::atomic::Ordering;
use rustix::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;

struct WorkerEnds {
    commands: Producer,
    packets_in: Consumer,
    packets_out: Producer,
    events: Consumer,
    counters_at: usize,
    port: u16,
    /// The worker's eventfd once wake-ups are registered (ABI 1.10).
    wake: Option<OwnedFd>,
    /// Commands or datagrams were pushed since the last [`Client::wake_workers`].
    pushed: bool,
}

/// An attached control client. Only one is current at a time: attaching a
/// new one makes the previous one [`AbiError::Superseded`].
pub struct Client {
    region: Arc<Region>,
    layout: Layout,
    table: Table,
    workers: Vec<WorkerEnds>,
    generation: u64,
    next_event_worker: usize,
    next_packet_worker: usize,
    continuity: ContinuityTable,
    client_state: ClientState,
    socket: UnixStream,
    minor: u16,
}

impl Client {
    /// Connects to a dataplane's control socket and maps its region.
    pub fn connect(path: &Path) -> Result<Client, AbiError> {
        let socket =
            UnixStream::connect(path).map_err(|e| AbiError::Io("connect to control socket", e))?;
        // Whatever answers at the path must be this user's dataplane (or
        // root's): another user who planted a socket there would otherwise
        // receive every key this client installs.
        let uid = access::peer_uid(&socket)?;
        if !access::trusted_uid(uid) {
            return Err(AbiError::UntrustedPeer(uid));
        }
        let mut msg = [0u8; 8];
        let (fd, n) = region::recv_fd(&socket, &mut msg)?;
        if n != 8 {
            return Err(AbiError::BadRegion("bad handover message"));
        }
        access::check_seals(&fd)?;
        let generation = u64::from_le_bytes(msg);
        let region = Arc::new(Region::map(fd)?);
        Client::open(region, generation, socket)
    }

    fn open(region: Arc<Region>, generation: u64, socket: UnixStream) -> Result<Client, AbiError> {
        if region.len() < layout::HEADER_LEN {
            return Err(AbiError::BadRegion("shorter than a header"));
        }
        let mut magic = [0u8; 8];
        region.read(header::MAGIC, &mut magic);
        if magic != MAGIC {
            return Err(AbiError::BadRegion("bad magic"));
        }
        let version = region.u32_at(header::VERSION).load(Ordering::Acquire);
        let (major, minor) = ((version >> 16) as u16, version as u16);
        if major != ABI_MAJOR {
            return Err(AbiError::Version {
                found_major: major,
                found_minor: minor,
            });
        }
        let get = |at| region.u32_at(at).load(Ordering::Acquire);
        let params = Params {
            workers: get(header::WORKERS),
            endpoint_capacity: get(header::ENDPOINT_CAPACITY),
            command_slots: get(header::COMMAND_SLOTS),
            packet_slots: get(header::PACKET_SLOTS),
            event_slots: get(header::EVENT_SLOTS),
            continuity_capacity: if minor >= 3 {
                get(header::CONTINUITY_CAPACITY)
            } else {
                0
            },
            client_state_capacity: if minor >= 3 {
                get(header::CLIENT_STATE_CAPACITY)
            } else {
                0
            },
        };
        let layout = Layout::new(params)?;
        if layout.len > region.len() {
            return Err(AbiError::BadRegion("layout larger than the region"));
        }
        let open = |at, slots, size| {
            Ring::open(&region, at, slots, size).ok_or(AbiError::BadRegion("ring geometry"))
        };
        let mut workers = Vec::new();
        for (i, w) in layout.workers.iter().enumerate() {
            let mut port = [0u8; 2];
            region.read(header::WORKER_PORTS + 2 * i, &mut port);
            workers.push(WorkerEnds {
                commands: Producer::new(open(
                    w.commands,
                    params.command_slots,
                    layout::COMMAND_SLOT,
                )?),
                packets_in: Consumer::new(open(
                    w.packets_in,
                    params.packet_slots,
                    layout::PACKET_SLOT,
                )?),
                packets_out: Producer::new(open(
                    w.packets_out,
                    params.packet_slots,
                    layout::PACKET_SLOT,
                )?),
                events: Consumer::new(open(w.events, params.event_slots, layout::EVENT_SLOT)?),
                counters_at: w.counters,
                port: u16::from_le_bytes(port),
                wake: None,
                pushed: false,
            });
        }
        let table = Table::new(
            layout.table,
            params.endpoint_capacity as usize,
            params.workers as usize,
        );
        let continuity = ContinuityTable::new(
            layout.continuity,
            params.continuity_capacity as usize,
            params.workers as usize,
        );
        let client_state =
            ClientState::new(layout.client_state, params.client_state_capacity as usize);
        Ok(Client {
            client_state,
            continuity,
            region,
            layout,
            table,
            workers,
            generation,
            next_event_worker: 0,
            next_packet_worker: 0,
            socket,
            minor,
        })
    }

    fn current(&self) -> Result<(), AbiError> {
        let now = self
            .region
            .u64_at(header::CLIENT_GENERATION)
            .load(Ordering::Acquire);
        if now == self.generation {
            Ok(())
        } else {
            Err(AbiError::Superseded)
        }
    }

    /// True once another client attached after this one (this one may no
    /// longer write).
    pub fn superseded(&self) -> bool {
        self.current().is_err()
    }

    fn worker(&mut self, w: usize) -> Result<&mut WorkerEnds, AbiError> {
        self.workers.get_mut(w).ok_or(AbiError::NoWorker(w))
    }

    /// Commands sent to worker `w` that it has not taken yet. A worker
    /// applies each command as it takes it and handles packets only between
    /// batches of commands, so once this is 0 every packet that arrives
    /// afterwards meets the commands' effect.
    pub fn pending_commands(&self, w: usize) -> Option<usize> {
        self.workers.get(w).map(|e| e.commands.ring().len())
    }

    /// Waits until every worker has taken every command sent so far, or
    /// `timeout` passes (then false).
    pub fn wait_commands_taken(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if (0..self.workers()).all(|w| self.pending_commands(w) == Some(0)) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// UDP port of a worker's media socket.
    pub fn worker_port(&self, w: usize) -> Option<u16> {
        self.workers.get(w).map(|e| e.port)
    }

    /// The ICE-TCP front's port, if the dataplane runs one (ABI 1.9).
    pub fn ice_tcp_port(&self) -> Option<u16> {
        let port = self
            .region
            .u32_at(layout::header::ICE_TCP_PORT)
            .load(Ordering::Relaxed);
        u16::try_from(port).ok().filter(|&p| p != 0)
    }

    /// A snapshot of the ICE-TCP front's counters (ABI 1.9; zero from an
    /// older dataplane), indexed by `TcpCounter` and
    /// `TCP_CLOSED_BASE + CloseReason`.
    pub fn tcp_counters(&self) -> CounterBlock {
        CounterBlock::load(&self.region, layout::header::TCP_COUNTERS)
    }

    /// The worker whose socket has this port.
    pub fn worker_for_port(&self, port: u16) -> Option<usize> {
        self.workers.iter().position(|e| e.port == port)
    }

    /// The region's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// This client's generation (one per attach).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The dataplane run's random id (changes when the dataplane restarts).
    pub fn boot_id(&self) -> u64 {
        self.region.u64_at(header::BOOT_ID).load(Ordering::Acquire)
    }

    /// The dataplane's last heartbeat, unix ms.
    pub fn heartbeat_ms(&self) -> u64 {
        self.region
            .u64_at(header::HEARTBEAT_MS)
            .load(Ordering::Acquire)
    }

    /// True once the dataplane is shutting down.
    pub fn stopping(&self) -> bool {
        self.region.u64_at(header::STOPPING).load(Ordering::Acquire) != 0
    }

    /// Sends one command to a worker.
    pub fn send(&mut self, worker: usize, cmd: &Command) -> Result<(), AbiError> {
        self.current()?;
        let mut buf = [0u8; layout::COMMAND_SLOT];
        let (kind, n) = cmd.encode(&mut buf).ok_or(AbiError::TooLarge)?;
        let w = self.worker(worker)?;
        let pushed = w.commands.push(kind, &[&buf[..n]]);
        w.pushed |= pushed;
        zeroize::Zeroize::zeroize(&mut buf);
        if pushed { Ok(()) } else { Err(AbiError::Full) }
    }

    /// Adds a source on every worker (the publisher's receives its packets,
    /// the others mirror it for their subscribers).
    pub fn add_source(&mut self, spec: &SourceSpec) -> Result<(), AbiError> {
        for w in 0..self.workers() {
            self.send(w, &Command::AddSource(*spec))?;
        }
        Ok(())
    }

    /// Removes a source from every worker.
    pub fn remove_source(&mut self, source: u64) -> Result<(), AbiError> {
        for w in 0..self.workers() {
            self.send(w, &Command::RemoveSource { source })?;
        }
        Ok(())
    }

    /// Subscribes an endpoint on `subscriber_worker` to a source published
    /// on `source_worker`, wiring the cross-worker fan-out when they differ.
    pub fn subscribe(
        &mut self,
        subscriber_worker: usize,
        source_worker: usize,
        spec: &SubscriptionSpec,
    ) -> Result<(), AbiError> {
        self.send(subscriber_worker, &Command::Subscribe(*spec))?;
        self.fan_out(source_worker, spec.source, subscriber_worker)
    }

    /// Has `source_worker` hand `source`'s packets to `to_worker` as well
    /// (nothing when they are the same worker).
    fn fan_out(
        &mut self,
        source_worker: usize,
        source: u64,
        to_worker: usize,
    ) -> Result<(), AbiError> {
        if to_worker == source_worker {
            return Ok(());
        }
        let worker = u16::try_from(to_worker).map_err(|_| AbiError::NoWorker(to_worker))?;
        self.send(source_worker, &Command::AddFanOut { source, worker })
    }

    /// Undoes [`Client::subscribe`]. The fan-out stays while other
    /// subscribers on that worker may use it; pass `last_on_worker` when
    /// this was the last one.
    pub fn unsubscribe(
        &mut self,
        subscriber_worker: usize,
        source_worker: usize,
        endpoint: u64,
        source: u64,
        last_on_worker: bool,
    ) -> Result<(), AbiError> {
        self.send(
            subscriber_worker,
            &Command::Unsubscribe { endpoint, source },
        )?;
        if subscriber_worker != source_worker && last_on_worker {
            let worker = u16::try_from(subscriber_worker)
                .map_err(|_| AbiError::NoWorker(subscriber_worker))?;
            self.send(source_worker, &Command::RemoveFanOut { source, worker })?;
        }
        Ok(())
    }

    /// Marks (or unmarks) an endpoint id as a relay to another bridge, on
    /// every worker.
    pub fn set_relay(&mut self, endpoint: u64, relay: bool) -> Result<(), AbiError> {
        for w in 0..self.workers() {
            self.send(w, &Command::SetRelay { endpoint, relay })?;
        }
        Ok(())
    }

    /// Relays every layer of a source published on `source_worker` to a
    /// relay endpoint on `relay_worker`, wiring the cross-worker fan-out
    /// when they differ (as [`Client::subscribe`]).
    pub fn relay_source(
        &mut self,
        relay_worker: usize,
        source_worker: usize,
        spec: &super::RelaySpec,
    ) -> Result<(), AbiError> {
        self.send(relay_worker, &Command::RelaySource(*spec))?;
        self.fan_out(source_worker, spec.source, relay_worker)
    }

    /// The next event from any worker (round robin).
    pub fn poll_event(&mut self) -> Option<(usize, Event)> {
        let n = self.workers.len();
        let mut buf = [0u8; layout::EVENT_SLOT];
        for i in 0..n {
            let w = (self.next_event_worker + i) % n;
            loop {
                match self.workers[w].events.pop(&mut buf, false) {
                    Ok((kind, len)) => {
                        if let Some(e) = Event::decode(kind, &buf[..len]) {
                            self.next_event_worker = (w + 1) % n;
                            return Some((w, e));
                        }
                        // unknown kind from a newer minor version: skip
                    }
                    Err(PopError::Corrupt) => continue,
                    Err(PopError::Empty) => break,
                }
            }
        }
        None
    }

    /// The next exception packet (STUN, DTLS, unmatched) from any worker:
    /// its worker, header and length of the datagram copied into `buf`.
    pub fn recv_packet(&mut self, buf: &mut [u8]) -> Option<(usize, PacketHeader, usize)> {
        let n = self.workers.len();
        let mut slot = [0u8; layout::PACKET_SLOT];
        for i in 0..n {
            let w = (self.next_packet_worker + i) % n;
            loop {
                match self.workers[w].packets_in.pop(&mut slot, false) {
                    Ok((_, len)) => {
                        let Some((h, data)) = PacketHeader::decode(&slot[..len]) else {
                            continue;
                        };
                        if data.len() > buf.len() {
                            continue;
                        }
                        buf[..data.len()].copy_from_slice(data);
                        self.next_packet_worker = (w + 1) % n;
                        return Some((w, h, data.len()));
                    }
                    Err(PopError::Corrupt) => continue,
                    Err(PopError::Empty) => break,
                }
            }
        }
        None
    }

    /// Asks a worker to send a datagram from its media socket.
    pub fn send_packet(
        &mut self,
        worker: usize,
        header: &PacketHeader,
        data: &[u8],
    ) -> Result<(), AbiError> {
        self.current()?;
        if PACKET_HEADER + data.len() > layout::PACKET_SLOT - super::ring::SLOT_HEADER {
            return Err(AbiError::TooLarge);
        }
        let h = header.encode();
        let w = self.worker(worker)?;
        if w.packets_out.push(0, &[&h, data]) {
            w.pushed = true;
            Ok(())
        } else {
            Err(AbiError::Full)
        }
    }

    /// A snapshot of a worker's counters.
    pub fn counters(&self, worker: usize) -> Option<CounterBlock> {
        self.workers
            .get(worker)
            .map(|w| CounterBlock::load(&self.region, w.counters_at))
    }

    /// Every endpoint the dataplane holds (e.g. after a re-attach).
    pub fn endpoints(&self) -> Vec<TableEntry> {
        self.table.entries(&self.region)
    }

    /// The continuity records the workers last wrote (ABI 1.3; empty for an
    /// older dataplane). Readable after the dataplane died: the mapping is
    /// this process's.
    pub fn continuity(&self) -> Vec<Continuity> {
        self.continuity.records(&self.region)
    }

    /// Saves the control plane's state in the region (see
    /// [`super::client_state`]); only the current client may.
    pub fn save_state(&self, bytes: &[u8]) -> Result<(), AbiError> {
        self.current()?;
        self.client_state
            .save(&self.region, bytes)
            .map_err(|_| AbiError::TooLarge)
    }

    /// The state the last client saved, if any (ABI 1.3).
    pub fn load_state(&self) -> Option<Vec<u8>> {
        self.client_state.load(&self.region)
    }

    /// Asks the dataplane for wake-ups (ABI 1.10, [`super::wakeup`]): it
    /// signals `fd` (an eventfd of the caller's) when it pushes packets or
    /// events while the client sleeps ([`Client::prepare_sleep`]), and the
    /// client signals its workers ([`Client::wake_workers`]). False from a
    /// dataplane older than 1.10: poll the rings instead.
    pub fn register_wakeups(&mut self, fd: BorrowedFd<'_>) -> Result<bool, AbiError> {
        if self.minor < 10 {
            return Ok(false);
        }
        self.current()?;
        region::send_fds(&self.socket, &[fd], &wakeup::REQUEST)?;
        // a dataplane that hangs must not hang the caller
        let timeout = Some(std::time::Duration::from_secs(2));
        let _ = self.socket.set_read_timeout(timeout);
        let mut msg = [0u8; 8];
        let received = region::recv_fds(&self.socket, &mut msg);
        let _ = self.socket.set_read_timeout(None);
        let (fds, n) = received?;
        let reply = wakeup::Reply::decode(&msg[..n])
            .filter(|r| r.workers as usize == self.workers.len() && fds.len() == self.workers.len())
            .ok_or(AbiError::BadRegion("bad wake-up reply"))?;
        for (w, fd) in self.workers.iter_mut().zip(fds) {
            w.wake = Some(fd);
        }
        tracing::debug!(target: "switchyard::abi", workers = reply.workers, "wake-ups registered");
        Ok(true)
    }

    /// True once [`Client::register_wakeups`] succeeded.
    pub fn wakeups_registered(&self) -> bool {
        self.workers.first().is_some_and(|w| w.wake.is_some())
    }

    /// Wakes every worker that was given commands or datagrams since the
    /// last call (with wake-ups registered, a worker looks at its rings
    /// only when woken or when its own timers fire).
    pub fn wake_workers(&mut self) {
        for w in &mut self.workers {
            if std::mem::take(&mut w.pushed)
                && let Some(fd) = &w.wake
            {
                wakeup::signal(fd);
            }
        }
    }

    /// Before sleeping on the registered eventfd: marks this client
    /// sleeping, then looks at the rings once more. False if something
    /// waits (do not sleep); either way call [`Client::end_sleep`] after.
    pub fn prepare_sleep(&self) -> bool {
        self.region
            .u32_at(header::CLIENT_SLEEPING)
            .store(1, Ordering::SeqCst);
        core::sync::atomic::fence(Ordering::SeqCst);
        self.workers
            .iter()
            .all(|w| w.events.ring().is_empty() && w.packets_in.ring().is_empty())
    }

    /// After sleeping (or deciding not to): workers need not signal.
    pub fn end_sleep(&self) {
        self.region
            .u32_at(header::CLIENT_SLEEPING)
            .store(0, Ordering::SeqCst);
    }

    /// The dataplane's process id (from the header).
    pub fn dataplane_pid(&self) -> u32 {
        self.region
            .u32_at(header::DATAPLANE_PID)
            .load(Ordering::Acquire)
    }

    /// True once the dataplane's end of the control socket is closed: its
    /// process has exited (the socket stays open for as long as it runs).
    pub fn peer_gone(&self) -> bool {
        let mut byte = [0u8; 1];
        match rustix::net::recv(
            &self.socket,
            &mut byte,
            rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT,
        ) {
            Ok((0, _)) => true,
            Ok(_) => false,
            Err(e) => e != rustix::io::Errno::AGAIN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::server::Server;
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn attach_send_receive_and_supersede() {
        let params = Params {
            workers: 2,
            endpoint_capacity: 64,
            command_slots: 16,
            packet_slots: 8,
            event_slots: 16,
            continuity_capacity: 64,
            client_state_capacity: 4096,
        };
        let (server, mut rings) = Server::create(params, &[10000, 10001]).unwrap();
        let dir = std::env::temp_dir().join(format!("swyd-abi-{}", std::process::id()));
        crate::abi::access::prepare_socket_dir(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let accept = |server: &Server| {
            let (s, _) = listener.accept().unwrap();
            server.hand_over(&s).unwrap();
            s
        };
        let p2 = path.clone();
        let t = std::thread::spawn(move || Client::connect(&p2).unwrap());
        let _s1 = accept(&server);
        let mut client = t.join().unwrap();
        assert_eq!(client.workers(), 2);
        assert_eq!(client.worker_port(1), Some(10001));
        assert_eq!(client.worker_for_port(10000), Some(0));

        client
            .send(
                1,
                &Command::RequestKeyframe {
                    source: 5,
                    layer: 2,
                },
            )
            .unwrap();
        let mut buf = [0u8; layout::COMMAND_SLOT];
        let (kind, n) = rings[1].commands.pop(&mut buf, true).unwrap();
        assert!(matches!(
            Command::decode(kind, &buf[..n]),
            Some(Command::RequestKeyframe {
                source: 5,
                layer: 2
            })
        ));

        let (k, n) = Event::LayerSwitched {
            endpoint: 1,
            source: 5,
            layer: 2,
        }
        .encode(&mut buf)
        .unwrap();
        assert!(rings[0].events.push(k, &[&buf[..n]]));
        assert_eq!(
            client.poll_event(),
            Some((
                0,
                Event::LayerSwitched {
                    endpoint: 1,
                    source: 5,
                    layer: 2
                }
            ))
        );
        assert_eq!(client.poll_event(), None);

        let from: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let h = PacketHeader {
            endpoint: 0,
            remote: from,
            local_port: 10001,
        };
        assert!(rings[1].packets_in.push(0, &[&h.encode(), b"\x00\x01stun"]));
        let mut data = [0u8; 1500];
        let (w, got, len) = client.recv_packet(&mut data).unwrap();
        assert_eq!((w, got, &data[..len]), (1, h, &b"\x00\x01stun"[..]));
        client.send_packet(1, &h, b"reply").unwrap();
        let mut slot = [0u8; layout::PACKET_SLOT];
        let (_, n) = rings[1].packets_out.pop(&mut slot, false).unwrap();
        assert_eq!(PacketHeader::decode(&slot[..n]), Some((h, &b"reply"[..])));

        // a second client attaches: the first becomes stale, the second
        // continues on the same rings
        let p3 = path.clone();
        let t = std::thread::spawn(move || Client::connect(&p3).unwrap());
        let _s2 = accept(&server);
        let mut second = t.join().unwrap();
        assert_eq!(
            client
                .send(0, &Command::RemoveSource { source: 1 })
                .unwrap_err()
                .to_string(),
            AbiError::Superseded.to_string()
        );
        second
            .send(0, &Command::RemoveSource { source: 1 })
            .unwrap();
        assert!(rings[0].commands.pop(&mut buf, false).is_ok());
        assert_eq!(second.boot_id(), client.boot_id());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
