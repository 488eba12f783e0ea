//! `switchyard bridge`: a bridge agent beside its dataplane, driven by a
//! focus over the cluster protocol (docs/cluster.md).
//!
//! Three parts: the supervisor keeps the dataplane running (as in plain
//! `switchyard`); a pump thread drives the [`AgentHost`] — exception
//! packets, events, timers, the focuses' messages in, reports out to the
//! focus that owns what they name; and one link task per focus
//! (`agent::focus_link`) connects out, authenticates, registers,
//! heartbeats every second and carries messages both ways, reconnecting
//! with backoff whenever the link drops. Which focuses: `--focus`, and
//! with `--registry` every shard listed there (`agent::focuses`). Media
//! flows while a focus is away: ICE consent and DTLS are answered here.
//!
//! SIGTERM drains: heartbeats say so (the focus places no new rooms
//! here), `/health` answers 503, and the process exits 0 once no endpoint
//! is left. At `--drain-timeout` it asks every focus to move the rooms
//! left (`evacuate`) and exits once they are gone, or [`EVACUATE_WAIT`]
//! later; a second signal stops at once. A focus can ask for the same
//! drain (`POST /bridges/{id}/drain` on the focus).

use super::focus_link::HEARTBEAT;
use super::focuses::{Links, keep_focuses, stop_all};
use super::host::AgentHost;
use super::{FromAgent, ToAgent};
use crate::app::{Shutdown, start_supervisor};
use crate::cluster::auth::Secret;
use crate::cluster::wire::{Up, WorkerInfo};
use crate::config::{BridgeRole, Config, RegistrySource};
use crate::dtls::Certificate;
use crate::load::LoadMeter;
use crate::pump_wake::{PumpPace, until};
use crate::saved_state::SavedState;
use crate::supervisor::Dataplane;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The focuses' messages that may wait for the pump (while the dataplane
/// is away) before the oldest are dropped.
const DOWN_QUEUE: usize = 1 << 16;
/// How long an evacuating bridge waits for the focuses to move its rooms.
pub const EVACUATE_WAIT: Duration = Duration::from_secs(15);

/// What the pump, the links and the HTTP handlers share.
pub struct Shared {
    role: BridgeRole,
    advertise: Vec<std::net::IpAddr>,
    dataplane: Arc<Dataplane>,
    host: Mutex<Option<AgentHost>>,
    /// The focuses' messages, each with the focus it came from, for the
    /// pump.
    down: Mutex<VecDeque<(Arc<str>, ToAgent)>>,
    /// Focuses gone for good, whose endpoints the pump closes.
    gone: Mutex<Vec<String>>,
    links: Mutex<Links>,
    /// Reports dropped because their focus's link was away too long, or
    /// the focus is gone.
    up_dropped: AtomicU64,
    /// The focuses' messages dropped because the dataplane was away too
    /// long.
    down_dropped: AtomicU64,
    load: Mutex<LoadMeter>,
    draining: AtomicBool,
    /// A focus asked for a drain (as SIGTERM does).
    pub(super) drain_asked: tokio::sync::Notify,
    stop: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// This bridge's id.
    pub(super) fn id(&self) -> &str {
        &self.role.id
    }

    /// The links to the focuses.
    pub(super) fn links(&self) -> MutexGuard<'_, Links> {
        lock(&self.links)
    }

    /// A message from the focus at `focus`, for the pump.
    pub(super) fn take_down(&self, focus: &Arc<str>, msg: ToAgent) {
        let mut queue = lock(&self.down);
        if queue.len() >= DOWN_QUEUE {
            queue.pop_front();
            self.down_dropped.fetch_add(1, Ordering::Relaxed);
        }
        queue.push_back((focus.clone(), msg));
        drop(queue);
        self.dataplane.wake.notify();
    }

    /// `focus` is gone for good: the pump closes what it owned.
    pub(super) fn give_up(&self, focus: String) {
        lock(&self.gone).push(focus);
        self.dataplane.wake.notify();
    }

    /// Sends a report to the focus that owns what it names, or to every
    /// focus.
    fn report(&self, owner: Option<&str>, msg: &FromAgent) {
        let Some(up) = Up::from_msg(msg) else { return };
        let links = self.links();
        let sent = match owner {
            Some(f) => links.get(f).is_some_and(|l| l.up.try_send(up).is_ok()),
            None => links.iter().fold(false, |any, (_, l)| {
                l.up.try_send(up.clone()).is_ok() || any
            }),
        };
        if !sent {
            self.up_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The registration with `focus`, once the dataplane is attached and
    /// the agent exists: it lists the endpoints that focus owns.
    pub(super) fn registration(&self, focus: &str) -> Option<Up> {
        let (ports, ice_tcp_port) = self.dataplane.with_client(|c| {
            let ports = (0..c.workers())
                .filter_map(|w| c.worker_port(w))
                .map(|port| WorkerInfo { port })
                .collect::<Vec<_>>();
            (ports, c.ice_tcp_port())
        })?;
        let host = lock(&self.host);
        let agent = host.as_ref()?.agent();
        Some(Up::Register {
            region: self.role.region.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            workers: ports,
            advertise: self.advertise.clone(),
            ice_tcp_port,
            fingerprint: agent.fingerprint().to_sdp(),
            endpoints: host.as_ref()?.endpoints_for(focus),
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

    pub(super) fn heartbeat(&self) -> Up {
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

    /// The pump: the agent's inputs and outputs, whenever the dataplane or
    /// a focus has something for it, when its transports' timers are due,
    /// and at least every [`PUMP_IDLE`](crate::pump_wake::PUMP_IDLE).
    fn pump(&self) {
        let mut backlog = false;
        let mut timer = None;
        let mut pace = PumpPace::default();
        while !self.stop.load(Ordering::Relaxed) {
            if let Some(max) = pace.next(backlog, timer) {
                self.dataplane.sleep(max);
            }
            let now = Instant::now();
            let mut guard = lock(&self.host);
            if guard.is_none() {
                *guard = self.start_host(now);
            }
            let Some(host) = guard.as_mut() else { continue };
            self.dataplane.with_client(|client| {
                host.take_in(now, client, &self.dataplane);
                let down: Vec<(Arc<str>, ToAgent)> = lock(&self.down).drain(..).collect();
                for (focus, msg) in down {
                    host.handle_from(now, &focus, msg, client);
                }
                let gone: Vec<String> = lock(&self.gone).drain(..).collect();
                for focus in gone {
                    let closed = host.release_focus(now, &focus, client);
                    tracing::info!(target: "switchyard::agent", focus, closed, "closed what a gone focus owned");
                }
                while let Some(msg) = host.poll_up() {
                    self.report(host.owners().of(&msg), &msg);
                }
                host.flush(now, client, None);
                backlog = host.backlog();
                timer = until(now, host.poll_timeout(now));
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
    let registry = match &config.shard.registry {
        RegistrySource::Memory => None,
        r => Some(r.open().map_err(|e| format!("--registry: {e}"))?),
    };
    let shared = Arc::new(Shared {
        role: role.clone(),
        advertise: config.advertise.clone(),
        dataplane,
        host: Mutex::new(None),
        down: Mutex::new(VecDeque::new()),
        gone: Mutex::new(Vec::new()),
        links: Mutex::new(Links::default()),
        up_dropped: Default::default(),
        down_dropped: Default::default(),
        load: Mutex::new(LoadMeter::new(config.worker_capacity_pps)),
        draining: AtomicBool::new(false),
        drain_asked: tokio::sync::Notify::new(),
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
    let mut focuses = role.focus.join(" ");
    if let Some(r) = &registry {
        focuses.push_str(&format!(" (and every shard in {})", r.describe()));
    }
    let banner = format!(
        "switchyard {} bridge {}: health on http://{addr}/health, focus {}\n",
        env!("CARGO_PKG_VERSION"),
        role.id,
        focuses.trim()
    );
    let _ = std::io::Write::write_all(&mut std::io::stdout(), banner.as_bytes());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    tokio::spawn(sample_load(shared.clone()));
    let link = tokio::spawn(keep_focuses(
        shared.clone(),
        role.focus.clone(),
        registry,
        secret,
    ));
    let app = Router::new()
        .route("/health", get(health))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
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
        tracing::info!(target: "switchyard::agent", endpoints = shared.endpoints(), "drain timeout: asking the focuses to move the rooms left");
        shared.report(None, &FromAgent::Evacuate);
        tokio::select! {
            _ = empty(Duration::ZERO) => tracing::info!(target: "switchyard::agent", "rooms moved: stopping"),
            _ = tokio::time::sleep(EVACUATE_WAIT) => tracing::warn!(target: "switchyard::agent", endpoints = shared.endpoints(), "the focus did not move every room: stopping"),
            _ = shutdown.signal(2) => tracing::info!(target: "switchyard::agent", "second signal: stopping now"),
        }
    }
    let _ = stopping.send(true);
    link.abort();
    stop_all(&mut shared.links());
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

/// `200` while the dataplane runs and the bridge is not draining; `503`
/// with `"status": "draining"` or `"degraded"` otherwise. `focus_link`
/// says whether the focuses are connected — `up` (all), `partial` or
/// `down` (media flows without them) — and `focuses` lists each.
async fn health(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    let up = s.dataplane_up();
    let draining = s.draining.load(Ordering::Relaxed);
    // (one look at the links: the guard is let go before the reply)
    let (focus_link, focuses) = {
        let links = s.links();
        let link = match links.counts() {
            (up, all) if up == all && all > 0 => "up",
            (0, _) => "down",
            _ => "partial",
        };
        let list: Vec<_> = links
            .iter()
            .map(|(f, l)| json!({ "url": &**f, "link": if l.state.is_up() { "up" } else { "down" } }))
            .collect();
        (link, list)
    };
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
        "focus_link": focus_link,
        "focuses": focuses,
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

/// Prometheus metrics of this bridge (`/metrics`, the formats the focus's
/// has): its dataplane's counters, drops and relay traffic, its endpoints
/// and stress, whether it drains, and its links to the focuses.
async fn metrics(
    State(s): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;
    let mut registry = prometheus_client::registry::Registry::with_prefix("switchyard");
    crate::http::register_dataplane(&mut registry, &s.dataplane);
    let gauge = |v: i64| {
        let g: Gauge = Gauge::default();
        g.set(v);
        g
    };
    let counter = |v: u64| {
        let c: Counter = Counter::default();
        c.inc_by(v);
        c
    };
    let stress: Gauge<f64, AtomicU64> = Gauge::default();
    stress.set(lock(&s.load).stress());
    registry.register(
        "stress_level",
        "Packet rate over the dataplane's capacity (1 = full)",
        stress,
    );
    registry.register(
        "bridge_endpoints",
        "Endpoints on this bridge, every focus's",
        gauge(s.endpoints() as i64),
    );
    registry.register(
        "bridge_draining",
        "1 while this bridge drains",
        gauge(i64::from(s.draining.load(Ordering::Relaxed))),
    );
    let (up, all) = s.links().counts();
    registry.register(
        "bridge_focuses",
        "Focuses this bridge serves",
        gauge(all as i64),
    );
    registry.register(
        "bridge_focuses_linked",
        "Focuses this bridge is linked to now",
        gauge(up as i64),
    );
    registry.register(
        "bridge_reports_dropped",
        "Reports to a focus dropped (its link away too long, or the focus gone)",
        counter(s.up_dropped.load(Ordering::Relaxed)),
    );
    registry.register(
        "bridge_messages_dropped",
        "Messages from the focuses dropped (the dataplane away too long)",
        counter(s.down_dropped.load(Ordering::Relaxed)),
    );
    crate::http::metrics_reply(&registry, &headers)
}
