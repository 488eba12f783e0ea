//! The HTTP side: signalling (`/ws`), health, statistics, metrics and the
//! demo app, served the same over HTTP and HTTPS.

use crate::load::{LoadMeter, Totals};
use crate::supervisor::Dataplane;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;
use switchyard_dataplane::abi::{Counter, DropReason};

/// State shared by the handlers.
pub struct AppState {
    /// The supervised dataplane.
    pub dataplane: Arc<Dataplane>,
    /// Rooms and sessions.
    pub signalling: Arc<crate::server::Signalling>,
    /// Rates and stress, sampled by [`sample_load`].
    pub load: std::sync::Mutex<LoadMeter>,
    /// How joins are authorised: `open`, `hs256` or `rs256`.
    pub auth: &'static str,
    /// `all` (plain `switchyard`: a dataplane of its own) or `focus`.
    pub role: &'static str,
    /// What the operator must know about the configuration (also shown on
    /// the demo page).
    pub warnings: Vec<String>,
}

/// The dataplane's counter totals over all workers, and its worker count.
pub(crate) fn totals(dp: &Dataplane) -> Option<(Totals, usize)> {
    dp.with_client(|c| {
        let mut t = Totals::default();
        for b in (0..c.workers()).filter_map(|w| c.counters(w)) {
            t.rx_packets += b.get(Counter::RxPackets);
            t.rx_bytes += b.get(Counter::RxBytes);
            t.tx_packets += b.get(Counter::TxPackets);
            t.tx_bytes += b.get(Counter::TxBytes);
            t.forwarded += b.get(Counter::Forwarded);
        }
        (t, c.workers())
    })
}

/// Samples the dataplane's counters once a second into `state.load`, for
/// as long as the runtime runs.
pub async fn sample_load(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Some((t, workers)) = totals(&state.dataplane) {
            let now = std::time::Instant::now();
            let stress = {
                let mut meter = lock_load(&state);
                meter.sample(now, t, workers);
                meter.stress()
            };
            // this host's bridge is placed on by the same measure as remote
            // ones (docs/cluster.md, "Placement")
            let draining = state.signalling.draining().is_some();
            state.signalling.with_hub(|h| {
                let health = crate::focus::bridges::Health {
                    stress,
                    draining,
                    dataplane_up: true,
                    endpoints: None,
                };
                h.bridge_health(now, crate::focus::bridges::LOCAL, health)
            });
        }
    }
}

fn lock_load(s: &AppState) -> std::sync::MutexGuard<'_, LoadMeter> {
    // poisoning only follows a panic elsewhere; the meter is still usable
    s.load.lock().unwrap_or_else(|p| p.into_inner())
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    let ws = Router::new()
        .route("/ws", get(crate::server::ws_handler))
        .route("/cluster", get(crate::focus::link::cluster_handler))
        .route("/bridges", get(bridges))
        .route("/bridges/{id}/drain", axum::routing::post(drain_bridge))
        .with_state(state.signalling.clone());
    Router::new()
        .route("/health", get(health))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(ws)
        .merge(crate::demo::routes())
}

/// `200 {"status":"ok",…}` while a dataplane is attached and alive (on a
/// focus: while a bridge can take rooms) and the server is not shutting
/// down; `503` with `"status":"draining"` (and the reason in `draining`) or
/// `"degraded"` otherwise.
async fn health(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    let now = switchyard_dataplane::abi::server::unix_ms();
    let dp = s.dataplane.with_client(|c| {
        json!({
            "attached": true,
            "workers": c.workers(),
            "ports": (0..c.workers()).filter_map(|w| c.worker_port(w)).collect::<Vec<_>>(),
            "boot_id": c.boot_id(),
            "heartbeat_age_ms": now.saturating_sub(c.heartbeat_ms()),
        })
    });
    // a focus has no dataplane: it is healthy while a bridge can take rooms
    let listed = s.signalling.bridges_json();
    let bridges = listed["bridges"].as_array().cloned().unwrap_or_default();
    let healthy_bridges = bridges.iter().filter(|b| b["healthy"] == true).count();
    let ok = if s.role == "focus" {
        healthy_bridges > 0
    } else {
        dp.as_ref()
            .is_some_and(|d| d["heartbeat_age_ms"].as_u64().unwrap_or(u64::MAX) < 2000)
    };
    let draining = s.signalling.draining();
    let status = match (&draining, ok) {
        (Some(_), _) => "draining",
        (None, true) => "ok",
        (None, false) => "degraded",
    };
    let ok = ok && draining.is_none();
    let body = json!({
        "status": status,
        "draining": draining,
        "version": env!("CARGO_PKG_VERSION"),
        "role": s.role,
        "bridges": { "registered": bridges.len(), "healthy": healthy_bridges },
        // a registry that cannot be reached stops new rooms only: the
        // shard stays up for its calls (and for a proxy's health check)
        "shard": {
            "id": s.signalling.shard().id(),
            "registry": s.signalling.shard().registry_name(),
            "registry_up": s.signalling.shard().registry_up(),
        },
        "dataplane": dp.unwrap_or_else(|| json!({"attached": false})),
        "dataplane_pid": s.dataplane.pid(),
        "dataplane_starts": s.dataplane.starts(),
        "dataplane_restores": s.dataplane.restores(),
        "auth": s.auth,
        "warnings": s.warnings,
    });
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}

/// `GET /bridges`: every bridge rooms can be placed on, with its health,
/// stress, rooms and participants (docs/cluster.md).
async fn bridges(State(s): State<Arc<crate::server::Signalling>>) -> Json<Value> {
    Json(s.bridges_json())
}

/// `POST /bridges/{id}/drain` with `Authorization: Bearer <cluster
/// secret>`: the bridge drains as on SIGTERM (docs/cluster.md). 404 for an
/// unknown bridge (or without a cluster), 401 without the secret, 409 for
/// a plain `switchyard`'s own bridge, 202 once asked.
async fn drain_bridge(
    State(s): State<Arc<crate::server::Signalling>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> (StatusCode, &'static str) {
    let Some(cluster) = s.cluster() else {
        return (StatusCode::NOT_FOUND, "no cluster here\n");
    };
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !cluster.secret.matches(bearer.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            "Authorization: Bearer <cluster secret>\n",
        );
    }
    if id == crate::focus::bridges::LOCAL {
        return (
            StatusCode::CONFLICT,
            "this process's own bridge drains with it (SIGTERM)\n",
        );
    }
    match s.with_hub(|h| h.drain_bridge(&id)) {
        Some(true) => (StatusCode::ACCEPTED, "draining\n"),
        _ => (StatusCode::NOT_FOUND, "no such bridge\n"),
    }
}

/// Packet counters per worker and drops by reason.
async fn stats(State(s): State<Arc<AppState>>) -> Json<Value> {
    let workers = s.dataplane.with_client(|c| {
        (0..c.workers())
            .filter_map(|w| c.counters(w))
            .map(|b| {
                let drops: serde_json::Map<String, Value> = DropReason::ALL
                    .iter()
                    .filter(|&&r| b.drops(r) > 0)
                    .map(|&r| (r.name().to_string(), json!(b.drops(r))))
                    .collect();
                json!({
                    "rx_packets": b.get(Counter::RxPackets),
                    "rx_bytes": b.get(Counter::RxBytes),
                    "tx_packets": b.get(Counter::TxPackets),
                    "tx_bytes": b.get(Counter::TxBytes),
                    "forwarded": b.get(Counter::Forwarded),
                    "relay": {
                        "rx_packets": b.get(Counter::RelayRxPackets),
                        "rx_bytes": b.get(Counter::RelayRxBytes),
                        "tx_packets": b.get(Counter::RelayTxPackets),
                        "tx_bytes": b.get(Counter::RelayTxBytes),
                        "retransmissions": b.get(Counter::RelayRetransmissions),
                        "nacks_sent": b.get(Counter::RelayNacksSent),
                    },
                    "retransmissions": b.get(Counter::Retransmissions),
                    "keyframe_requests": b.get(Counter::KeyframeRequests),
                    "drops": drops,
                })
            })
            .collect::<Vec<_>>()
    });
    let (rooms, participants) = s.signalling.counts();
    let (rates, stress) = {
        let m = lock_load(&s);
        (m.rates(), m.stress())
    };
    Json(json!({
        "rooms": rooms,
        "participants": participants,
        "stress_level": stress,
        "rates": {
            "rx_packets_per_s": rates.rx_packets_per_s,
            "tx_packets_per_s": rates.tx_packets_per_s,
            "rx_bits_per_s": rates.rx_bits_per_s,
            "tx_bits_per_s": rates.tx_bits_per_s,
            "forwarded_per_s": rates.forwarded_per_s,
        },
        "dataplane": { "workers": workers.unwrap_or_default() },
        "bridges": s.signalling.bridges_json()["bridges"],
        "relays": s.signalling.relays_json(),
        "signalling": s.signalling.bounded_state(),
    }))
}

/// The whole cluster as the registry lists it (every shard exports the
/// same numbers): what an autoscaler acts on (docs/cluster.md).
fn register_cluster(
    registry: &mut prometheus_client::registry::Registry,
    t: &crate::shard::Totals,
) {
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    type F64 = Gauge<f64, std::sync::atomic::AtomicU64>;
    let gauge = |v: u64| {
        let g: Gauge = Gauge::default();
        g.set(i64::try_from(v).unwrap_or(i64::MAX));
        g
    };
    registry.register(
        "cluster_shards",
        "Live shards in the cluster's registry",
        gauge(t.shards),
    );
    registry.register("cluster_rooms", "Rooms on all shards", gauge(t.rooms));
    registry.register(
        "cluster_participants",
        "Participants on all shards",
        gauge(t.participants),
    );
    registry.register(
        "cluster_bridges",
        "Live bridges in the cluster's registry",
        gauge(t.bridges.len() as u64),
    );
    registry.register(
        "cluster_bridges_available",
        "Bridges that take new rooms (healthy, not draining)",
        gauge(t.available),
    );
    let free = F64::default();
    free.set(t.free_capacity);
    registry.register(
        "cluster_free_capacity",
        "Room left before the placement threshold, in idle bridges",
        free,
    );
    let sum = F64::default();
    sum.set(t.bridges.iter().map(|b| b.stress).sum());
    registry.register(
        "cluster_stress",
        "Sum of every bridge's stress: an autoscaler's target per bridge divides it",
        sum,
    );
    let stress = Family::<Vec<(String, String)>, F64>::default();
    for b in &t.bridges {
        let labels = vec![
            ("bridge".to_string(), b.id.clone()),
            ("shard".to_string(), b.shard.clone()),
        ];
        stress.get_or_create(&labels).set(b.stress);
    }
    registry.register(
        "cluster_bridge_stress",
        "Stress of every bridge in the cluster (1 = full)",
        stress,
    );
}

/// Prometheus text exposition: rooms, participants, and the dataplane's
/// counters per worker (drops by reason). Built fresh per scrape from the
/// shared-memory counters, which are the source of truth.
async fn metrics(
    State(s): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    use prometheus_client::metrics::counter::Counter as PromCounter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;
    type Labels = Vec<(String, String)>;
    let mut registry = Registry::with_prefix("switchyard");
    let (rooms, participants) = s.signalling.counts();
    let gauge = |v: i64| {
        let g: Gauge = Gauge::default();
        g.set(v);
        g
    };
    registry.register("rooms", "Rooms on this server", gauge(rooms as i64));
    registry.register(
        "participants",
        "Participants on this server",
        gauge(participants as i64),
    );
    let shard = s.signalling.shard();
    registry.register(
        "registry_up",
        "Whether the cluster registry answered this shard's last call (1) or not (0)",
        gauge(i64::from(shard.registry_up())),
    );
    let conflicts: PromCounter = PromCounter::default();
    conflicts.inc_by(shard.conflicts());
    registry.register(
        "room_claim_conflicts",
        "Rooms open here that another shard turned out to hold too (after a registry outage)",
        conflicts,
    );
    let stress: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
    stress.set(lock_load(&s).stress());
    registry.register(
        "stress_level",
        "Packet rate over the dataplane's capacity (1 = full)",
        stress,
    );
    // the bridges rooms are placed on (docs/cluster.md): what an
    // autoscaler looks at
    let listed = s.signalling.bridges_json();
    let bridges = listed["bridges"].as_array().cloned().unwrap_or_default();
    let healthy = bridges.iter().filter(|b| b["healthy"] == true).count();
    registry.register(
        "bridges",
        "Bridges registered with this focus",
        gauge(bridges.len() as i64),
    );
    registry.register(
        "bridges_healthy",
        "Bridges that can take rooms (link and dataplane up)",
        gauge(healthy as i64),
    );
    let bridge_stress = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let bridge_participants = Family::<Labels, Gauge>::default();
    for b in &bridges {
        let labels = vec![(
            "bridge".to_string(),
            b["id"].as_str().unwrap_or("").to_string(),
        )];
        bridge_stress
            .get_or_create(&labels)
            .set(b["stress"].as_f64().unwrap_or(0.0));
        bridge_participants
            .get_or_create(&labels)
            .set(b["participants"].as_i64().unwrap_or(0));
    }
    registry.register(
        "bridge_stress",
        "Stress each bridge last reported (1 = full)",
        bridge_stress,
    );
    registry.register(
        "bridge_participants",
        "Participants on each bridge",
        bridge_participants,
    );
    register_dataplane(&mut registry, &s.dataplane);
    if let Some(t) = shard.totals(s.signalling.stress_threshold()).await {
        register_cluster(&mut registry, &t);
    }
    metrics_reply(&registry, &headers)
}

/// The dataplane's counters (per worker), drops by reason and whether one
/// is attached, into `registry` (plain `switchyard` and `switchyard bridge`).
pub(crate) fn register_dataplane(
    registry: &mut prometheus_client::registry::Registry,
    dataplane: &Dataplane,
) {
    use prometheus_client::metrics::counter::Counter as PromCounter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    type Labels = Vec<(String, String)>;
    let gauge = |v: i64| {
        let g: Gauge = Gauge::default();
        g.set(v);
        g
    };
    let counters: [(&str, &str, Counter); 16] = [
        (
            "dataplane_packets_received",
            "Datagrams received by the dataplane",
            Counter::RxPackets,
        ),
        (
            "dataplane_bytes_received",
            "Bytes received by the dataplane",
            Counter::RxBytes,
        ),
        (
            "dataplane_packets_sent",
            "Datagrams sent by the dataplane",
            Counter::TxPackets,
        ),
        (
            "dataplane_bytes_sent",
            "Bytes sent by the dataplane",
            Counter::TxBytes,
        ),
        (
            "dataplane_forwarded",
            "Packets forwarded to subscribers",
            Counter::Forwarded,
        ),
        (
            "dataplane_retransmissions",
            "Packets sent again for receivers' NACKs",
            Counter::Retransmissions,
        ),
        (
            "dataplane_keyframe_requests",
            "Keyframe requests (PLI/FIR) sent to publishers",
            Counter::KeyframeRequests,
        ),
        (
            "dataplane_relay_packets_received",
            "RTP packets received from relays to other bridges",
            Counter::RelayRxPackets,
        ),
        (
            "dataplane_relay_bytes_received",
            "Bytes of RTP received from relays to other bridges",
            Counter::RelayRxBytes,
        ),
        (
            "dataplane_relay_packets_sent",
            "RTP packets sent to relays to other bridges",
            Counter::RelayTxPackets,
        ),
        (
            "dataplane_relay_bytes_sent",
            "Bytes of RTP sent to relays to other bridges",
            Counter::RelayTxBytes,
        ),
        (
            "dataplane_relay_retransmissions",
            "Packets sent again to relays for the far bridges' NACKs",
            Counter::RelayRetransmissions,
        ),
        (
            "dataplane_relay_nacks_sent",
            "NACKs sent to relays for relayed packets that did not arrive",
            Counter::RelayNacksSent,
        ),
        (
            "dataplane_upstream_nack_retries",
            "Packets of publishers and relays NACKed again after a round trip without them",
            Counter::UpstreamNackRetries,
        ),
        (
            "dataplane_upstream_loss_given_up",
            "Packets of publishers and relays still missing after the last NACK",
            Counter::UpstreamLossGivenUp,
        ),
        (
            "dataplane_retransmissions_withheld",
            "Packets subscribers NACKed that were not sent again (sent again too lately, or over half the estimate)",
            Counter::RetransmissionsWithheld,
        ),
    ];
    let blocks = dataplane.with_client(|c| {
        (0..c.workers())
            .filter_map(|w| c.counters(w))
            .collect::<Vec<_>>()
    });
    registry.register(
        "dataplane_up",
        "1 while a dataplane is attached",
        gauge(i64::from(blocks.is_some())),
    );
    let blocks = blocks.unwrap_or_default();
    for (name, help, counter) in counters {
        let family = Family::<Labels, PromCounter>::default();
        for (w, b) in blocks.iter().enumerate() {
            family
                .get_or_create(&vec![("worker".into(), w.to_string())])
                .inc_by(b.get(counter));
        }
        registry.register(name, help, family);
    }
    let drops = Family::<Labels, PromCounter>::default();
    for (w, b) in blocks.iter().enumerate() {
        for r in DropReason::ALL {
            let labels = vec![
                ("worker".to_string(), w.to_string()),
                ("reason".to_string(), r.name().to_string()),
            ];
            drops.get_or_create(&labels).inc_by(b.drops(r));
        }
    }
    registry.register(
        "dataplane_drops",
        "Datagrams dropped by the dataplane, by reason",
        drops,
    );
    register_ice_tcp(registry, dataplane);
}

/// The ICE-TCP front's counters, when the dataplane runs one.
fn register_ice_tcp(registry: &mut prometheus_client::registry::Registry, dataplane: &Dataplane) {
    use prometheus_client::metrics::counter::Counter as PromCounter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use switchyard_dataplane::abi::counters::{TCP_CLOSED_BASE, TcpCounter};
    use switchyard_dataplane::tcp::CloseReason;
    type Labels = Vec<(String, String)>;
    let Some(block) = dataplane
        .with_client(|c| c.ice_tcp_port().map(|_| c.tcp_counters()))
        .flatten()
    else {
        return;
    };
    let value = |c: TcpCounter| block.values[c as usize];
    let open: Gauge = Gauge::default();
    open.set(value(TcpCounter::Open) as i64);
    registry.register(
        "ice_tcp_connections_open",
        "ICE-TCP connections open now",
        open,
    );
    let counters = [
        (
            "ice_tcp_connections_accepted",
            "ICE-TCP connections accepted (refused ones included)",
            TcpCounter::Accepted,
        ),
        (
            "ice_tcp_connections_answered",
            "ICE-TCP connections whose Binding request the bridge answered",
            TcpCounter::Answered,
        ),
        (
            "ice_tcp_packets_received",
            "Packets received over ICE-TCP and passed to the workers",
            TcpCounter::PacketsIn,
        ),
        (
            "ice_tcp_bytes_received",
            "Bytes of packets received over ICE-TCP",
            TcpCounter::BytesIn,
        ),
        (
            "ice_tcp_packets_sent",
            "Packets queued for ICE-TCP peers",
            TcpCounter::PacketsOut,
        ),
        (
            "ice_tcp_bytes_sent",
            "Bytes of packets queued for ICE-TCP peers",
            TcpCounter::BytesOut,
        ),
    ];
    for (name, help, c) in counters {
        let counter: PromCounter = PromCounter::default();
        counter.inc_by(value(c));
        registry.register(name, help, counter);
    }
    let dropped = Family::<Labels, PromCounter>::default();
    for (reason, c) in [
        ("queue_full", TcpCounter::QueueFull),
        ("worker_refused", TcpCounter::WorkerRefused),
    ] {
        dropped
            .get_or_create(&vec![("reason".into(), reason.into())])
            .inc_by(value(c));
    }
    registry.register(
        "ice_tcp_packets_dropped",
        "ICE-TCP packets dropped: a peer reading too slowly (queue_full) or a worker socket refusing",
        dropped,
    );
    let closed = Family::<Labels, PromCounter>::default();
    for r in CloseReason::ALL {
        closed
            .get_or_create(&vec![("reason".into(), r.name().into())])
            .inc_by(block.values[TCP_CLOSED_BASE + r as usize]);
    }
    registry.register(
        "ice_tcp_connections_closed",
        "ICE-TCP connections closed or refused, by reason",
        closed,
    );
}

/// `registry` as the scraper asked: OpenMetrics when `Accept` names it
/// (Prometheus does), the classic text format otherwise (curl, promtool).
pub(crate) fn metrics_reply(
    registry: &prometheus_client::registry::Registry,
    headers: &axum::http::HeaderMap,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, registry).is_err() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "text/plain")],
            String::from("encoding failed"),
        );
    }
    let openmetrics = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            StatusCode::OK,
            [(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
    } else {
        (
            StatusCode::OK,
            [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
            classic_text(&body),
        )
    }
}

/// The classic Prometheus text format (0.0.4) of an OpenMetrics text: a
/// counter's `# HELP` and `# TYPE` name its samples' `_total` name, and there
/// is no `# EOF`.
fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_classic_text_names_counters_by_their_samples() {
        let om = "# HELP a_rooms Rooms.\n# TYPE a_rooms gauge\na_rooms 2\n# HELP a_drops Drops.\n# TYPE a_drops counter\na_drops_total{w=\"0\"} 5\n# EOF\n";
        assert_eq!(
            super::classic_text(om),
            "# HELP a_rooms Rooms.\n# TYPE a_rooms gauge\na_rooms 2\n# HELP a_drops_total Drops.\n# TYPE a_drops_total counter\na_drops_total{w=\"0\"} 5\n"
        );
    }
}
