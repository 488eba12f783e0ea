//! The HTTP side: health and statistics (signalling and the demo page
//! join it as they land).

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
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    let ws = Router::new()
        .route("/ws", get(crate::server::ws_handler))
        .with_state(state.signalling.clone());
    Router::new()
        .route("/health", get(health))
        .route("/stats", get(stats))
        .with_state(state)
        .merge(ws)
}

/// `200 {"status":"ok",…}` while a dataplane is attached and alive,
/// `503 {"status":"degraded",…}` otherwise.
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
    let ok = dp
        .as_ref()
        .is_some_and(|d| d["heartbeat_age_ms"].as_u64().unwrap_or(u64::MAX) < 2000);
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "dataplane": dp.unwrap_or_else(|| json!({"attached": false})),
        "dataplane_pid": s.dataplane.pid(),
        "dataplane_starts": s.dataplane.starts(),
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
                    "drops": drops,
                })
            })
            .collect::<Vec<_>>()
    });
    Json(
        json!({ "rooms": s.signalling.counts().0, "participants": s.signalling.counts().1, "dataplane": { "workers": workers.unwrap_or_default() } }),
    )
}
