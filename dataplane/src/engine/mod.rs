//! The forwarding engine of one worker: a sans-IO state machine.
//!
//! Inputs: [`Engine::handle_command`] (from the control plane),
//! [`Engine::handle_datagram`] (a datagram from the worker's socket, with
//! its source address), [`Engine::handle_cross`] (a message from another
//! worker) and [`Engine::handle_timeout`]; time is always passed in. All
//! outputs go to a caller-provided [`Sink`]: datagrams to send (written
//! into the caller's buffers), messages for other workers, exception
//! packets and events for the control plane. Nothing here touches a socket
//! or a clock, and the per-packet path allocates nothing.
//!
//! Objects: **endpoints** (one ICE/DTLS transport: remote address and SRTP
//! sessions), **sources** (a publisher's track with up to three simulcast
//! layers; mirrored on every worker), **outgoing streams** (a subscriber's
//! view of a source: its own SSRC, continuous numbering across layer
//! switches, a retransmission history). See docs/dataplane.md.

mod continuity;
mod control;
mod exception_budget;
mod history;
mod keyframe;
mod media;
mod missing;
mod relay;
mod resend;
mod rewrite;
mod sink;
mod slab;
mod stats;
mod timers;

pub use rewrite::{Incoming, Rewriter, Rewritten};
pub use sink::{CrossKind, CrossMessage, EndpointInfo, MAX_DATAGRAM, Sink};

use crate::abi::command::{MAX_LAYERS, PAUSED, kind as cmd_kind};
use crate::abi::{
    Command, CommandError, CounterBlock, EndpointSpec, Event, MediaKind, SourceSpec,
    SubscriptionSpec,
};
use crate::bwe::feedback::ReceiveRecorder;
use crate::bwe::{BweConfig, Estimator};
use exception_budget::ExceptionBudget;
use history::{PacketRing, SentLog};
use keyframe::KeyframeThrottle;
use slab::Slab;
use stats::SeqStats;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchyard_srtp::Session;
use switchyard_wire::rtp::ExtensionIds;

/// Engine settings; see `Default` for values.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// This worker's index.
    pub worker: u16,
    /// At most one keyframe request per layer per window (default 500 ms).
    pub keyframe_window: Duration,
    /// Packets kept for retransmission per video source layer, and
    /// recorded per outgoing video stream (default 512).
    pub video_history: usize,
    /// The same for audio (default 128).
    pub audio_history: usize,
    /// Feedback summary events per subscriber (default every 1 s).
    pub feedback_interval: Duration,
    /// Audio level events per source (default every 200 ms).
    pub audio_level_interval: Duration,
    /// Receiver reports to publishers (default every 1 s).
    pub rtcp_interval: Duration,
    /// Report an endpoint idle after this long without packets (default 5 s).
    pub idle_after: Duration,
    /// SSRC the SFU uses as RTCP sender.
    pub rtcp_ssrc: u32,
    /// SRTP session settings.
    pub srtp: switchyard_srtp::Config,
    /// Most endpoints (default 4096).
    pub max_endpoints: usize,
    /// Bandwidth events per subscriber (default every 200 ms).
    pub bandwidth_interval: Duration,
    /// The ICE-TCP front's address: packets from it are charged to the
    /// exception budget by address and port (one budget per TCP
    /// connection), not by address.
    pub tcp_front: Option<std::net::IpAddr>,
    /// Bandwidth estimator settings.
    pub bwe: BweConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            worker: 0,
            keyframe_window: Duration::from_millis(500),
            video_history: 512,
            audio_history: 128,
            feedback_interval: Duration::from_secs(1),
            audio_level_interval: Duration::from_millis(200),
            rtcp_interval: Duration::from_secs(1),
            idle_after: Duration::from_secs(5),
            rtcp_ssrc: 0x5357_5944,
            srtp: switchyard_srtp::Config::default(),
            max_endpoints: 4096,
            bandwidth_interval: Duration::from_millis(200),
            tcp_front: None,
            bwe: BweConfig::default(),
        }
    }
}

/// RTCP feedback gathered from one subscriber between summary events.
#[derive(Debug, Clone, Copy, Default)]
struct FeedbackAcc {
    nacks: u32,
    retransmitted: u32,
    keyframe_requests: u32,
    remb_bps: u64,
    twcc_reported: u32,
    twcc_lost: u32,
    fraction_lost: u8,
    any: bool,
}

struct Endpoint {
    id: u64,
    remote: SocketAddr,
    /// The control plane's bytes for the endpoint table.
    user_data: [u8; 32],
    rx: Session,
    tx: Session,
    ext: ExtensionIds,
    last_rx: Instant,
    idle_reported: bool,
    /// Local sources this endpoint publishes.
    published: Vec<u32>,
    /// Outgoing streams this endpoint receives.
    streams: Vec<u32>,
    /// Next transport-wide sequence number toward this endpoint.
    twcc_seq: u16,
    feedback: FeedbackAcc,
    /// Send-side bandwidth estimate of its path.
    bwe: Estimator,
    /// Bytes sent to it since the last probe tick.
    sent_bytes: u64,
    /// Probe pacing: when it was last topped up, and the byte credit.
    probe_tick: Option<Instant>,
    probe_credit: f64,
    /// What its NACKs may still make us send again.
    resend_budget: resend::Budget,
    /// Arrivals of its packets, for transport-cc feedback to it.
    arrivals: ReceiveRecorder,
    /// A relay to another bridge (`SetRelay`): its traffic is counted apart.
    relay: bool,
}

#[derive(Default)]
struct LayerIn {
    ssrc: u32,
    rtx_ssrc: u32,
    rid: [u8; crate::abi::command::MAX_RID],
    rid_len: u8,
    throttle: KeyframeThrottle,
    stats: SeqStats,
    /// Packets that did not arrive, asked for again until they come.
    missing: missing::Missing,
    /// Last sender report: NTP time, RTP time, when received.
    last_sr: Option<(u64, u32, Instant)>,
    /// A keyframe request waits for the home worker to be known (mirrors).
    pending_keyframe: bool,
    /// When this worker last saw a packet of the layer.
    last_rx: Option<Instant>,
    /// Bytes received on the layer since the last rates event (publisher's
    /// worker only).
    bytes: u64,
    /// Its last packets, for every subscriber's retransmissions: held
    /// while the source has subscribers on this worker.
    ring: Option<PacketRing>,
}

struct Source {
    spec: SourceSpec,
    /// When this worker saw the source's first packet.
    first_rx: Option<Instant>,
    /// The publishing endpoint if it is on this worker.
    publisher: Option<u32>,
    /// The publisher's worker, learned from forwarded packets (mirrors).
    home: Option<u16>,
    layers: [LayerIn; MAX_LAYERS],
    /// Local outgoing streams.
    subscribers: Vec<u32>,
    /// Workers to hand packets to.
    fan_out: Vec<u16>,
    /// Loudest level since the last event (lower is louder), voice flag.
    audio_level: Option<(u8, bool)>,
    /// The publisher's extension ids its last packet came with (a packet
    /// built again from `ring` reads them).
    ext: ExtensionIds,
}

struct OutStream {
    endpoint: u32,
    source: u32,
    spec: SubscriptionSpec,
    current: Option<u8>,
    target: u8,
    rewriter: Rewriter,
    /// How its last packets were made (the packets are in the source's
    /// layer rings).
    history: SentLog,
    rtx_seq: u16,
    packets: u32,
    octets: u32,
    /// Outgoing sequence number of the newest packet in `history`.
    newest: Option<u16>,
    /// A relay stream: pinned to its layer, never switched or paused by
    /// subscriber commands (`RelaySource`).
    relay: bool,
    /// The receiver's keyframe requests for this stream passed on in the
    /// current window, and since when (control.rs).
    keyframe_budget: (u8, Option<Instant>),
}

/// One worker's forwarding state.
pub struct Engine {
    config: EngineConfig,
    exception_budget: ExceptionBudget,
    endpoints: Slab<Endpoint>,
    by_addr: HashMap<SocketAddr, u32>,
    by_id: HashMap<u64, u32>,
    sources: Slab<Source>,
    source_by_id: HashMap<u64, u32>,
    streams: Slab<OutStream>,
    counters: CounterBlock,
    next_feedback: Option<Instant>,
    next_audio: Option<Instant>,
    next_rtcp: Option<Instant>,
    next_idle_check: Option<Instant>,
    next_bandwidth: Option<Instant>,
    next_twcc: Option<Instant>,
    /// When source rates were last reported.
    last_rates: Option<Instant>,
    /// A moment in both clocks (monotonic, unix ms), for continuity
    /// records, which carry wall-clock times across processes.
    wall_clock: (Instant, u64),
    /// Endpoint ids that are relays to other bridges, wherever they live
    /// (`SetRelay` reaches every worker).
    relays: std::collections::HashSet<u64>,
}

/// Housekeeping granularity: timers are checked at least this often.
const TICK: Duration = Duration::from_millis(20);
/// Timer granularity while a probe pads a subscriber's stream.
const PROBE_TICK: Duration = Duration::from_millis(5);
/// With no endpoint and no source nothing is periodic: the timers may wait
/// this long (a command that adds one runs them at once).
const IDLE_TICK: Duration = Duration::from_secs(1);

impl Engine {
    /// An empty engine.
    pub fn new(config: EngineConfig) -> Engine {
        Engine {
            config,
            exception_budget: ExceptionBudget::new(Instant::now(), config.tcp_front),
            endpoints: Slab::default(),
            by_addr: HashMap::new(),
            by_id: HashMap::new(),
            sources: Slab::default(),
            source_by_id: HashMap::new(),
            streams: Slab::default(),
            counters: CounterBlock::default(),
            next_feedback: None,
            next_audio: None,
            next_rtcp: None,
            next_idle_check: None,
            next_bandwidth: None,
            next_twcc: None,
            last_rates: None,
            wall_clock: (Instant::now(), 0),
            relays: std::collections::HashSet::new(),
        }
    }

    /// Tells the engine the unix time (ms) at `now`; the caller refreshes it
    /// before commands that carry wall-clock times (`Resume`).
    pub fn set_wall_clock(&mut self, now: Instant, unix_ms: u64) {
        self.wall_clock = (now, unix_ms);
    }

    /// The worker's counters.
    pub fn counters(&self) -> &CounterBlock {
        &self.counters
    }

    /// Mutable counters (the worker adds I/O counts).
    pub fn counters_mut(&mut self) -> &mut CounterBlock {
        &mut self.counters
    }

    /// Number of endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// (id, last packet) of every endpoint, for the endpoint table.
    pub fn endpoint_activity(&self) -> impl Iterator<Item = (u64, Instant)> + '_ {
        self.endpoints.iter().map(|(_, e)| (e.id, e.last_rx))
    }

    /// When `handle_timeout` should run next.
    pub fn poll_timeout(&self, now: Instant) -> Instant {
        if self.endpoints.is_empty() && self.sources.is_empty() {
            return now + IDLE_TICK;
        }
        // probes are paced in small steps
        let probing = self.endpoints.iter().any(|(_, e)| e.bwe.probing(now));
        now + if probing { PROBE_TICK } else { TICK }
    }

    /// Applies a command from the control plane.
    pub fn handle_command(&mut self, now: Instant, cmd: Command, sink: &mut dyn Sink) {
        self.counters.add(crate::abi::Counter::Commands, 1);
        let (kind, id, result) = match cmd {
            Command::AddEndpoint(spec) => (
                cmd_kind::ADD_ENDPOINT,
                spec.id,
                self.add_endpoint(now, spec, sink),
            ),
            Command::RemoveEndpoint { endpoint } => (
                cmd_kind::REMOVE_ENDPOINT,
                endpoint,
                self.remove_endpoint(endpoint, sink),
            ),
            Command::UpdateRemote { endpoint, remote } => (
                cmd_kind::UPDATE_REMOTE,
                endpoint,
                self.update_remote(endpoint, remote, sink),
            ),
            Command::RotateKeys { endpoint, keys } => {
                let r = self.endpoint_idx(endpoint).and_then(|i| {
                    let (rx, tx) = sessions(&self.config, &keys)?;
                    let e = self
                        .endpoints
                        .get_mut(i)
                        .ok_or(CommandError::UnknownEndpoint)?;
                    e.rx = rx;
                    e.tx = tx;
                    Ok(())
                });
                (cmd_kind::ROTATE_KEYS, endpoint, r)
            }
            Command::AddSource(spec) => (cmd_kind::ADD_SOURCE, spec.id, self.add_source(spec)),
            Command::RemoveSource { source } => {
                (cmd_kind::REMOVE_SOURCE, source, self.remove_source(source))
            }
            Command::Subscribe(spec) => (
                cmd_kind::SUBSCRIBE,
                spec.source,
                self.subscribe(now, spec, sink),
            ),
            Command::Unsubscribe { endpoint, source } => (
                cmd_kind::UNSUBSCRIBE,
                source,
                self.unsubscribe(endpoint, source),
            ),
            Command::SetTargetLayer {
                endpoint,
                source,
                layer,
            } => (
                cmd_kind::SET_TARGET_LAYER,
                source,
                self.set_target(now, endpoint, source, layer, sink),
            ),
            Command::RequestKeyframe { source, layer } => {
                let r = self
                    .source_idx(source)
                    .map(|s| self.request_keyframe(now, s, layer, sink));
                (cmd_kind::REQUEST_KEYFRAME, source, r)
            }
            Command::AddFanOut { source, worker } => {
                let r = self.source_idx(source).map(|s| {
                    if let Some(src) = self.sources.get_mut(s)
                        && !src.fan_out.contains(&worker)
                        && worker != self.config.worker
                    {
                        src.fan_out.push(worker);
                    }
                });
                (cmd_kind::ADD_FAN_OUT, source, r)
            }
            Command::Probe {
                endpoint,
                target_bps,
                duration_ms,
            } => {
                let r = self.endpoint_idx(endpoint).map(|i| {
                    if let Some(ep) = self.endpoints.get_mut(i) {
                        ep.bwe.start_probe(
                            now,
                            target_bps,
                            Duration::from_millis(u64::from(duration_ms)),
                        );
                        ep.probe_tick = Some(now);
                        ep.probe_credit = 0.0;
                        ep.sent_bytes = 0;
                    }
                });
                (cmd_kind::PROBE, endpoint, r)
            }
            Command::RemoveFanOut { source, worker } => {
                let r = self.source_idx(source).map(|s| {
                    if let Some(src) = self.sources.get_mut(s) {
                        src.fan_out.retain(|w| *w != worker);
                    }
                });
                (cmd_kind::REMOVE_FAN_OUT, source, r)
            }
            Command::Resume(record) => (
                cmd_kind::RESUME,
                record.endpoint(),
                self.resume(now, record),
            ),
            Command::SetRelay { endpoint, relay } => (
                cmd_kind::SET_RELAY,
                endpoint,
                self.set_relay(endpoint, relay),
            ),
            Command::RelaySource(spec) => (
                cmd_kind::RELAY_SOURCE,
                spec.source,
                self.relay_source(now, spec, sink),
            ),
            Command::UnrelaySource { endpoint, source } => (
                cmd_kind::UNRELAY_SOURCE,
                source,
                self.unrelay_source(endpoint, source),
            ),
        };
        if let Err(error) = result {
            tracing::debug!(target: "switchyard::engine", kind, id, ?error, "command failed");
            sink.event(Event::CommandFailed { kind, id, error });
        }
    }

    fn endpoint_idx(&self, id: u64) -> Result<u32, CommandError> {
        self.by_id
            .get(&id)
            .copied()
            .ok_or(CommandError::UnknownEndpoint)
    }

    fn source_idx(&self, id: u64) -> Result<u32, CommandError> {
        self.source_by_id
            .get(&id)
            .copied()
            .ok_or(CommandError::UnknownSource)
    }

    fn add_endpoint(
        &mut self,
        now: Instant,
        spec: EndpointSpec,
        sink: &mut dyn Sink,
    ) -> Result<(), CommandError> {
        if let Some(&other) = self.by_addr.get(&spec.remote)
            && self.endpoints.get(other).is_some_and(|e| e.id != spec.id)
        {
            return Err(CommandError::AddressInUse);
        }
        if self.by_id.contains_key(&spec.id) {
            self.remove_endpoint(spec.id, sink)?;
        }
        if self.endpoints.len() >= self.config.max_endpoints {
            return Err(CommandError::Full);
        }
        let (rx, tx) = sessions(&self.config, &spec.keys)?;
        let idx = self.endpoints.insert(Endpoint {
            id: spec.id,
            remote: spec.remote,
            user_data: spec.user_data,
            rx,
            tx,
            ext: spec.ext,
            last_rx: now,
            idle_reported: false,
            published: Vec::with_capacity(4),
            streams: Vec::with_capacity(16),
            twcc_seq: 1,
            feedback: FeedbackAcc::default(),
            bwe: Estimator::new(self.config.bwe),
            sent_bytes: 0,
            probe_tick: None,
            probe_credit: 0.0,
            resend_budget: resend::Budget::default(),
            arrivals: ReceiveRecorder::default(),
            relay: self.relays.contains(&spec.id),
        });
        self.by_id.insert(spec.id, idx);
        self.by_addr.insert(spec.remote, idx);
        // sources announced before their publisher's endpoint attach now
        for (s, src) in self.sources.iter_mut() {
            if src.spec.endpoint == spec.id {
                src.publisher = Some(idx);
                if let Some(e) = self.endpoints.get_mut(idx) {
                    e.published.push(s);
                }
            }
        }
        sink.endpoint_changed(
            spec.id,
            Some(EndpointInfo {
                id: spec.id,
                remote: spec.remote,
                user_data: spec.user_data,
            }),
        );
        tracing::info!(target: "switchyard::engine", endpoint = spec.id, profile = spec.keys.profile.name(), "endpoint added");
        Ok(())
    }

    fn remove_endpoint(&mut self, id: u64, sink: &mut dyn Sink) -> Result<(), CommandError> {
        let idx = self.endpoint_idx(id)?;
        let Some(e) = self.endpoints.remove(idx) else {
            return Err(CommandError::UnknownEndpoint);
        };
        self.by_id.remove(&id);
        if self.by_addr.get(&e.remote) == Some(&idx) {
            self.by_addr.remove(&e.remote);
        }
        for s in e.streams {
            self.drop_stream(s);
        }
        for s in e.published {
            if let Some(src) = self.sources.get_mut(s) {
                src.publisher = None;
            }
        }
        sink.endpoint_changed(id, None);
        tracing::info!(target: "switchyard::engine", endpoint = id, "endpoint removed");
        Ok(())
    }

    fn update_remote(
        &mut self,
        id: u64,
        remote: SocketAddr,
        sink: &mut dyn Sink,
    ) -> Result<(), CommandError> {
        let idx = self.endpoint_idx(id)?;
        if self.by_addr.get(&remote).is_some_and(|&o| o != idx) {
            return Err(CommandError::AddressInUse);
        }
        let e = self
            .endpoints
            .get_mut(idx)
            .ok_or(CommandError::UnknownEndpoint)?;
        let old = std::mem::replace(&mut e.remote, remote);
        let user_data = e.user_data;
        self.by_addr.remove(&old);
        self.by_addr.insert(remote, idx);
        sink.endpoint_changed(
            id,
            Some(EndpointInfo {
                id,
                remote,
                user_data,
            }),
        );
        Ok(())
    }

    fn add_source(&mut self, spec: SourceSpec) -> Result<(), CommandError> {
        if let Ok(old) = self.source_idx(spec.id) {
            self.remove_source_idx(old);
        }
        let publisher = self.by_id.get(&spec.endpoint).copied();
        let mut layers: [LayerIn; MAX_LAYERS] = Default::default();
        for (l, s) in layers.iter_mut().zip(&spec.layers) {
            l.ssrc = s.ssrc;
            l.rtx_ssrc = s.rtx_ssrc;
            l.rid = s.rid;
            l.rid_len = s.rid_len;
        }
        let idx = self.sources.insert(Source {
            spec,
            publisher,
            home: publisher.map(|_| self.config.worker),
            layers,
            subscribers: Vec::with_capacity(16),
            fan_out: Vec::new(),
            audio_level: None,
            first_rx: None,
            ext: ExtensionIds::default(),
        });
        self.source_by_id.insert(spec.id, idx);
        if let Some(p) = publisher.and_then(|p| self.endpoints.get_mut(p)) {
            p.published.push(idx);
        }
        Ok(())
    }

    fn remove_source(&mut self, id: u64) -> Result<(), CommandError> {
        let idx = self.source_idx(id)?;
        self.remove_source_idx(idx);
        Ok(())
    }

    fn remove_source_idx(&mut self, idx: u32) {
        let Some(src) = self.sources.remove(idx) else {
            return;
        };
        self.source_by_id.remove(&src.spec.id);
        for s in src.subscribers {
            if let Some(out) = self.streams.remove(s)
                && let Some(e) = self.endpoints.get_mut(out.endpoint)
            {
                e.streams.retain(|x| *x != s);
            }
        }
        if let Some(p) = src.publisher.and_then(|p| self.endpoints.get_mut(p)) {
            p.published.retain(|x| *x != idx);
        }
    }

    fn subscribe(
        &mut self,
        now: Instant,
        spec: SubscriptionSpec,
        sink: &mut dyn Sink,
    ) -> Result<(), CommandError> {
        let e = self.endpoint_idx(spec.endpoint)?;
        let s = self.source_idx(spec.source)?;
        // a relay takes sources only as relay streams
        if self.relays.contains(&spec.endpoint) {
            return Err(CommandError::RelayLoop);
        }
        let _ = self.unsubscribe(spec.endpoint, spec.source);
        let src = self.sources.get(s).ok_or(CommandError::UnknownSource)?;
        let target = clamp_layer(spec.target_layer, src.spec.layer_count);
        self.open_stream(now, e, s, spec, target, false, sink);
        Ok(())
    }

    /// Starts outgoing stream `spec` of source `s` toward endpoint `e`,
    /// wanting `target` (a relay stream stays on it), and asks for a
    /// keyframe of a video source.
    #[allow(clippy::too_many_arguments)]
    fn open_stream(
        &mut self,
        now: Instant,
        e: u32,
        s: u32,
        spec: SubscriptionSpec,
        target: u8,
        relay: bool,
        sink: &mut dyn Sink,
    ) {
        let Some(src) = self.sources.get_mut(s) else {
            return;
        };
        let video = src.spec.kind == MediaKind::Video;
        let capacity = if video {
            self.config.video_history
        } else {
            self.config.audio_history
        };
        // the first subscriber on this worker: the layers start keeping
        // their packets
        let count = (src.spec.layer_count.max(1) as usize).min(MAX_LAYERS);
        for l in &mut src.layers[..count] {
            l.ring.get_or_insert_with(|| PacketRing::new(capacity));
        }
        let history = SentLog::new(capacity);
        // Start the subscriber's sequence space at a value derived from its SSRC
        // (RFC 3550 recommends a random start; the SSRC already is).
        let first_seq = (spec.ssrc >> 16) as u16 ^ spec.ssrc as u16;
        let out = self.streams.insert(OutStream {
            endpoint: e,
            source: s,
            spec,
            current: None,
            target,
            rewriter: Rewriter::new(src.spec.clock_rate, first_seq),
            history,
            rtx_seq: first_seq ^ 0x5555,
            packets: 0,
            octets: 0,
            newest: None,
            relay,
            keyframe_budget: (0, None),
        });
        if let Some(src) = self.sources.get_mut(s) {
            src.subscribers.push(out);
        }
        if let Some(ep) = self.endpoints.get_mut(e) {
            ep.streams.push(out);
        }
        if video {
            self.request_keyframe(now, s, target, sink);
        }
    }

    fn unsubscribe(&mut self, endpoint: u64, source: u64) -> Result<(), CommandError> {
        let e = self.endpoint_idx(endpoint)?;
        let s = self.source_idx(source)?;
        match self.stream_of(e, s) {
            Some(o) => {
                self.drop_stream(o);
                Ok(())
            }
            None => Err(CommandError::UnknownSource),
        }
    }

    /// Endpoint `e`'s outgoing stream of source `s` (a subscription, not
    /// a relay stream).
    fn stream_of(&self, e: u32, s: u32) -> Option<u32> {
        self.endpoints.get(e).and_then(|ep| {
            ep.streams.iter().copied().find(|&o| {
                self.streams
                    .get(o)
                    .is_some_and(|st| st.source == s && !st.relay)
            })
        })
    }

    fn drop_stream(&mut self, o: u32) {
        let Some(out) = self.streams.remove(o) else {
            return;
        };
        if let Some(src) = self.sources.get_mut(out.source) {
            src.subscribers.retain(|x| *x != o);
            if src.subscribers.is_empty() {
                // nobody left to answer: the rings go
                for l in &mut src.layers {
                    l.ring = None;
                }
            }
        }
        if let Some(e) = self.endpoints.get_mut(out.endpoint) {
            e.streams.retain(|x| *x != o);
        }
    }

    fn set_target(
        &mut self,
        now: Instant,
        endpoint: u64,
        source: u64,
        layer: u8,
        sink: &mut dyn Sink,
    ) -> Result<(), CommandError> {
        let e = self.endpoint_idx(endpoint)?;
        let s = self.source_idx(source)?;
        let count = self.sources.get(s).map_or(1, |src| src.spec.layer_count);
        let layer = clamp_layer(layer, count);
        let o = self.stream_of(e, s).ok_or(CommandError::UnknownSource)?;
        let Some(out) = self.streams.get_mut(o) else {
            return Err(CommandError::UnknownSource);
        };
        if out.target != layer {
            out.target = layer;
            if layer == PAUSED {
                // resuming later waits for a keyframe
                out.current = None;
            } else if out.current != Some(layer) {
                self.request_keyframe(now, s, layer, sink);
            }
        }
        Ok(())
    }
}

/// A requested layer within the source's layers ([`PAUSED`] stays).
fn clamp_layer(layer: u8, count: u8) -> u8 {
    if layer == PAUSED {
        PAUSED
    } else {
        layer.min(count.saturating_sub(1))
    }
}

/// The receive and send sessions of an endpoint's keys.
fn sessions(
    config: &EngineConfig,
    keys: &crate::abi::SrtpKeys,
) -> Result<(Session, Session), CommandError> {
    let rx =
        Session::new(keys.profile, &keys.rx, config.srtp).map_err(|_| CommandError::BadKeys)?;
    let tx =
        Session::new(keys.profile, &keys.tx, config.srtp).map_err(|_| CommandError::BadKeys)?;
    Ok((rx, tx))
}

#[cfg(test)]
mod tests;
