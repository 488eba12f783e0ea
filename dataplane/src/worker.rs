//! A worker thread: one socket and backend, one engine, its ABI rings, and
//! its ends of the cross-worker queues. The loop: apply commands, send the
//! control plane's datagrams, take packets from other workers, run timers,
//! wait for the socket (or a wake-up), drain a batch through the engine,
//! flush sends, publish counters.

use crate::abi::command::Command;
use crate::abi::continuity::ContinuityWriter;
use crate::abi::counters::{Counter, CounterBlock, DropReason};
use crate::abi::event::{CommandError, Event, PacketHeader};
use crate::abi::layout::{COMMAND_SLOT, PACKET_SLOT};
use crate::abi::server::{WorkerRings, unix_ms};
use crate::abi::table::TableEntry;
use crate::abi::wakeup::ClientWake;
use crate::engine::{CrossMessage, EndpointInfo, Engine, MAX_DATAGRAM, Sink};
use crate::io::wake::Wake;
use crate::io::{PacketIo, Tx};
use crate::log_budget::LogBudget;
use crossbeam_queue::ArrayQueue;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Packet buffers each worker owns for handing packets to other workers.
pub const CROSS_POOL: usize = 2048;
/// An iteration slower than this counts as a stall.
const STALL: Duration = Duration::from_millis(5);
/// How often a worker rewrites its continuity records: a dataplane started
/// after a crash carries on from records at most this old (the control plane
/// adds margins that cover it; docs/abi.md).
pub const CONTINUITY_PERIOD: Duration = Duration::from_millis(100);
/// Longest sleep when idle while the client polls: commands are looked for
/// this often.
const POLLED_SLEEP: Duration = Duration::from_millis(2);
/// Longest sleep when idle while the client takes wake-ups (it wakes the
/// worker for commands; this is only a backstop).
const WOKEN_SLEEP: Duration = Duration::from_millis(250);

/// A packet (or message) travelling between workers, in a pooled box.
pub struct CrossItem {
    msg: Option<CrossMessage>,
    len: usize,
    data: [u8; MAX_DATAGRAM],
}

/// The queues between every pair of workers: `data[from][to]` carries
/// items, `returns[from][to]` brings empty boxes back to `from`. Each queue
/// has one producer and one consumer.
pub struct Mesh {
    data: Vec<Vec<ArrayQueue<Box<CrossItem>>>>,
    returns: Vec<Vec<ArrayQueue<Box<CrossItem>>>>,
    wakes: Vec<Arc<Wake>>,
    /// The client's wake-up registration, which every worker signals.
    client: Arc<ClientWake>,
}

impl Mesh {
    /// Queues for `wakes.len()` workers, who signal `client` when they have
    /// something for it.
    pub fn new(wakes: Vec<Arc<Wake>>, client: Arc<ClientWake>) -> Arc<Mesh> {
        let n = wakes.len();
        let grid = || {
            (0..n)
                .map(|_| (0..n).map(|_| ArrayQueue::new(CROSS_POOL)).collect())
                .collect()
        };
        Arc::new(Mesh {
            data: grid(),
            returns: grid(),
            wakes,
            client,
        })
    }
}

/// Everything the sink writes to, apart from the send side of the socket.
struct Outputs {
    index: usize,
    local_port: u16,
    rings: WorkerRings,
    mesh: Arc<Mesh>,
    // Boxed on purpose: items move between workers as pointers, not 1.5 KB copies.
    #[allow(clippy::vec_box)]
    pool: Vec<Box<CrossItem>>,
    slots: HashMap<u64, usize>,
    free_slots: Vec<usize>,
    events_lost: u64,
    event_buf: [u8; 128],
    packet_buf: Box<[u8; PACKET_SLOT]>,
    continuity: ContinuityWriter,
    continuity_full: LogBudget,
    /// The client's wake-up registration.
    client_wake: Arc<ClientWake>,
    /// Something was pushed for the client in this iteration.
    pushed_up: bool,
}

struct WorkerSink<'a> {
    tx: &'a mut dyn Tx,
    out: &'a mut Outputs,
}

impl Sink for WorkerSink<'_> {
    fn buffer(&mut self) -> Option<&mut [u8]> {
        self.tx.buffer()
    }

    fn commit(&mut self, len: usize, to: SocketAddr) {
        self.tx.commit(len, to);
    }

    fn cross(&mut self, worker: u16, msg: CrossMessage, data: &[u8]) -> bool {
        self.out.cross(worker as usize, msg, data)
    }

    fn exception(&mut self, endpoint: u64, from: SocketAddr, data: &[u8]) -> bool {
        let h = PacketHeader {
            endpoint,
            remote: from,
            local_port: self.out.local_port,
        };
        let pushed = self.out.rings.packets_in.push(0, &[&h.encode(), data]);
        self.out.pushed_up |= pushed;
        pushed
    }

    fn event(&mut self, event: Event) {
        let out = &mut *self.out;
        match event.encode(&mut out.event_buf) {
            Some((kind, n)) if out.rings.events.push(kind, &[&out.event_buf[..n]]) => {
                out.pushed_up = true
            }
            _ => out.events_lost += 1,
        }
    }

    fn endpoint_changed(&mut self, id: u64, info: Option<EndpointInfo>) {
        self.out.table_update(id, info);
    }
}

impl Outputs {
    fn cross(&mut self, to: usize, msg: CrossMessage, data: &[u8]) -> bool {
        if to >= self.mesh.data.len() || to == self.index || data.len() > MAX_DATAGRAM {
            return false;
        }
        if self.pool.is_empty() {
            for from in 0..self.mesh.returns.len() {
                while let Some(b) = self.mesh.returns[self.index][from].pop() {
                    self.pool.push(b);
                }
            }
        }
        let Some(mut item) = self.pool.pop() else {
            return false;
        };
        item.msg = Some(msg);
        item.len = data.len();
        item.data[..data.len()].copy_from_slice(data);
        match self.mesh.data[self.index][to].push(item) {
            Ok(()) => {
                self.mesh.wakes[to].wake();
                true
            }
            Err(item) => {
                self.pool.push(item);
                false
            }
        }
    }

    fn table_update(&mut self, id: u64, info: Option<EndpointInfo>) {
        let table = self.rings.table;
        match info {
            Some(info) => {
                let slot = match self.slots.get(&id) {
                    Some(&s) => s,
                    None => match self.free_slots.pop() {
                        Some(s) => {
                            self.slots.insert(id, s);
                            s
                        }
                        None => return, // table full: the endpoint works, it is just not listed
                    },
                };
                let now = unix_ms();
                let prev = table
                    .read(&self.rings.region, slot)
                    .filter(|e| e.endpoint == id);
                let entry = TableEntry {
                    endpoint: id,
                    worker: self.index as u32,
                    remote: info.remote,
                    created_ms: prev.map_or(now, |p| p.created_ms),
                    last_rx_ms: now,
                    user_data: info.user_data,
                };
                table.write(&self.rings.region, slot, Some(entry));
            }
            None => {
                if let Some(slot) = self.slots.remove(&id) {
                    table.write(&self.rings.region, slot, None);
                    self.free_slots.push(slot);
                }
            }
        }
    }
}

/// One worker.
pub struct Worker {
    engine: Engine,
    io: Box<dyn PacketIo>,
    out: Outputs,
    wake: Arc<Wake>,
    stop: Arc<AtomicBool>,
}

impl Worker {
    /// Assembles a worker.
    pub fn new(
        engine: Engine,
        io: Box<dyn PacketIo>,
        rings: WorkerRings,
        mesh: Arc<Mesh>,
        wake: Arc<Wake>,
        stop: Arc<AtomicBool>,
        local_port: u16,
    ) -> Worker {
        let index = rings.index;
        let client_wake = mesh.client.clone();
        let slots = rings.table.slots_of(index);
        let continuity = rings.continuity;
        Worker {
            engine,
            io,
            out: Outputs {
                index,
                local_port,
                rings,
                mesh,
                pool: (0..CROSS_POOL)
                    .map(|_| {
                        Box::new(CrossItem {
                            msg: None,
                            len: 0,
                            data: [0; MAX_DATAGRAM],
                        })
                    })
                    .collect(),
                slots: HashMap::new(),
                free_slots: slots.rev().collect(),
                events_lost: 0,
                event_buf: [0; 128],
                packet_buf: Box::new([0; PACKET_SLOT]),
                continuity: ContinuityWriter::new(continuity, index),
                continuity_full: LogBudget::per_minute(),
                client_wake,
                pushed_up: false,
            },
            wake,
            stop,
        }
    }

    /// Runs until the stop flag is set.
    pub fn run(mut self) {
        tracing::info!(target: "switchyard::worker", worker = self.out.index, io = self.io.name(), port = self.out.local_port, "worker running");
        let mut next_timer = Instant::now();
        let mut next_touch = Instant::now() + Duration::from_secs(1);
        let mut next_continuity = Instant::now();
        let mut cmd = [0u8; COMMAND_SLOT];
        while !self.stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let mut busy = self.commands(started, &mut cmd);
            if busy {
                // what a command added may have timers sooner than an idle
                // engine's
                next_timer = next_timer.min(self.engine.poll_timeout(started));
            }
            busy |= self.packets_out();
            busy |= self.cross_in(started);
            if started >= next_timer {
                let mut sink = WorkerSink {
                    tx: self.io.tx(),
                    out: &mut self.out,
                };
                self.engine.handle_timeout(started, &mut sink);
                next_timer = self.engine.poll_timeout(started);
            }
            if started >= next_touch {
                self.touch_table(started);
                next_touch = started + Duration::from_secs(1);
            }
            if started >= next_continuity {
                self.write_continuity(started);
                next_continuity = started + CONTINUITY_PERIOD;
            }
            let _ = self.io.flush();
            self.notify_client();
            let timeout = if busy {
                Duration::ZERO
            } else {
                let idle = if self.out.client_wake.registered() {
                    WOKEN_SLEEP
                } else {
                    POLLED_SLEEP
                };
                next_timer
                    .min(next_touch)
                    .min(next_continuity)
                    .saturating_duration_since(started)
                    .min(idle)
            };
            if !timeout.is_zero() {
                self.wake.set_sleeping(true);
            }
            if let Err(e) = self.io.wait(timeout) {
                tracing::warn!(target: "switchyard::worker", error = %e, "wait failed");
            }
            self.wake.set_sleeping(false);
            let now = Instant::now();
            let Worker {
                engine, io, out, ..
            } = &mut self;
            let drained = io.drain(&mut |data, from, tx| {
                let mut sink = WorkerSink { tx, out: &mut *out };
                engine.handle_datagram(now, from, data, &mut sink);
            });
            if let Err(e) = drained {
                tracing::warn!(target: "switchyard::worker", error = %e, "receive failed");
            }
            let _ = self.io.flush();
            self.notify_client();
            let c = self.engine.counters_mut();
            c.add(Counter::Iterations, 1);
            if started.elapsed() > STALL {
                c.add(Counter::Stalls, 1);
            }
            self.publish();
        }
        self.publish();
        tracing::info!(target: "switchyard::worker", worker = self.out.index, "worker stopped");
    }

    /// Wakes the client if this iteration gave it packets or events.
    fn notify_client(&mut self) {
        if std::mem::take(&mut self.out.pushed_up) {
            self.out.client_wake.notify(&self.out.rings.region);
        }
    }

    fn commands(&mut self, now: Instant, buf: &mut [u8; COMMAND_SLOT]) -> bool {
        let mut any = false;
        for _ in 0..64 {
            let (kind, len) = match self.out.rings.commands.pop(buf, true) {
                Ok(x) => x,
                Err(crate::abi::ring::PopError::Empty) => break,
                Err(crate::abi::ring::PopError::Corrupt) => continue,
            };
            if !any {
                self.engine.set_wall_clock(now, unix_ms());
            }
            any = true;
            let decoded = Command::decode(kind, &buf[..len]);
            zeroize::Zeroize::zeroize(&mut buf[..]);
            let mut sink = WorkerSink {
                tx: self.io.tx(),
                out: &mut self.out,
            };
            match decoded {
                Some(cmd) => self.engine.handle_command(now, cmd, &mut sink),
                None => sink.event(Event::CommandFailed {
                    kind,
                    id: 0,
                    error: CommandError::Malformed,
                }),
            }
        }
        any
    }

    fn packets_out(&mut self) -> bool {
        let mut any = false;
        for _ in 0..64 {
            let len = match self
                .out
                .rings
                .packets_out
                .pop(&mut self.out.packet_buf[..], false)
            {
                Ok((_, len)) => len,
                Err(crate::abi::ring::PopError::Empty) => break,
                Err(crate::abi::ring::PopError::Corrupt) => continue,
            };
            any = true;
            let Some((h, data)) = PacketHeader::decode(&self.out.packet_buf[..len]) else {
                continue;
            };
            if data.len() > MAX_DATAGRAM {
                self.engine.counters_mut().drop_packet(DropReason::Oversize);
                continue;
            }
            let tx = self.io.tx();
            if let Some(buf) = tx.buffer() {
                buf[..data.len()].copy_from_slice(data);
                tx.commit(data.len(), h.remote);
                self.engine.counters_mut().add(Counter::ExceptionsOut, 1);
            }
        }
        any
    }

    fn cross_in(&mut self, now: Instant) -> bool {
        let mut any = false;
        let me = self.out.index;
        let mesh = self.out.mesh.clone();
        for from in 0..mesh.data.len() {
            if from == me {
                continue;
            }
            for _ in 0..256 {
                let Some(item) = mesh.data[from][me].pop() else {
                    break;
                };
                any = true;
                if let Some(msg) = item.msg {
                    let mut sink = WorkerSink {
                        tx: self.io.tx(),
                        out: &mut self.out,
                    };
                    self.engine
                        .handle_cross(now, msg, &item.data[..item.len], &mut sink);
                }
                // back to its owner; the return queue has room for every box
                let _ = mesh.returns[from][me].push(item);
            }
        }
        any
    }

    fn touch_table(&mut self, now: Instant) {
        let unix = unix_ms();
        for (id, last) in self.engine.endpoint_activity() {
            if let Some(&slot) = self.out.slots.get(&id) {
                let age = now.saturating_duration_since(last).as_millis() as u64;
                self.out
                    .rings
                    .table
                    .touch(&self.out.rings.region, slot, unix.saturating_sub(age));
            }
        }
    }

    /// Rewrites this worker's continuity records.
    fn write_continuity(&mut self, now: Instant) {
        let out = &mut self.out;
        let lost = out
            .continuity
            .publish(&out.rings.region, self.engine.continuity(now, unix_ms()));
        if lost > 0
            && let Some(suppressed) = out.continuity_full.allow(now)
        {
            tracing::warn!(target: "switchyard::worker", worker = out.index, lost, suppressed, "continuity table full: these streams would restart from scratch after a crash");
        }
    }

    fn publish(&mut self) {
        let stats = self.io.stats();
        let mut block: CounterBlock = self.engine.counters().clone();
        block.values[Counter::TxPackets as usize] = stats.sent;
        block.values[Counter::TxBytes as usize] = stats.sent_bytes;
        block.values[Counter::EventsLost as usize] = self.out.events_lost;
        let base = crate::abi::counters::DROPS_BASE;
        block.values[base + DropReason::SendFailed as usize] = stats.send_failed;
        block.values[base + DropReason::Oversize as usize] += stats.truncated;
        self.out.rings.publish(&block);
    }
}
