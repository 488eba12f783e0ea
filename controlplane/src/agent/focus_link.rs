//! One link from a bridge to one focus: connect, authenticate, register
//! (listing the endpoints that focus owns), heartbeat every second and
//! carry messages both ways, reconnecting with backoff whenever the link
//! drops. A bridge serving several focuses (shards sharing bridges) runs
//! one per focus (`agent::focuses`).

use super::ToAgent;
use super::bridge::Shared;
use crate::cluster::auth::{Secret, Session};
use crate::cluster::handshake::{AgentHandshake, LinkError, open, seal};
use crate::cluster::wire::{Down, MAX_FRAME, Up};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use switchyard_dataplane::log_budget::LogBudget;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// How long connecting, each handshake step and one frame may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// Heartbeat period.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A focus silent this long (not even a pong) is gone.
const FOCUS_SILENCE: Duration = Duration::from_secs(10);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the bridge sees of a link.
#[derive(Debug, Default)]
pub struct LinkState {
    /// Registered and carrying messages.
    pub up: AtomicBool,
    /// When it was last up (`None`: never).
    pub last_up: std::sync::Mutex<Option<Instant>>,
}

impl LinkState {
    /// Up now, or down (the time it went down is the last it was up).
    fn set(&self, up: bool) {
        let was = self.up.swap(up, Ordering::Relaxed);
        if up || was {
            *self.last_up.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        }
    }

    /// Whether it is up.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// How long it has been down at `now` (since it started, if it never
    /// was up: `started`).
    pub fn down_for(&self, now: Instant, started: Instant) -> Duration {
        if self.is_up() {
            return Duration::ZERO;
        }
        let last = self.last_up.lock().unwrap_or_else(|p| p.into_inner());
        now.saturating_duration_since(last.unwrap_or(started))
    }
}

/// Keeps the link to the focus at `focus` up, reconnecting with backoff,
/// until the task is aborted.
pub async fn keep_linked(
    s: Arc<Shared>,
    focus: Arc<str>,
    secret: Secret,
    state: Arc<LinkState>,
    mut up: mpsc::Receiver<Up>,
) {
    let mut backoff = Duration::from_millis(250);
    let mut log = LogBudget::per_minute();
    loop {
        let started = tokio::time::Instant::now();
        let ended = link_once(&s, &focus, &secret, &state, &mut up).await;
        state.set(false);
        if let Some(suppressed) = log.allow(Instant::now()) {
            match &ended {
                Ok(why) => {
                    tracing::warn!(target: "switchyard::agent", focus = &*focus, why, suppressed, "link to the focus ended; reconnecting")
                }
                Err(e) => {
                    tracing::warn!(target: "switchyard::agent", focus = &*focus, code = e.code, reason = e.reason, suppressed, "link to the focus failed; reconnecting")
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

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Stream = futures_util::stream::SplitStream<Socket>;
type Sink = futures_util::stream::SplitSink<Socket, Message>;

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
    focus: &Arc<str>,
    secret: &Secret,
    state: &LinkState,
    up: &mut mpsc::Receiver<Up>,
) -> Result<&'static str, LinkError> {
    let mut ws_config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    ws_config.max_message_size = Some(MAX_FRAME);
    ws_config.max_frame_size = Some(MAX_FRAME);
    let (ws, _) = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(&**focus, Some(ws_config), true),
    )
    .await
    .map_err(|_| io_error("connecting", "timed out"))?
    .map_err(|e| io_error("connecting", e))?;
    let (mut sink, mut stream) = ws.split();
    let challenge = step("challenge", next_text(&mut stream)).await?;
    let (handshake, hello) = AgentHandshake::on_challenge(secret.clone(), s.id(), &challenge)?;
    sink.send(Message::Text(hello.into()))
        .await
        .map_err(|e| io_error("hello", e))?;
    let welcome = step("welcome", next_text(&mut stream)).await?;
    let mut session = handshake.on_welcome(&welcome)?;
    // the registration needs the dataplane's ports and the certificate
    let register = loop {
        if let Some(r) = s.registration(focus) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    send(&mut sink, &mut session, register).await?;
    state.set(true);
    tracing::info!(target: "switchyard::agent", focus = &**focus, id = s.id(), "registered with the focus");
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
                        tracing::info!(target: "switchyard::agent", focus = &**focus, "the focus asks this bridge to drain");
                        s.drain_asked.notify_one();
                    }
                    Ok(msg) => s.take_down(focus, msg),
                    Err(e) => {
                        if let Some(suppressed) = log.allow(Instant::now()) {
                            tracing::warn!(target: "switchyard::agent", focus = &**focus, error = %e, suppressed, "a message from the focus was refused");
                        }
                    }
                }
            }
            msg = up.recv() => {
                let Some(msg) = msg else { return Ok("stopping") };
                send(&mut sink, &mut session, msg).await?;
            }
            _ = heartbeat.tick() => {
                if heard.elapsed() > FOCUS_SILENCE {
                    return Ok("the focus went silent");
                }
                state.set(true);
                send(&mut sink, &mut session, s.heartbeat()).await?;
                // answered with a pong, which tells us the focus is there
                sink.send(Message::Ping(Vec::new().into()))
                    .await
                    .map_err(|e| io_error("ping", e))?;
            }
        }
    }
}

async fn send(sink: &mut Sink, session: &mut Session, msg: Up) -> Result<(), LinkError> {
    let frame = seal(session, msg)?;
    match tokio::time::timeout(STEP_TIMEOUT, sink.send(Message::Text(frame.into()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(io_error("sending", e)),
        Err(_) => Err(io_error("sending", "the focus does not read")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_counts_from_when_it_went_down_not_from_each_failed_attempt() {
        let started = Instant::now();
        let s = LinkState::default();
        std::thread::sleep(Duration::from_millis(20));
        // never up: down since it started
        s.set(false);
        assert!(s.down_for(Instant::now(), started) >= Duration::from_millis(20));
        s.set(true);
        assert_eq!(s.down_for(Instant::now(), started), Duration::ZERO);
        s.set(false);
        let went_down = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        s.set(false); // a reconnection attempt failed
        let down = s.down_for(Instant::now(), started);
        assert!(down >= Duration::from_millis(20), "{down:?}");
        assert!(down <= went_down.elapsed() + Duration::from_millis(5));
    }
}
