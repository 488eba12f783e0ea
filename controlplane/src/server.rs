//! Wiring: the WebSocket sessions, the hub and the dataplane.
//!
//! The hub is one sans-IO state machine behind a mutex. WebSocket tasks
//! feed it client messages; a pump thread feeds it the dataplane's
//! exception packets, events and time, and carries its outputs out:
//! commands and datagrams to the dataplane, messages to the sessions.
//!
//! What one client can cost is bounded before the hub sees it: connections
//! and joins per address ([`Admission`]), a deadline to join, frames of at
//! most [`MAX_FRAME`] bytes, a bounded outgoing queue per session (a client
//! that does not read is closed with [`CLOSE_NOT_READING`]), and SDP parsed
//! in the session's task, off the hub's lock.

use crate::agent::host::AgentHost;
use crate::auth::TokenPolicy;
use crate::dtls::Certificate;
use crate::focus::bridges::{BridgeInfo, LOCAL};
use crate::hub::ParsedSdp;
use crate::hub::{Hub, HubConfig, Out};
use crate::limits::Limits;
use crate::limits::{Admission, Refusal};
use crate::pump_wake::{PumpPace, PumpWake, until};
use crate::registry::BridgeRecord;
use crate::saved_state::SavedState;
use crate::sdp::Offer;
use crate::sessions::{BYE, CLOSE_NOT_READING, SessionHandle, Sessions, ToSession};
use crate::shard::{Route, Shard, Snapshot};
use crate::signalling::MAX_MESSAGE;
use crate::signalling::{ClientMessage, ErrorCode, ProtocolError, ServerMessage};
use crate::supervisor::Dataplane;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Frames queued for one session at most; a client that lets more pile up
/// is not reading and is closed.
pub const OUT_QUEUE: usize = 256;
/// Largest frame read at all: frames over [`MAX_MESSAGE`] up to this size get
/// `too_large` and the connection is kept; larger ones get `too_large` and
/// close code 1009.
pub const MAX_FRAME: usize = 4 * MAX_MESSAGE;
/// Close code: the client did not join within the join deadline.
pub const CLOSE_JOIN_TIMEOUT: u16 = 4001;
/// Close code: a frame over [`MAX_FRAME`] (the standard "message too big").
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: the server is shutting down (the standard "going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// How long one frame may take to leave before the client counts as not
/// reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the rooms.
pub struct RoomSettings {
    /// Addresses browsers reach the workers at.
    pub advertise: Vec<IpAddr>,
    /// Admission limits.
    pub limits: Limits,
    /// Room tokens.
    pub tokens: TokenPolicy,
    /// Videos forwarded to each receiver at most (`None`: all).
    pub last_n: Option<usize>,
    /// How long a participant whose connection dropped may `resume`.
    pub resume_grace: Duration,
    /// Where new rooms may go.
    pub placement: crate::focus::placement::Rules,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// TURN servers whose credentials go out in `joined` and `resumed`.
    pub turn: Option<crate::turn::Turn>,
}

/// State the WebSocket handlers and the pump share.
pub struct Signalling {
    hub: Mutex<Option<Hub>>,
    /// Told when the pump makes the hub ([`Signalling::hub_ready`]).
    hub_made: tokio::sync::Notify,
    /// The agent of this host's bridge (locked after `hub` when both are).
    local: Mutex<Option<AgentHost>>,
    sessions: Mutex<Sessions>,
    /// Numbers connections, to tell a participant's old one from its new.
    serials: std::sync::atomic::AtomicU64,
    admission: Mutex<Admission>,
    /// Set once the server is shutting down: why.
    draining: Mutex<Option<String>>,
    /// This host's dataplane (`None` on a focus, which has none).
    dataplane: Option<Arc<Dataplane>>,
    /// What the pump sleeps on (the dataplane's, when there is one).
    wake: Arc<PumpWake>,
    /// Remote bridges' links, with a cluster secret.
    cluster: Option<crate::focus::link::Cluster>,
    /// This process as a shard of the cluster (one alone by default).
    shard: Arc<Shard>,
    settings: RoomSettings,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoning only follows a panic elsewhere; the state is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Signalling {
    /// TURN servers and fresh credentials for participant `id` (none
    /// without `--turn-url`).
    fn ice_servers(&self, id: &str) -> Vec<crate::turn::IceServer> {
        self.settings
            .turn
            .iter()
            .map(|t| t.credentials(id, std::time::SystemTime::now()))
            .collect()
    }

    /// Signalling for this host's dataplane (`None` on a focus) and, with
    /// a cluster secret, remote bridges.
    pub fn new(
        dataplane: Option<Arc<Dataplane>>,
        settings: RoomSettings,
        cluster_secret: Option<crate::cluster::auth::Secret>,
        shard: Arc<Shard>,
    ) -> Arc<Signalling> {
        Arc::new(Signalling {
            hub: Mutex::new(None),
            hub_made: tokio::sync::Notify::new(),
            local: Mutex::new(None),
            sessions: Mutex::new(Sessions::new(settings.resume_grace)),
            serials: std::sync::atomic::AtomicU64::new(1),
            admission: Mutex::new(Admission::new(settings.limits)),
            draining: Mutex::new(None),
            wake: dataplane
                .as_ref()
                .map_or_else(Default::default, |d| d.wake.clone()),
            dataplane,
            cluster: cluster_secret.map(crate::focus::link::Cluster::new),
            shard,
            settings,
        })
    }

    /// The cluster links, if this process takes remote bridges.
    pub fn cluster(&self) -> Option<&crate::focus::link::Cluster> {
        self.cluster.as_ref()
    }

    /// The stress at which placement stops choosing a bridge.
    pub fn stress_threshold(&self) -> f64 {
        self.settings.placement.stress_threshold
    }

    /// This process as a shard.
    pub fn shard(&self) -> &Arc<Shard> {
        &self.shard
    }

    /// What the shard's refresh writes to the registry: the rooms open
    /// here and the bridges whose links are up.
    pub fn shard_snapshot(&self) -> Snapshot {
        let hub = lock(&self.hub);
        let Some(h) = hub.as_ref() else {
            return Snapshot {
                rooms: Vec::new(),
                participants: 0,
                bridges: Vec::new(),
            };
        };
        let shard = self.shard.id();
        Snapshot {
            rooms: h.room_names(),
            participants: h.counts().1 as u64,
            bridges: h
                .bridges()
                .iter()
                .filter(|b| b.is_linked())
                .map(|b| BridgeRecord {
                    // every shard has a bridge called `local`
                    id: if b.info.id == LOCAL {
                        format!("{shard}.{LOCAL}")
                    } else {
                        b.info.id.clone()
                    },
                    shard: shard.to_string(),
                    region: b.info.region.clone(),
                    stress: b.health.stress,
                    // (a bridge shared with other shards counts theirs too)
                    participants: b
                        .health
                        .endpoints
                        .unwrap_or(h.counts_on(&b.info.id).1 as u64),
                    available: b.health.dataplane_up && !b.health.draining,
                })
                .collect(),
        }
    }

    /// Waits up to `within` for the hub (made by the pump once the
    /// dataplane is attached and the saved rooms are carried on, at once on
    /// a focus); false if it is still not there.
    pub async fn hub_ready(&self, within: Duration) -> bool {
        let made = async {
            loop {
                // registered before the look, so a hub made in between
                // still wakes it
                let told = self.hub_made.notified();
                if lock(&self.hub).is_some() {
                    return;
                }
                told.await;
            }
        };
        tokio::time::timeout(within, made).await.is_ok()
    }

    /// Runs `f` on the hub, once there is one, and wakes the pump to carry
    /// out what it changed.
    pub fn with_hub<R>(&self, f: impl FnOnce(&mut Hub) -> R) -> Option<R> {
        let _wake = self.wake.on_drop();
        lock(&self.hub).as_mut().map(f)
    }

    /// The bridges as `GET /bridges` lists them.
    pub fn bridges_json(&self) -> serde_json::Value {
        let now = Instant::now();
        let list: Vec<serde_json::Value> = lock(&self.hub).as_ref().map_or_else(Vec::new, |h| {
            h.bridges()
                .iter()
                .map(|b| {
                    let (rooms, participants) = h.counts_on(&b.info.id);
                    serde_json::json!({
                        "id": b.info.id,
                        "region": b.info.region,
                        "version": b.info.version,
                        "workers": b.info.worker_ports.len(),
                        "ports": b.info.worker_ports,
                        "advertise": b.info.advertise,
                        "stress": b.health.stress,
                        "draining": b.health.draining,
                        "healthy": b.health.dataplane_up,
                        "heard_ms_ago": now.saturating_duration_since(b.heard).as_millis() as u64,
                        "rooms": rooms,
                        "participants": participants,
                    })
                })
                .collect()
        });
        serde_json::json!({ "bridges": list })
    }

    /// `/stats`' `relays`: the focus's relays between bridges (cascading),
    /// each end with its estimate of the link.
    pub fn relays_json(&self) -> serde_json::Value {
        let relays = lock(&self.hub).as_ref().map(|h| h.relays());
        serde_json::to_value(relays.unwrap_or_default()).unwrap_or_default()
    }

    fn hub_config(&self) -> HubConfig {
        HubConfig {
            limits: self.settings.limits,
            tokens: self.settings.tokens.clone(),
            placement: self.settings.placement,
            last_n: self.settings.last_n,
            // never an id of an earlier run (unless it handed out more
            // than one a millisecond)
            first_id: crate::hub::first_id_now(),
        }
    }

    /// Rooms and participants.
    pub fn counts(&self) -> (usize, usize) {
        lock(&self.hub).as_ref().map_or((0, 0), Hub::counts)
    }

    /// Starts draining: no new joins (`draining`), and every participant is
    /// told the call ends within `within`.
    pub fn begin_drain(&self, reason: &str, within: Duration) {
        *lock(&self.draining) = Some(reason.to_string());
        let msg = ServerMessage::GoingAway {
            v: crate::signalling::VERSION,
            reason: reason.to_string(),
            within_s: within.as_secs(),
        }
        .to_json();
        let gone = {
            let mut sessions = lock(&self.sessions);
            for h in sessions.attached() {
                h.deliver(ToSession::Frame(msg.clone()));
            }
            sessions.drop_detached()
        };
        // participants waiting for a `resume` cannot have one any more
        if let Some(hub) = lock(&self.hub).as_mut() {
            for id in gone {
                hub.disconnect(id);
            }
        }
        self.wake.notify();
        tracing::info!(target: "switchyard::server", reason, within_s = within.as_secs(), "draining");
    }

    /// Why the server is draining, once it is.
    pub fn draining(&self) -> Option<String> {
        lock(&self.draining).clone()
    }

    /// Ends every session with close code 1001.
    pub fn close_all(&self) {
        for h in lock(&self.sessions).attached() {
            h.deliver(ToSession::Close(CLOSE_GOING_AWAY, "server shutting down"));
        }
    }

    /// The state remote parties can make the control plane keep, for
    /// `/stats`: connections, client addresses tracked, transport addresses
    /// learned from checks, per-source entries.
    pub fn bounded_state(&self) -> serde_json::Value {
        let (connections, addresses) = lock(&self.admission).counts();
        let detached = lock(&self.sessions).detached();
        let per_source = lock(&self.hub)
            .as_ref()
            .map_or(0, |h| h.per_source_entries());
        let learned = lock(&self.local)
            .as_ref()
            .map_or(0, |a| a.agent().learned_addresses());
        serde_json::json!({
            "connections": connections,
            "client_addresses": addresses,
            "learned_addresses": learned,
            "per_source_entries": per_source,
            "detached": detached,
        })
    }

    /// The hub and this host's agent, once the dataplane is attached:
    /// carried on from the state a control plane before this one saved in
    /// the dataplane's region (its participants then wait for their
    /// `resume`), or new ones.
    fn start(&self, now: Instant, dataplane: &Dataplane) -> Option<(Hub, AgentHost)> {
        let (worker_ports, ice_tcp_port, saved) = dataplane.with_client(|c| {
            let ports: Vec<u16> = (0..c.workers()).filter_map(|w| c.worker_port(w)).collect();
            (ports, c.ice_tcp_port(), c.load_state())
        })?;
        let config = self.hub_config();
        let restored = saved.filter(|b| !b.is_empty()).and_then(|bytes| {
            let restored = SavedState::parse(&bytes).and_then(|s| {
                let host = AgentHost::restore(s.agent, now)?;
                let hub = s.hub.map(|h| Hub::restore(config.clone(), h));
                Ok((hub, host))
            });
            restored
                .map_err(|e| tracing::error!(target: "switchyard::server", error = %e, "the saved state cannot be carried on; starting afresh (the running calls end)"))
                .ok()
        });
        let (hub, host) = match restored {
            Some((hub, host)) => (hub.unwrap_or_else(|| Hub::new(config.clone())), host),
            None => match Certificate::generate() {
                Ok(cert) => (Hub::new(config), AgentHost::new(cert)),
                Err(e) => {
                    tracing::error!(target: "switchyard::server", error = %e, "no DTLS certificate");
                    return None;
                }
            },
        };
        let mut hub = hub;
        hub.bridge_up(
            now,
            BridgeInfo {
                id: LOCAL.to_string(),
                region: None,
                version: env!("CARGO_PKG_VERSION").to_string(),
                worker_ports,
                advertise: self.settings.advertise.clone(),
                ice_tcp_port,
                fingerprint: host.agent().fingerprint(),
            },
        );
        let carried = host.agent().endpoints().into_iter().collect();
        let kept = hub.keep_carried(LOCAL, &carried);
        let mut sessions = lock(&self.sessions);
        for id in kept {
            sessions.waiting(id, now);
        }
        Some((hub, host))
    }

    /// Runs the pump until `stop`: creates the hub (and this host's agent
    /// once its dataplane is attached), then moves packets, events, time
    /// and messages between them, to remote bridges' outboxes and to the
    /// sessions.
    pub fn pump(self: &Arc<Self>, stop: &AtomicBool) {
        let mut backlog = false;
        let mut timer = None;
        let mut pace = PumpPace::default();
        while !stop.load(Ordering::Relaxed) {
            if let Some(max) = pace.next(backlog, timer) {
                match &self.dataplane {
                    Some(dp) => dp.sleep(max),
                    None => self.wake.wait(max),
                }
            }
            let now = Instant::now();
            let mut hub_guard = lock(&self.hub);
            let mut local_guard = lock(&self.local);
            if hub_guard.is_none() {
                match &self.dataplane {
                    Some(dp) => {
                        if let Some((hub, host)) = self.start(now, dp) {
                            *hub_guard = Some(hub);
                            *local_guard = Some(host);
                        }
                    }
                    None => *hub_guard = Some(Hub::new(self.hub_config())),
                }
                if hub_guard.is_some() {
                    self.hub_made.notify_waiters();
                }
            }
            let Some(hub) = hub_guard.as_mut() else {
                continue;
            };
            let mut outs = Vec::new();
            match (&self.dataplane, local_guard.as_mut()) {
                (Some(dp), Some(host)) => {
                    dp.with_client(|client| {
                        host.take_in(now, client, dp);
                        hub.handle_timeout(now);
                        self.exchange(now, hub, Some((host, client)), &mut outs);
                        host.flush(now, client, Some(hub));
                        backlog = host.backlog();
                        timer = until(now, host.poll_timeout(now));
                    });
                }
                _ => {
                    hub.handle_timeout(now);
                    self.exchange(now, hub, None, &mut outs);
                }
            }
            drop(local_guard);
            drop(hub_guard);
            let mut sessions = lock(&self.sessions);
            for o in outs {
                match o {
                    Out::Signal {
                        participant,
                        mut msg,
                    } => {
                        if let ServerMessage::Joined {
                            ice_servers, id, ..
                        } = &mut msg
                        {
                            *ice_servers = self.ice_servers(id);
                        }
                        sessions.deliver(participant, msg.to_json())
                    }
                    Out::Close { participant } => sessions.close(participant),
                    Out::Agent { .. } | Out::BridgeGone { .. } => {}
                }
            }
            // participants that dropped and did not resume in time leave
            let gone = sessions.expired(now);
            drop(sessions);
            if !gone.is_empty()
                && let Some(hub) = lock(&self.hub).as_mut()
            {
                for id in gone {
                    tracing::info!(target: "switchyard::server", participant = id, "not resumed in time");
                    hub.disconnect(id);
                }
            }
        }
    }

    /// Moves messages between the hub and the bridges until neither has
    /// more for the other: to this host's agent directly, to remote ones
    /// through their outboxes. What is for the sessions lands in `outs`.
    fn exchange(
        &self,
        now: Instant,
        hub: &mut Hub,
        mut local: Option<(&mut AgentHost, &mut switchyard_dataplane::abi::Client)>,
        outs: &mut Vec<Out>,
    ) {
        loop {
            let mut moved = false;
            if let Some((host, _)) = local.as_mut() {
                while let Some(msg) = host.poll_up() {
                    hub.from_agent(now, LOCAL, msg);
                    moved = true;
                }
            }
            while let Some(o) = hub.poll() {
                moved = true;
                match o {
                    Out::Agent { bridge, msg } => match local.as_mut() {
                        Some((host, client)) if bridge == LOCAL => host.handle(now, msg, client),
                        _ => {
                            let sent = self
                                .cluster
                                .as_ref()
                                .is_some_and(|c| c.links.send(&bridge, msg));
                            if !sent {
                                tracing::debug!(target: "switchyard::server", bridge, "message for a bridge that is not here");
                            }
                        }
                    },
                    Out::BridgeGone { bridge } => {
                        if let Some(c) = &self.cluster {
                            c.links.forget(&bridge);
                        }
                    }
                    other => outs.push(other),
                }
            }
            if !moved {
                return;
            }
        }
    }
}

/// The query of the signalling URL: `/ws?room=R` names the room the
/// connection will join, so that a proxy can route it to the room's shard.
#[derive(Debug, Default, serde::Deserialize)]
pub struct WsQuery {
    /// The room the `join` must name.
    room: Option<String>,
}

/// `GET /ws`: one participant's signalling connection. Refused with 429
/// (this address has too many connections) or 503 (the server has) before
/// the upgrade.
pub async fn ws_handler(
    ws: WebSocketUpgrade,
    State(s): State<Arc<Signalling>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::extract::Query(query): axum::extract::Query<WsQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    let url_room = query.room;
    let ip = client_address(peer.ip(), &headers, &s.settings.trusted_proxies);
    if let Err(refusal) = lock(&s.admission).connect(ip, Instant::now()) {
        let status = match refusal {
            Refusal::Address(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Server(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        return (status, refusal.to_string()).into_response();
    }
    let permit = Permit { s: s.clone(), ip };
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| session(socket, s, permit, url_room))
}

/// The client's address: the peer's, or — when the peer is a trusted
/// proxy — the last address in `X-Forwarded-For` (the one that proxy
/// added; earlier ones are the client's word, and not trusted).
pub fn client_address(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or(peer)
}

/// One admitted connection; frees its place when dropped.
struct Permit {
    s: Arc<Signalling>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        lock(&self.s.admission).disconnect(self.ip);
    }
}

/// Sends queued frames until the queue ends or the session is killed.
async fn write_frames(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<ToSession>,
    mut kill: tokio::sync::watch::Receiver<Option<u16>>,
) {
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        let next = tokio::select! {
            m = rx.recv() => m,
            _ = kill.changed() => None,
        };
        let frame = match next {
            Some(ToSession::Frame(text)) => Message::Text(text.into()),
            Some(ToSession::Close(code, reason)) => close(code, reason),
            None => {
                let reason = match *kill.borrow() {
                    Some(CLOSE_JOIN_TIMEOUT) => Some(close(CLOSE_JOIN_TIMEOUT, "join first")),
                    Some(CLOSE_NOT_READING) => Some(close(CLOSE_NOT_READING, "not reading")),
                    _ => None,
                };
                if let Some(frame) = reason {
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(frame)).await;
                }
                break;
            }
        };
        let closing = matches!(frame, Message::Close(_));
        match tokio::time::timeout(SEND_TIMEOUT, sink.send(frame)).await {
            Ok(Ok(())) if !closing => {}
            _ => break,
        }
    }
}

async fn session(socket: WebSocket, s: Arc<Signalling>, permit: Permit, url_room: Option<String>) {
    let ip = permit.ip;
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel::<ToSession>(OUT_QUEUE);
    let (kill, mut killed) = tokio::sync::watch::channel(None::<u16>);
    let writer = tokio::spawn(write_frames(sink, rx, kill.subscribe()));
    let handle = SessionHandle {
        tx: tx.clone(),
        kill: kill.clone(),
        serial: s.serials.fetch_add(1, Ordering::Relaxed),
    };
    let send_error =
        |e: &ProtocolError| handle.deliver(ToSession::Frame(ServerMessage::error(e).to_json()));
    let join_by = tokio::time::Instant::now() + s.settings.limits.join_deadline;
    let mut me: Option<u64> = None;
    let mut linger = false;
    // a close frame is a deliberate goodbye; a connection that just drops
    // (network change, crash) leaves the participant waiting for `resume`
    let mut said_goodbye = false;
    loop {
        let deadline = if me.is_none() {
            join_by
        } else {
            tokio::time::Instant::now() + Duration::from_secs(86_400)
        };
        let frame = tokio::select! {
            f = stream.next() => f,
            _ = tokio::time::sleep_until(deadline) => {
                let _ = kill.send(Some(CLOSE_JOIN_TIMEOUT));
                break;
            }
            _ = killed.changed() => break,
        };
        let text = match frame {
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Binary(_))) => {
                send_error(&ProtocolError::new(
                    ErrorCode::BadJson,
                    "binary frames are not signalling",
                ));
                continue;
            }
            Some(Ok(Message::Close(_))) => {
                said_goodbye = true;
                break;
            }
            None => break,
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                tracing::debug!(target: "switchyard::server", error = %e, "signalling read failed");
                // tungstenite ends the stream after any read error; for a
                // frame over MAX_FRAME the protocol promises `too_large`.
                if is_capacity(&e) {
                    send_error(&ProtocolError::new(
                        ErrorCode::TooLarge,
                        format!("frame over {MAX_FRAME} bytes"),
                    ));
                    handle.deliver(ToSession::Close(CLOSE_TOO_BIG, "frame too large"));
                    linger = true;
                }
                break;
            }
        };
        let msg = match ClientMessage::parse(&text) {
            Ok(m) => m,
            Err(e) => {
                send_error(&e);
                continue;
            }
        };
        if me.is_none()
            && matches!(
                msg,
                ClientMessage::Join { .. } | ClientMessage::Resume { .. }
            )
            && !s.hub_ready(HUB_WAIT).await
        {
            // (a `resume` must not be told `resume_failed` just because the
            // saved rooms are not carried on yet)
            send_error(&ProtocolError::new(
                ErrorCode::Internal,
                "the media server is not attached yet; retry",
            ));
            handle.deliver(BYE);
            break;
        }
        let now = Instant::now();
        // whatever the message changed, the pump carries out now
        let _wake = s.wake.on_drop();
        match (me, msg) {
            (
                None,
                ClientMessage::Join {
                    room,
                    name,
                    token,
                    region,
                    ..
                },
            ) => {
                if url_room.as_ref().is_some_and(|r| *r != room) {
                    send_error(&ProtocolError::new(
                        ErrorCode::InvalidValue,
                        "the join names another room than the URL's ?room=",
                    ));
                    continue;
                }
                let admitted = match s.draining() {
                    Some(reason) => Err(ProtocolError::new(
                        ErrorCode::Draining,
                        format!("this server is shutting down ({reason}); join again in a moment"),
                    )),
                    None => lock(&s.admission).join(ip, now),
                };
                // a room opens on one shard of the cluster: here, or the
                // client is sent to the one that holds it
                // (only someone the room's token admits reaches the
                // registry); whether the room is open here, in the same look
                let admitted = admitted.and_then(|()| {
                    lock(&s.hub).as_ref().map_or(Ok(false), |h| {
                        h.authorize(&room, token.as_deref())
                            .map(|()| h.has_room(&room))
                    })
                });
                let admitted = match admitted {
                    Ok(open_here) => match s.shard.admit(&room, open_here).await {
                        Route::Here => Ok(()),
                        Route::Redirect { shard, url } => {
                            handle.deliver(ToSession::Frame(
                                ServerMessage::Redirect {
                                    v: crate::signalling::VERSION,
                                    room: room.clone(),
                                    shard,
                                    url,
                                }
                                .to_json(),
                            ));
                            handle.deliver(BYE);
                            break;
                        }
                        Route::Unavailable(why) => {
                            Err(ProtocolError::new(ErrorCode::RoomUnavailable, why))
                        }
                    },
                    Err(e) => Err(e),
                };
                // the session is registered before the hub lock is let go,
                // so the pump cannot route `joined` before it exists
                let joined = admitted.and_then(|()| {
                    let mut hub = lock(&s.hub);
                    let joined = match hub.as_mut() {
                        Some(h) => {
                            // (admitted: the shard has its id tag)
                            if let Some(tag) = s.shard.id_tag() {
                                h.set_id_tag(tag);
                            }
                            h.join_in(now, &room, &name, token.as_deref(), region.as_deref())
                        }
                        None => Err(ProtocolError::new(
                            ErrorCode::Internal,
                            "the dataplane is starting; retry",
                        )),
                    };
                    if let Ok(id) = joined {
                        lock(&s.sessions).attach(id, handle.clone());
                    }
                    joined
                });
                match joined {
                    Ok(id) => me = Some(id),
                    Err(e) => {
                        send_error(&e);
                        if matches!(
                            e.code,
                            ErrorCode::Unauthorized
                                | ErrorCode::Limit
                                | ErrorCode::Internal
                                | ErrorCode::Draining
                                | ErrorCode::RoomUnavailable
                        ) {
                            handle.deliver(BYE);
                            break;
                        }
                    }
                }
            }
            (None, ClientMessage::Resume { token, .. }) => {
                match resume(&s, ip, now, &token, &handle) {
                    Ok(id) => me = Some(id),
                    Err(e) => {
                        send_error(&e);
                        if e.code != ErrorCode::ResumeFailed {
                            handle.deliver(BYE);
                            break;
                        }
                    }
                }
            }
            // a keepalive is answered before `join` too (after, the hub answers)
            (None, ClientMessage::Ping { .. }) => handle.deliver(ToSession::Frame(
                ServerMessage::Pong {
                    v: crate::signalling::VERSION,
                }
                .to_json(),
            )),
            (None, _) => send_error(&ProtocolError::new(ErrorCode::BadState, "join first")),
            (Some(id), ClientMessage::Offer { sdp, content, .. }) => {
                // parsed here, so a large SDP never holds the hub
                let parsed = ParsedSdp::Offer(Offer::parse(&sdp), content);
                if let Some(hub) = lock(&s.hub).as_mut() {
                    hub.handle_sdp(id, parsed);
                }
            }
            (Some(id), ClientMessage::Answer { sdp, .. }) => {
                let parsed = ParsedSdp::Answer(Offer::parse(&sdp));
                if let Some(hub) = lock(&s.hub).as_mut() {
                    hub.handle_sdp(id, parsed);
                }
            }
            (Some(id), msg) => {
                if let Some(hub) = lock(&s.hub).as_mut() {
                    hub.handle_message(now, id, msg);
                }
            }
        }
    }
    if let Some(id) = me {
        // gone for good (left, failed) or only this connection: then the
        // participant waits for a `resume`
        let still_there = lock(&s.hub).as_ref().is_some_and(|h| h.contains(id));
        // (a connection another one resumed has nothing left to do)
        if lock(&s.sessions).is_attached(id, handle.serial) {
            if still_there && !said_goodbye && s.draining().is_none() {
                lock(&s.sessions).detach(id, handle.serial, Instant::now());
            } else {
                if let Some(hub) = lock(&s.hub).as_mut() {
                    hub.disconnect(id);
                }
                lock(&s.sessions).remove(id);
                s.wake.notify();
            }
        }
    }
    drop((tx, handle));
    let _ = writer.await;
    if linger {
        // the rest of the oversized frame is unread: closing now would
        // reset the connection and could discard `too_large` and the close
        // frame before the client reads them
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drop(stream);
    drop(permit);
}

/// How long a first `join` or `resume` waits for a server that is starting
/// (attaching or adopting its dataplane, carrying its rooms on).
const HUB_WAIT: Duration = Duration::from_secs(10);

/// `resume`: this connection carries on as the participant the token
/// belongs to; the join rate applies, as for `join`.
fn resume(
    s: &Signalling,
    ip: IpAddr,
    now: Instant,
    token: &str,
    handle: &SessionHandle,
) -> Result<u64, ProtocolError> {
    if let Some(reason) = s.draining() {
        return Err(ProtocolError::new(
            ErrorCode::Draining,
            format!("this server is shutting down ({reason})"),
        ));
    }
    lock(&s.admission).join(ip, now)?;
    let hub = lock(&s.hub);
    let id = hub
        .as_ref()
        .and_then(|h| h.participant_for_token(token))
        .ok_or_else(|| {
            ProtocolError::new(
                ErrorCode::ResumeFailed,
                "nothing to resume (you left, or were away too long): join again",
            )
        })?;
    let pid = crate::hub::pid(id);
    let resumed = ServerMessage::Resumed {
        v: crate::signalling::VERSION,
        ice_servers: s.ice_servers(&pid),
        id: pid,
    }
    .to_json();
    // under the hub lock, so the pump cannot deliver between `resumed`
    // and the backlog
    lock(&s.sessions).resume(id, handle.clone(), resumed);
    tracing::info!(target: "switchyard::server", participant = id, "resumed");
    Ok(id)
}

/// Whether a read error is a frame over the size limit: tungstenite's
/// `Error::Capacity`, which axum passes on only as text ("Space limit
/// exceeded: Message too long: …"; bad_input.rs fails if that changes).
fn is_capacity(e: &axum::Error) -> bool {
    e.to_string().starts_with("Space limit exceeded")
}

#[cfg(test)]
mod tests {
    use super::client_address;
    use axum::http::HeaderMap;

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let (proxy, client, other): (std::net::IpAddr, std::net::IpAddr, std::net::IpAddr) = (
            "10.0.0.5".parse().unwrap(),
            "198.51.100.7".parse().unwrap(),
            "192.0.2.1".parse().unwrap(),
        );
        let mut h = HeaderMap::new();
        // a client's own header first, then the proxy's
        h.append("x-forwarded-for", "203.0.113.9, 192.0.2.1".parse().unwrap());
        h.append("x-forwarded-for", "198.51.100.7".parse().unwrap());
        assert_eq!(client_address(proxy, &h, &[proxy]), client);
        assert_eq!(client_address(other, &h, &[proxy]), other, "untrusted peer");
        assert_eq!(client_address(proxy, &HeaderMap::new(), &[proxy]), proxy);
        let mut junk = HeaderMap::new();
        junk.append("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(client_address(proxy, &junk, &[proxy]), proxy);
    }
}
