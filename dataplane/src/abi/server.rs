//! The dataplane side: creating and formatting the region, handing it to
//! clients, and each worker's ends of its rings.

use super::access;
use super::continuity::ContinuityTable;
use super::counters::CounterBlock;
use super::layout::{self, Layout, Params, header};
use super::region::{self, Region};
use super::ring::{Consumer, Producer, Ring};
use super::table::Table;
use super::wakeup::{self, ClientWake};
use super::{ABI_MAJOR, ABI_MINOR, AbiError, MAGIC};
use crate::io::wake::Wake;
use crate::log_budget::LogBudget;
use core::sync::atomic::Ordering;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the control socket hands a client that asks for wake-ups, and
/// where its own eventfd goes.
pub struct Wakeups {
    /// Each worker's wake, in worker order.
    pub workers: Vec<Arc<Wake>>,
    /// The current client's registration, which the workers signal.
    pub client: Arc<ClientWake>,
}

/// Waits up to 50 ms for a connection on `listener` or a message (or EOF)
/// on `current`; which of the two are ready.
fn wait_readable(listener: &UnixListener, current: Option<&UnixStream>) -> (bool, bool) {
    use rustix::event::{PollFd, PollFlags, poll};
    // (on the stack: this runs twenty times a second for the process's life)
    let mut fds = [
        PollFd::new(listener, PollFlags::IN),
        PollFd::new(listener, PollFlags::IN),
    ];
    let n = match current {
        Some(c) => {
            fds[1] = PollFd::new(c, PollFlags::IN);
            2
        }
        None => 1,
    };
    let timeout = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    if poll(&mut fds[..n], Some(&timeout)).is_err() {
        return (false, false);
    }
    let ready = |f: &PollFd| !f.revents().is_empty();
    (ready(&fds[0]), n == 2 && ready(&fds[1]))
}

/// The dataplane's handle on its region.
pub struct Server {
    region: Arc<Region>,
    layout: Layout,
}

/// One worker's ends of its rings, counters and table slots.
pub struct WorkerRings {
    /// Worker index.
    pub index: usize,
    /// Commands to apply.
    pub commands: Consumer,
    /// Exception packets for the control plane.
    pub packets_in: Producer,
    /// Datagrams to send for the control plane.
    pub packets_out: Consumer,
    /// Events for the control plane.
    pub events: Producer,
    /// The region (for counters and table).
    pub region: Arc<Region>,
    /// Offset of the counter block.
    pub counters_at: usize,
    /// The endpoint table.
    pub table: Table,
    /// The continuity table.
    pub continuity: ContinuityTable,
}

impl WorkerRings {
    /// Publishes the worker's counters.
    pub fn publish(&self, counters: &CounterBlock) {
        counters.publish(&self.region, self.counters_at);
    }
}

impl Server {
    /// Creates and formats a region; `ports` are the workers' UDP ports.
    pub fn create(params: Params, ports: &[u16]) -> Result<(Server, Vec<WorkerRings>), AbiError> {
        let layout = Layout::new(params)?;
        if ports.len() != params.workers as usize {
            return Err(AbiError::BadParams);
        }
        let region = Arc::new(Region::create(layout.len)?);
        region.write(header::MAGIC, &MAGIC);
        let u32s = [
            (
                header::VERSION,
                u32::from(ABI_MAJOR) << 16 | u32::from(ABI_MINOR),
            ),
            (header::HEADER_LEN, layout::HEADER_LEN as u32),
            (header::WORKERS, params.workers),
            (header::ENDPOINT_CAPACITY, params.endpoint_capacity),
            (header::COMMAND_SLOTS, params.command_slots),
            (header::PACKET_SLOTS, params.packet_slots),
            (header::EVENT_SLOTS, params.event_slots),
            (header::CONTINUITY_CAPACITY, params.continuity_capacity),
            (header::CLIENT_STATE_CAPACITY, params.client_state_capacity),
            (header::DATAPLANE_PID, std::process::id()),
        ];
        for (at, v) in u32s {
            region.u32_at(at).store(v, Ordering::Relaxed);
        }
        region
            .u64_at(header::REGION_LEN)
            .store(layout.len as u64, Ordering::Relaxed);
        let boot_id = {
            use std::hash::{BuildHasher, Hasher};
            // RandomState is seeded from the OS: a random id per run.
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(unix_ms());
            h.finish()
        };
        region
            .u64_at(header::BOOT_ID)
            .store(boot_id, Ordering::Relaxed);
        for (i, p) in ports.iter().enumerate() {
            region.write(header::WORKER_PORTS + 2 * i, &p.to_le_bytes());
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
        let rings = layout
            .workers
            .iter()
            .enumerate()
            .map(|(index, w)| WorkerRings {
                index,
                commands: Consumer::new(Ring::init(
                    &region,
                    w.commands,
                    params.command_slots,
                    layout::COMMAND_SLOT,
                )),
                packets_in: Producer::new(Ring::init(
                    &region,
                    w.packets_in,
                    params.packet_slots,
                    layout::PACKET_SLOT,
                )),
                packets_out: Consumer::new(Ring::init(
                    &region,
                    w.packets_out,
                    params.packet_slots,
                    layout::PACKET_SLOT,
                )),
                events: Producer::new(Ring::init(
                    &region,
                    w.events,
                    params.event_slots,
                    layout::EVENT_SLOT,
                )),
                region: region.clone(),
                counters_at: w.counters,
                table,
                continuity,
            })
            .collect();
        let server = Server { region, layout };
        server.heartbeat();
        Ok((server, rings))
    }

    /// Announces the ICE-TCP front's port in the header (ABI 1.9).
    pub fn set_ice_tcp_port(&self, port: u16) {
        self.region
            .u32_at(header::ICE_TCP_PORT)
            .store(u32::from(port), Ordering::Relaxed);
    }

    /// The region.
    pub fn region(&self) -> &Arc<Region> {
        &self.region
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Refreshes the heartbeat clients watch.
    pub fn heartbeat(&self) {
        self.region
            .u64_at(header::HEARTBEAT_MS)
            .store(unix_ms(), Ordering::Release);
    }

    /// Marks the dataplane as stopping.
    pub fn set_stopping(&self) {
        self.region
            .u64_at(header::STOPPING)
            .store(1, Ordering::Release);
    }

    /// Hands the region to a newly connected client: bumps the client
    /// generation (so a previous client sees it is stale) and sends the
    /// memfd with the generation as the message.
    pub fn hand_over(&self, stream: &UnixStream) -> Result<u64, AbiError> {
        let generation = self
            .region
            .u64_at(header::CLIENT_GENERATION)
            .fetch_add(1, Ordering::AcqRel)
            + 1;
        region::send_fd(stream, self.region.fd(), &generation.to_le_bytes())?;
        Ok(generation)
    }

    /// Listens on `path` (replacing a stale socket file) and hands the region
    /// to each client of this user (or root) that connects, until `stop`
    /// returns true. Keeps the latest client's connection open so it can
    /// notice the dataplane exit, and answers its request for wake-ups
    /// ([`super::wakeup`]) with `wakeups`. The socket's directory must be
    /// private to this user ([`access::prepare_socket_dir`]); clients of
    /// other users are refused and logged (rate-limited), and never
    /// supersede the current one.
    pub fn serve(
        &self,
        path: &Path,
        wakeups: &Wakeups,
        stop: impl Fn() -> bool,
    ) -> Result<(), AbiError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            access::prepare_socket_dir(dir)?;
        }
        let _ = std::fs::remove_file(path);
        let listener =
            UnixListener::bind(path).map_err(|e| AbiError::Io("bind control socket", e))?;
        access::restrict_socket_file(path)?;
        let mut refusals = LogBudget::per_minute();
        listener
            .set_nonblocking(true)
            .map_err(|e| AbiError::Io("control socket nonblocking", e))?;
        let mut current: Option<UnixStream> = None;
        while !stop() {
            self.heartbeat();
            let (new_client, request) = wait_readable(&listener, current.as_ref());
            if request
                && let Some(stream) = &current
                && !self.answer_request(stream, wakeups)
            {
                // closed, or it spoke out of turn: it polls from now on
                wakeups.client.set(None);
                current = None;
            }
            if !new_client {
                continue;
            }
            match listener.accept() {
                Ok((stream, _)) => {
                    match access::peer_uid(&stream) {
                        Ok(uid) if access::trusted_uid(uid) => {}
                        other => {
                            if let Some(suppressed) = refusals.allow(std::time::Instant::now()) {
                                let uid = other.as_ref().ok().copied();
                                tracing::warn!(target: "switchyard::abi", ?uid, suppressed, "control client of another user refused");
                            }
                            continue;
                        }
                    }
                    let _ = stream.set_nonblocking(false);
                    // the new client polls until it asks for wake-ups
                    wakeups.client.set(None);
                    match self.hand_over(&stream) {
                        Ok(generation) => {
                            tracing::info!(target: "switchyard::abi", generation, "control client attached");
                            current = Some(stream);
                        }
                        Err(e) => {
                            tracing::warn!(target: "switchyard::abi", error = %e, "handover failed")
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    tracing::warn!(target: "switchyard::abi", error = %e, "accept failed");
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        drop(current);
        self.set_stopping();
        let _ = std::fs::remove_file(path);
        Ok(())
    }

    /// Reads the current client's message: a wake-up request is answered
    /// with the workers' eventfds. False when the client closed its end or
    /// sent anything else (nothing else is defined).
    fn answer_request(&self, stream: &UnixStream, wakeups: &Wakeups) -> bool {
        let mut msg = [0u8; 16];
        let (mut fds, n) = match region::recv_fds(stream, &mut msg) {
            Ok(got) => got,
            Err(_) => return false,
        };
        if n != wakeup::REQUEST.len() || msg[..n] != wakeup::REQUEST || fds.len() != 1 {
            if n > 0 {
                tracing::warn!(target: "switchyard::abi", bytes = n, descriptors = fds.len(), "control client sent something other than a wake-up request; it is dropped");
            }
            return false;
        }
        let workers: Vec<_> = wakeups.workers.iter().map(|w| w.fd()).collect();
        let reply = wakeup::Reply {
            workers: workers.len() as u32,
        };
        if let Err(e) = region::send_fds(stream, &workers, &reply.encode()) {
            tracing::warn!(target: "switchyard::abi", error = %e, "answering the wake-up request failed");
            return false;
        }
        wakeups.client.set(fds.pop());
        tracing::info!(target: "switchyard::abi", workers = reply.workers, "control client takes wake-ups");
        true
    }
}
