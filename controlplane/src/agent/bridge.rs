//! `switchyard bridge`: a bridge agent beside its dataplane, driven by a
//! focus over the cluster protocol (docs/cluster.md).
//!
//! Three parts: the supervisor keeps the dataplane running (as in plain
//! `switchyard`); a pump thread drives the [`AgentHost`] — exception
//! packets, events, timers, the focus's messages in, reports out; and the
//! link task connects out to the focus, authenticates, registers,
//! heartbeats every second and carries messages both ways, reconnecting
//! with backoff whenever the link drops. Media flows while the focus is
//! away: ICE consent and DTLS are answered here.
//!
//! SIGTERM drains: heartbeats say so (the focus places no new rooms
//! here), `/health` answers 503, and the process exits 0 once no endpoint
//! is left. At `--drain-timeout` it asks the focus to move the rooms left
//! (`evacuate`) and exits once they are gone, or [`EVACUATE_WAIT`] later;
//! a second signal stops at once. The focus can ask for the same drain
//! (`POST /bridges/{id}/drain` on the focus).

use super::host::AgentHost;
use super::{FromAgent, ToAgent};
use crate::app::{Shutdown, start_supervisor};
use crate::cluster::auth::{Secret, Session};
use crate::cluster::handshake::{AgentHandshake, LinkError, open, seal};
use crate::cluster::wire::{Down, MAX_FRAME, Up, WorkerInfo};
use crate::config::{BridgeRole, Config};
use crate::dtls::Certificate;
use crate::load::LoadMeter;
use crate::saved_state::SavedState;
use crate::supervisor::Dataplane;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use switchyard_dataplane::log_budget::LogBudget;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Reports that may wait for the link before new ones are dropped.
const UP_QUEUE: usize = 1 << 14;
/// The focus's messages that may wait for the pump (while the dataplane is
/// away) before the oldest are dropped.
const DOWN_QUEUE: usize = 1 << 16;
/// How long connecting, each handshake step and one frame may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// Heartbeat period.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A focus silent this long (not even a pong) is gone.
const FOCUS_SILENCE: Duration = Duration::from_secs(10);
/// How long an evacuating bridge waits for the focus to move its rooms.
pub const EVACUATE_WAIT: Duration = Duration::from_secs(15);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the pump, the link and the HTTP handlers share.
struct Shared {
    role: BridgeRole,
    advertise: Vec<std::net::IpAddr>,
    dataplane: Arc<Dataplane>,
    host: Mutex<Option<AgentHost>>,
    /// The focus's messages, for the pump.
    down: Mutex<VecDeque<ToAgent>>,
    up: mpsc::Sender<FromAgent>,
    /// Reports dropped because the link was away too long.
    up_dropped: std::sync::atomic::AtomicU64,
    /// The focus's messages dropped because the dataplane was away too long.
    down_dropped: std::sync::atomic::AtomicU64,
    load: Mutex<LoadMeter>,
    draining: AtomicBool,
    /// The focus asked for a drain (as SIGTERM does).
    drain_asked: tokio::sync::Notify,
    linked: AtomicBool,
    stop: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// The registration, once the dataplane is attached and the agent
    /// exists.
    fn registration(&self) -> Option<Up> {
        let ports = self.dataplane.with_client(|c| {
            (0..c.workers())
                .filter_map(|w| c.worker_port(w))
                .map(|port| WorkerInfo { port })
                .collect::<Vec<_>>()
        })?;
        let host = lock(&self.host);
        let agent = host.as_ref()?.agent();
        Some(Up::Register {
            region: self.role.region.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            workers: ports,
            advertise: self.advertise.clone(),
            fingerprint: agent.fingerprint().to_sdp(),
            endpoints: agent.endpoints(),
        })
    }

    fn endpoints(&self) -> usize {
        lock(&self.host)
            .as_ref()
            .map_or(0, |h| h.agent().endpoint_count())
    }

    fn dataplane_up(&self) -> bool {
        let now = switchyard_dataplane::abi::server::unix_ms();
        self.dataplane
            .with_client(|c| now.saturating_sub(c.heartbeat_ms()) < 2000)
            .unwrap_or(false)
    }

    fn heartbeat(&self) -> Up {
        Up::Heartbeat {
            stress: lock(&self.load).stress(),
            endpoints: self.endpoints() as u64,
            draining: self.draining.load(Ordering::Relaxed),
            dataplane_up: self.dataplane_up(),
        }
    }

    /// The agent beside the attached dataplane: carried on from what the
    /// process before this one saved in its region, or new.
    fn start_host(&self, now: Instant) -> Option<AgentHost> {
        let saved = self.dataplane.with_client(|c| c.load_state())?;
        if let Some(bytes) = saved.filter(|b| !b.is_empty()) {
            match SavedState::parse(&bytes).and_then(|s| AgentHost::restore(s.agent, now)) {
                Ok(host) => {
                    tracing::info!(target: "switchyard::agent", endpoints = host.agent().endpoint_count(), "carried on the saved endpoints");
                    return Some(host);
                }
                Err(e) => {
                    tracing::error!(target: "switchyard::agent", error = %e, "the saved state cannot be carried on; starting afresh")
                }
            }
        }
        match Certificate::generate() {
            Ok(cert) => Some(AgentHost::new(cert)),
            Err(e) => {
                tracing::error!(target: "switchyard::agent", error = %e, "no DTLS certificate");
                None
            }
        }
    }

    /// The pump: the agent's inputs and outputs, every millisecond.
    fn pump(&self) {
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(1));
            let now = Instant::now();
            let mut guard = lock(&self.host);
            if guard.is_none() {
                *guard = self.start_host(now);
            }
            let Some(host) = guard.as_mut() else { continue };
            self.dataplane.with_client(|client| {
                host.take_in(now, client, &self.dataplane);
                let down: Vec<ToAgent> = lock(&self.down).drain(..).collect();
                for msg in down {
                    host.handle(now, msg, client);
                }
                while let Some(msg) = host.poll_up() {
                    if self.up.try_send(msg).is_err() {
                        self.up_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                host.flush(now, client, None);
            });
        }
    }
}

/// Runs a bridge agent until it is stopped (see the module docs).
/// `listener` serves `/health` and `/stats`.
pub async fn serve(
    config: Config,
    role: BridgeRole,
    secret: Secret,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
) -> Result<(), String> {
    let dataplane = Arc::new(Dataplane::default());
    let stop = Arc::new(AtomicBool::new(false));
    let supervisor = start_supervisor(&config, &dataplane, &stop)?;
    let (up_tx, up_rx) = mpsc::channel(UP_QUEUE);
    let shared = Arc::new(Shared {
        role: role.clone(),
        advertise: config.advertise.clone(),
        dataplane,
        host: Mutex::new(None),
        down: Mutex::new(VecDeque::new()),
        up: up_tx,
        up_dropped: Default::default(),
        down_dropped: Default::default(),
        load: Mutex::new(LoadMeter::new(config.worker_capacity_pps)),
        draining: AtomicBool::new(false),
        drain_asked: tokio::sync::Notify::new(),
        linked: AtomicBool::new(false),
        stop: stop.clone(),
    });
    let pump = {
        let s = shared.clone();
        std::thread::Builder::new()
            .name("sy-agent-pump".into())
            .spawn(move || s.pump())
            .map_err(|e| format!("starting the pump: {e}"))?
    };
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let banner = format!(
        "switchyard {} bridge {}: health on http://{addr}/health, focus {}\n",
        env!("CARGO_PKG_VERSION"),
        role.id,
        role.focus
    );
    let _ = std::io::Write::write_all(&mut std::io::stdout(), banner.as_bytes());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    tokio::spawn(sample_load(shared.clone()));
    let link = tokio::spawn(keep_linked(shared.clone(), secret, up_rx));
    let app = Router::new()
        .route("/health", get(health))
        .route("/stats", get(stats))
        .with_state(shared.clone());
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    tokio::select! {
        _ = shutdown.signal(1) => {}
        _ = shared.drain_asked.notified() => {}
    }
    shared.draining.store(true, Ordering::Relaxed);
    tracing::info!(target: "switchyard::agent", endpoints = shared.endpoints(), timeout_s = config.drain_timeout.as_secs(), "draining: no new rooms here; stopping once the last endpoint left");
    let empty = |first_wait: Duration| {
        let shared = shared.clone();
        async move {
            tokio::time::sleep(first_wait).await;
            while shared.endpoints() > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // the focus hears `draining` in the next heartbeat before we look
    let drained = tokio::select! {
        _ = empty(HEARTBEAT) => true,
        _ = tokio::time::sleep(config.drain_timeout) => false,
        _ = shutdown.signal(2) => {
            tracing::info!(target: "switchyard::agent", "second signal: stopping now");
            true
        }
    };
    if drained {
        tracing::info!(target: "switchyard::agent", "no endpoint left: stopping");
    } else {
        tracing::info!(target: "switchyard::agent", endpoints = shared.endpoints(), "drain timeout: asking the focus to move the rooms left");
        let _ = shared.up.try_send(FromAgent::Evacuate);
        tokio::select! {
            _ = empty(Duration::ZERO) => tracing::info!(target: "switchyard::agent", "rooms moved: stopping"),
            _ = tokio::time::sleep(EVACUATE_WAIT) => tracing::warn!(target: "switchyard::agent", endpoints = shared.endpoints(), "the focus did not move every room: stopping"),
            _ = shutdown.signal(2) => tracing::info!(target: "switchyard::agent", "second signal: stopping now"),
        }
    }
    let _ = stopping.send(true);
    link.abort();
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(5), http).await;
    let _ = tokio::task::spawn_blocking(move || {
        let _ = pump.join();
        supervisor.join()
    })
    .await;
    tracing::info!(target: "switchyard::agent", "bridge stopped");
    Ok(())
}

/// Samples the dataplane's counters once a second (the stress heartbeats
/// report).
async fn sample_load(s: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Some((t, workers)) = crate::http::totals(&s.dataplane) {
            lock(&s.load).sample(Instant::now(), t, workers);
        }
    }
}

/// Keeps a link to the focus up, reconnecting with backoff.
async fn keep_linked(s: Arc<Shared>, secret: Secret, mut up: mpsc::Receiver<FromAgent>) {
    let mut backoff = Duration::from_millis(250);
    let mut log = LogBudget::per_minute();
    loop {
        let started = tokio::time::Instant::now();
        let ended = link_once(&s, &secret, &mut up).await;
        s.linked.store(false, Ordering::Relaxed);
        if let Some(suppressed) = log.allow(Instant::now()) {
            match &ended {
                Ok(why) => {
                    tracing::warn!(target: "switchyard::agent", focus = s.role.focus, why, suppressed, "link to the focus ended; reconnecting")
                }
                Err(e) => {
                    tracing::warn!(target: "switchyard::agent", focus = s.role.focus, code = e.code, reason = e.reason, suppressed, "link to the focus failed; reconnecting")
                }
            }
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(250);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn io_error(what: &str, e: impl std::fmt::Display) -> LinkError {
    LinkError {
        code: "io",
        reason: format!("{what}: {e}"),
    }
}

type Stream = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

/// The next text frame (`Ok(None)`: the focus closed the link).
async fn next_text(stream: &mut Stream) -> Result<Option<String>, LinkError> {
    loop {
        match stream.next().await {
            None | Some(Ok(Message::Close(_))) => return Ok(None),
            Some(Ok(Message::Text(t))) => return Ok(Some(t.to_string())),
            Some(Ok(Message::Binary(_))) => return Err(io_error("frame", "binary frame")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(io_error("reading", e)),
        }
    }
}

async fn step<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<Option<T>, LinkError>>,
) -> Result<T, LinkError> {
    match tokio::time::timeout(STEP_TIMEOUT, f).await {
        Ok(Ok(Some(t))) => Ok(t),
        Ok(Ok(None)) => Err(io_error(what, "the focus closed the link")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io_error(what, "timed out")),
    }
}

/// One link: connect, authenticate, register, then carry messages until it
/// ends. `Ok` with why for an orderly end.
async fn link_once(
    s: &Shared,
    secret: &Secret,
    up: &mut mpsc::Receiver<FromAgent>,
) -> Result<&'static str, LinkError> {
    let mut ws_config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    ws_config.max_message_size = Some(MAX_FRAME);
    ws_config.max_frame_size = Some(MAX_FRAME);
    let (ws, _) = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(&s.role.focus, Some(ws_config), true),
    )
    .await
    .map_err(|_| io_error("connecting", "timed out"))?
    .map_err(|e| io_error("connecting", e))?;
    let (mut sink, mut stream) = ws.split();
    let challenge = step("challenge", next_text(&mut stream)).await?;
    let (handshake, hello) = AgentHandshake::on_challenge(secret.clone(), &s.role.id, &challenge)?;
    sink.send(Message::Text(hello.into()))
        .await
        .map_err(|e| io_error("hello", e))?;
    let welcome = step("welcome", next_text(&mut stream)).await?;
    let mut session = handshake.on_welcome(&welcome)?;
    // the registration needs the dataplane's ports and the certificate
    let register = loop {
        if let Some(r) = s.registration() {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    send(&mut sink, &mut session, register).await?;
    s.linked.store(true, Ordering::Relaxed);
    tracing::info!(target: "switchyard::agent", focus = s.role.focus, id = s.role.id, "registered with the focus");
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut heard = tokio::time::Instant::now();
    let mut log = LogBudget::per_minute();
    loop {
        tokio::select! {
            frame = stream.next() => {
                heard = tokio::time::Instant::now();
                let text = match frame {
                    None | Some(Ok(Message::Close(_))) => return Ok("the focus closed the link"),
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => return Err(io_error("frame", "binary frame")),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(io_error("reading", e)),
                };
                let down: Down = open(&mut session, &text)?;
                match down.into_msg() {
                    Ok(ToAgent::Drain) => {
                        tracing::info!(target: "switchyard::agent", "the focus asks this bridge to drain");
                        s.drain_asked.notify_one();
                    }
                    Ok(msg) => {
                        let mut queue = lock(&s.down);
                        if queue.len() >= DOWN_QUEUE {
                            queue.pop_front();
                            s.down_dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        queue.push_back(msg);
                    }
                    Err(e) => {
                        if let Some(suppressed) = log.allow(Instant::now()) {
                            tracing::warn!(target: "switchyard::agent", error = %e, suppressed, "a message from the focus was refused");
                        }
                    }
                }
            }
            msg = up.recv() => {
                let Some(msg) = msg else { return Ok("stopping") };
                if let Some(u) = Up::from_msg(&msg) {
                    send(&mut sink, &mut session, u).await?;
                }
            }
            _ = heartbeat.tick() => {
                if heard.elapsed() > FOCUS_SILENCE {
                    return Ok("the focus went silent");
                }
                send(&mut sink, &mut session, s.heartbeat()).await?;
                // answered with a pong, which tells us the focus is there
                sink.send(Message::Ping(Vec::new().into()))
                    .await
                    .map_err(|e| io_error("ping", e))?;
            }
        }
    }
}

async fn send(
    sink: &mut futures_util::stream::SplitSink<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        Message,
    >,
    session: &mut Session,
    msg: Up,
) -> Result<(), LinkError> {
    let frame = seal(session, msg)?;
    match tokio::time::timeout(STEP_TIMEOUT, sink.send(Message::Text(frame.into()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(io_error("sending", e)),
        Err(_) => Err(io_error("sending", "the focus does not read")),
    }
}

/// `200` while the dataplane runs and the bridge is not draining; `503`
/// with `"status": "draining"` or `"degraded"` otherwise. `focus_link`
/// says whether the focus is connected (media flows without it).
async fn health(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    let up = s.dataplane_up();
    let draining = s.draining.load(Ordering::Relaxed);
    let status = match (draining, up) {
        (true, _) => "draining",
        (false, true) => "ok",
        (false, false) => "degraded",
    };
    let body = json!({
        "status": status,
        "role": "bridge",
        "id": s.role.id,
        "version": env!("CARGO_PKG_VERSION"),
        "focus_link": if s.linked.load(Ordering::Relaxed) { "up" } else { "down" },
        "dataplane": { "attached": up, "pid": s.dataplane.pid(), "starts": s.dataplane.starts(), "restores": s.dataplane.restores() },
    });
    let code = if status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

/// Endpoints, stress and what the link dropped.
async fn stats(State(s): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({
        "id": s.role.id,
        "endpoints": s.endpoints(),
        "stress_level": lock(&s.load).stress(),
        "learned_addresses": lock(&s.host).as_ref().map_or(0, |h| h.agent().learned_addresses()),
        "reports_dropped": s.up_dropped.load(Ordering::Relaxed),
        "messages_dropped": s.down_dropped.load(Ordering::Relaxed),
    }))
}
