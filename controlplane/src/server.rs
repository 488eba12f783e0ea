//! Wiring: the WebSocket sessions, the hub and the dataplane.
//!
//! The hub is one sans-IO state machine behind a mutex. WebSocket tasks
//! feed it client messages; a pump thread feeds it the dataplane's
//! exception packets, events and time, and carries its outputs out:
//! commands and datagrams to the dataplane, messages to the sessions.

use crate::auth::TokenPolicy;
use crate::dtls::Certificate;
use crate::hub::{Hub, HubConfig, Out};
use crate::limits::Limits;
use crate::signalling::{ClientMessage, ErrorCode, ProtocolError, ServerMessage};
use crate::supervisor::Dataplane;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A message for a session's writer: a frame, or close.
enum ToSession {
    Frame(String),
    Close,
}

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
}

/// State the WebSocket handlers and the pump share.
pub struct Signalling {
    hub: Mutex<Option<Hub>>,
    sessions: Mutex<HashMap<u64, mpsc::UnboundedSender<ToSession>>>,
    dataplane: Arc<Dataplane>,
    settings: RoomSettings,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoning only follows a panic elsewhere; the state is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Signalling {
    /// Signalling for a supervised dataplane.
    pub fn new(dataplane: Arc<Dataplane>, settings: RoomSettings) -> Arc<Signalling> {
        Arc::new(Signalling {
            hub: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
            dataplane,
            settings,
        })
    }

    /// Rooms and participants.
    pub fn counts(&self) -> (usize, usize) {
        lock(&self.hub).as_ref().map_or((0, 0), Hub::counts)
    }

    /// Runs the pump until `stop`: creates the hub once the dataplane is
    /// attached, then moves packets, events, time and outputs.
    pub fn pump(self: &Arc<Self>, stop: &AtomicBool) {
        let mut buf = vec![0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(1));
            let now = Instant::now();
            let mut hub_guard = lock(&self.hub);
            if hub_guard.is_none() {
                let ports = self.dataplane.with_client(|c| {
                    (0..c.workers())
                        .filter_map(|w| c.worker_port(w))
                        .collect::<Vec<_>>()
                });
                let Some(worker_ports) = ports else { continue };
                let cert = match Certificate::generate() {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(target: "switchyard::server", error = %e, "no DTLS certificate");
                        continue;
                    }
                };
                let config = HubConfig {
                    limits: self.settings.limits,
                    tokens: self.settings.tokens.clone(),
                    worker_ports,
                    advertise: self.settings.advertise.clone(),
                    last_n: self.settings.last_n,
                };
                *hub_guard = Some(Hub::new(config, cert));
            }
            let Some(hub) = hub_guard.as_mut() else {
                continue;
            };
            let outs: Vec<Out> = self
                .dataplane
                .with_client(|client| {
                    while let Some((w, h, n)) = client.recv_packet(&mut buf) {
                        hub.handle_packet(now, w, &h, &buf[..n]);
                    }
                    while let Some((_, e)) = client.poll_event() {
                        hub.handle_event(now, e);
                    }
                    hub.handle_timeout(now);
                    let mut rest = Vec::new();
                    while let Some(o) = hub.poll() {
                        match o {
                            Out::Dataplane { worker, command } => {
                                if let Err(e) = client.send(worker, &command) {
                                    tracing::warn!(target: "switchyard::server", error = %e, ?command, "command not sent");
                                }
                            }
                            Out::Send { worker, header, data } => {
                                let _ = client.send_packet(worker, &header, &data);
                            }
                            other => rest.push(other),
                        }
                    }
                    rest
                })
                .unwrap_or_default();
            drop(hub_guard);
            let sessions = lock(&self.sessions);
            for o in outs {
                match o {
                    Out::Signal { participant, msg } => {
                        if let Some(tx) = sessions.get(&participant) {
                            let _ = tx.send(ToSession::Frame(msg.to_json()));
                        }
                    }
                    Out::Close { participant } => {
                        if let Some(tx) = sessions.get(&participant) {
                            let _ = tx.send(ToSession::Close);
                        }
                    }
                    Out::Dataplane { .. } | Out::Send { .. } => {}
                }
            }
        }
    }
}

/// `GET /ws`: one participant's signalling connection.
pub async fn ws_handler(ws: WebSocketUpgrade, State(s): State<Arc<Signalling>>) -> Response {
    ws.max_message_size(crate::signalling::MAX_MESSAGE * 2)
        .on_upgrade(move |socket| session(socket, s))
}

async fn session(socket: WebSocket, s: Arc<Signalling>) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<ToSession>();
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            match m {
                ToSession::Frame(text) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                ToSession::Close => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            }
        }
    });
    let send_error = |tx: &mpsc::UnboundedSender<ToSession>, e: &ProtocolError| {
        let _ = tx.send(ToSession::Frame(ServerMessage::error(e).to_json()));
    };
    let mut me: Option<u64> = None;
    while let Some(Ok(frame)) = stream.next().await {
        let text = match frame {
            Message::Text(t) => t.to_string(),
            Message::Binary(_) => {
                send_error(
                    &tx,
                    &ProtocolError::new(ErrorCode::BadJson, "binary frames are not signalling"),
                );
                continue;
            }
            Message::Close(_) => break,
            _ => continue,
        };
        let msg = match ClientMessage::parse(&text) {
            Ok(m) => m,
            Err(e) => {
                send_error(&tx, &e);
                continue;
            }
        };
        let now = Instant::now();
        match (me, msg) {
            (
                None,
                ClientMessage::Join {
                    room, name, token, ..
                },
            ) => {
                // the session is registered before the hub lock is let go,
                // so the pump cannot route `joined` before it exists
                let joined = {
                    let mut hub = lock(&s.hub);
                    let joined = match hub.as_mut() {
                        Some(h) => h.join(now, &room, &name, token.as_deref()),
                        None => Err(ProtocolError::new(
                            ErrorCode::Internal,
                            "the dataplane is starting; retry",
                        )),
                    };
                    if let Ok(id) = joined {
                        lock(&s.sessions).insert(id, tx.clone());
                    }
                    joined
                };
                match joined {
                    Ok(id) => me = Some(id),
                    Err(e) => {
                        send_error(&tx, &e);
                        if matches!(
                            e.code,
                            ErrorCode::Unauthorized | ErrorCode::Limit | ErrorCode::Internal
                        ) {
                            let _ = tx.send(ToSession::Close);
                            break;
                        }
                    }
                }
            }
            (None, _) => send_error(&tx, &ProtocolError::new(ErrorCode::BadState, "join first")),
            (Some(id), msg) => {
                if let Some(hub) = lock(&s.hub).as_mut() {
                    hub.handle_message(now, id, msg);
                }
            }
        }
    }
    if let Some(id) = me {
        if let Some(hub) = lock(&s.hub).as_mut() {
            hub.disconnect(id);
        }
        lock(&s.sessions).remove(&id);
    }
    drop(tx);
    let _ = writer.await;
}
