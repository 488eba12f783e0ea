//! `GET /cluster`: one bridge agent's link to this focus (docs/cluster.md).
//!
//! The handshake proves both ends hold the cluster secret; the agent then
//! registers (the bridge is placed on from then on) and heartbeats. What
//! the hub asks of the bridge leaves from its outbox ([`Links`]); what the
//! agent reports goes to the hub. The link ends on a closed socket, a
//! frame that fails its check, three missed heartbeats or an outbox the
//! agent does not empty; the bridge then takes no new rooms until it is
//! back.

use super::links::{Claim, Links};
use crate::cluster::auth::Secret;
use crate::cluster::handshake::{FocusHandshake, LinkError, open, seal};
use crate::cluster::wire::{Down, MAX_FRAME, Up};
use crate::focus::bridges::LOCAL;
use crate::server::Signalling;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a focus needs to take links.
pub struct Cluster {
    /// The shared secret.
    pub secret: Secret,
    /// The bridges' outboxes.
    pub links: Links,
    /// Connections still in their handshake (bounded by
    /// [`MAX_HANDSHAKES`]).
    pub handshakes: std::sync::atomic::AtomicUsize,
    /// Bounds the lines refused connections cause (anyone can cause them).
    pub refusals_log: std::sync::Mutex<switchyard_dataplane::log_budget::LogBudget>,
}

impl Cluster {
    /// A focus's cluster with `secret`.
    pub fn new(secret: Secret) -> Cluster {
        Cluster {
            secret,
            links: Links::default(),
            handshakes: Default::default(),
            refusals_log: std::sync::Mutex::new(
                switchyard_dataplane::log_budget::LogBudget::per_minute(),
            ),
        }
    }

    /// Whether a refusal may be logged now: `Some(lines suppressed since
    /// the last one)`.
    fn log_refusal(&self) -> Option<u64> {
        self.refusals_log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allow(Instant::now())
    }
}

/// Connections that may be in their handshake at once; more get 503 (an
/// unauthenticated peer cannot hold more than this many 5 s waits).
pub const MAX_HANDSHAKES: usize = 64;

/// Counts a connection in its handshake while it lives.
struct Handshaking<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Handshaking<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How long each handshake step and the registration may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A link whose agent sent nothing for this long is lost (three missed
/// heartbeats).
pub const SILENCE_LIMIT: Duration = Duration::from_secs(3);
/// How long one frame may take to leave before the agent counts as not
/// reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /cluster`: 404 unless this process has a cluster secret.
pub async fn cluster_handler(
    ws: WebSocketUpgrade,
    State(s): State<Arc<Signalling>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let Some(cluster) = s.cluster() else {
        return (StatusCode::NOT_FOUND, "no cluster here").into_response();
    };
    use std::sync::atomic::Ordering;
    if cluster.handshakes.load(Ordering::Relaxed) >= MAX_HANDSHAKES {
        if let Some(suppressed) = cluster.log_refusal() {
            tracing::warn!(target: "switchyard::cluster", %peer, suppressed, "cluster link refused: too many handshakes at once");
        }
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many cluster handshakes",
        )
            .into_response();
    }
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| link(socket, s, peer))
}

/// The next text frame, or why there is none.
async fn next_text(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Result<String, &'static str> {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => return Err("a binary frame"),
            Some(Ok(Message::Close(_))) | None => return Err("socket closed"),
            Some(Err(e)) if e.to_string().starts_with("Space limit exceeded") => {
                return Err("a frame over the size limit");
            }
            Some(Err(_)) => return Err("socket failed"),
        }
    }
}

async fn link(socket: WebSocket, s: Arc<Signalling>, peer: SocketAddr) {
    let Some(cluster) = s.cluster() else { return };
    cluster
        .handshakes
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let handshaking = Handshaking(&cluster.handshakes);
    let (mut sink, mut stream) = socket.split();
    let refuse = |e: &LinkError| {
        if let Some(suppressed) = cluster.log_refusal() {
            tracing::warn!(target: "switchyard::cluster", %peer, code = e.code, reason = e.reason, suppressed, "cluster link refused");
        }
        Message::Text(e.refused_frame().into())
    };
    let (handshake, challenge) = FocusHandshake::start(cluster.secret.clone());
    if sink.send(Message::Text(challenge.into())).await.is_err() {
        return;
    }
    let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, next_text(&mut stream)).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(why)) => {
            let e = LinkError {
                code: "bad_message",
                reason: format!("expected `hello`, got {why}"),
            };
            let _ = sink.send(refuse(&e)).await;
            return;
        }
        Err(_) => {
            if let Some(suppressed) = cluster.log_refusal() {
                tracing::warn!(target: "switchyard::cluster", %peer, suppressed, "cluster link refused: no hello in time");
            }
            return;
        }
    };
    // (`local` is the in-process bridge's id, never a remote one's)
    let in_use = |id: &str| id == LOCAL || cluster.links.in_use(id);
    let (id, welcome, mut session) = match handshake.on_hello(&hello, in_use) {
        Ok(ok) => ok,
        Err(e) => {
            let _ = sink.send(refuse(&e)).await;
            let _ = sink.close().await;
            return;
        }
    };
    let Some(claim) = cluster.links.claim(&id) else {
        let e = LinkError {
            code: "id_in_use",
            reason: format!("bridge {id} is connected already"),
        };
        let _ = sink.send(refuse(&e)).await;
        return;
    };
    if sink.send(Message::Text(welcome.into())).await.is_err() {
        cluster.links.release(&id, claim.serial);
        return;
    }
    drop(handshaking);
    let ended = carry(
        &s,
        cluster,
        &id,
        &claim,
        &mut session,
        &mut sink,
        &mut stream,
    )
    .await;
    // down before the outbox is free: a new link of this bridge registers
    // after that, never before
    s.with_hub(|h| h.bridge_down(Instant::now(), &id));
    cluster.links.release(&id, claim.serial);
    match &ended {
        Ok(why) => {
            tracing::warn!(target: "switchyard::cluster", bridge = id, %peer, why, "bridge link ended")
        }
        Err(e) => {
            tracing::warn!(target: "switchyard::cluster", bridge = id, %peer, code = e.code, reason = e.reason, "bridge link cut");
            let _ = sink
                .send(Message::Close(Some(CloseFrame {
                    code: 1008,
                    reason: e.code.into(),
                })))
                .await;
        }
    }
}

/// How long a registering bridge waits for the hub.
const HUB_WAIT: Duration = Duration::from_secs(10);

/// Registration, then messages both ways until the link ends: `Ok` with
/// why for an orderly end, `Err` for one the agent caused.
async fn carry(
    s: &Signalling,
    cluster: &super::link::Cluster,
    id: &str,
    claim: &Claim,
    session: &mut crate::cluster::auth::Session,
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Result<&'static str, LinkError> {
    let first = match tokio::time::timeout(HANDSHAKE_TIMEOUT, next_text(stream)).await {
        Ok(Ok(first)) => first,
        Ok(Err(why)) => return Ok(why),
        Err(_) => return Ok("no registration in time"),
    };
    let (info, endpoints) =
        open::<Up>(session, &first)?
            .registration(id)
            .map_err(|e| LinkError {
                code: "bad_message",
                reason: e.0,
            })?;
    // a bridge that registers before the hub exists (the first moments of a
    // focus, a plain switchyard still attaching its dataplane) waits for it
    // rather than being forgotten
    if !s.hub_ready(HUB_WAIT).await {
        return Ok("the focus is not ready yet");
    }
    tracing::info!(target: "switchyard::cluster", bridge = id, region = info.region, version = info.version, workers = info.worker_ports.len(), endpoints = endpoints.len(), "bridge registered");
    s.with_hub(|h| {
        let now = Instant::now();
        h.bridge_up(now, info);
        h.keep_carried(id, &endpoints.into_iter().collect());
    });
    let mut heard = tokio::time::Instant::now();
    loop {
        // what waits in the outbox goes first
        let waiting = cluster
            .links
            .take(id, claim.serial)
            .map_err(|why| LinkError {
                code: "lost",
                reason: why.into(),
            })?;
        for msg in waiting {
            let frame = seal(session, Down::from_msg(&msg))?;
            match tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Text(frame.into()))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Ok("socket closed"),
                Err(_) => return Ok("the agent does not read"),
            }
        }
        tokio::select! {
            _ = claim.wake.notified() => {}
            _ = tokio::time::sleep_until(heard + SILENCE_LIMIT) => return Ok("three heartbeats missed"),
            frame = next_text(stream) => {
                let text = match frame {
                    Ok(text) => text,
                    Err(why) => return Ok(why),
                };
                heard = tokio::time::Instant::now();
                let up = open::<Up>(session, &text)?;
                let now = Instant::now();
                if let Some(health) = up.health() {
                    s.with_hub(|h| h.bridge_health(now, id, health));
                    continue;
                }
                match up.into_msg() {
                    Ok(Some(msg)) => {
                        s.with_hub(|h| h.from_agent(now, id, msg));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        return Err(LinkError { code: "bad_message", reason: e.0 });
                    }
                }
            }
        }
    }
}
