//! Signalling over real WebSockets against the `switchyard` binary: join,
//! offer/answer with a Chrome offer, the server's renegotiation offer to
//! the first participant, protocol errors, leaving.

use crate::Server;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub const CHROME: &str = include_str!("../../src/sdp/testdata/chrome_simulcast_offer.sdp");

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(server: &Server) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.http))
        .await
        .expect("websocket");
    ws
}

pub async fn send(ws: &mut Ws, v: serde_json::Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

pub async fn next(ws: &mut Ws) -> serde_json::Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message")
            .expect("open")
            .unwrap();
        if let Message::Text(t) = frame {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Connects and joins `room` as `name`; returns the socket and `joined`.
pub async fn join(server: &Server, room: &str, name: &str) -> (Ws, serde_json::Value) {
    let mut ws = connect(server).await;
    send(
        &mut ws,
        serde_json::json!({"v":1,"type":"join","room":room,"name":name}),
    )
    .await;
    let joined = expect(&mut ws, "joined").await;
    (ws, joined)
}

/// Reads until a message of `kind`, returning it.
pub async fn expect(ws: &mut Ws, kind: &str) -> serde_json::Value {
    for _ in 0..20 {
        let m = next(ws).await;
        if m["type"] == kind {
            return m;
        }
    }
    panic!("no {kind}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_offer_answer_renegotiate_and_leave() {
    let server = tokio::task::spawn_blocking(Server::start).await.unwrap();
    let health = {
        let s = &server;
        tokio::task::block_in_place(|| s.healthy(Duration::from_secs(30)))
    };
    let port = health["dataplane"]["ports"][0].as_u64().unwrap();

    let mut a = connect(&server).await;
    // protocol errors keep the connection
    a.send(Message::Text("{nope".into())).await.unwrap();
    assert_eq!(next(&mut a).await["code"], "bad_json");
    send(
        &mut a,
        serde_json::json!({"v":1,"type":"offer","sdp":CHROME}),
    )
    .await;
    assert_eq!(next(&mut a).await["code"], "bad_state");
    send(&mut a, serde_json::json!({"v":1,"type":"dance"})).await;
    assert_eq!(next(&mut a).await["code"], "unknown_message");
    // a keepalive is answered before `join` too
    send(&mut a, serde_json::json!({"v":1,"type":"ping"})).await;
    assert_eq!(next(&mut a).await["type"], "pong");

    send(
        &mut a,
        serde_json::json!({"v":1,"type":"join","room":"standup","name":"Ada"}),
    )
    .await;
    let joined = next(&mut a).await;
    assert_eq!(
        (
            joined["type"].as_str(),
            joined["participants"].as_array().map(Vec::len)
        ),
        (Some("joined"), Some(0))
    );
    send(
        &mut a,
        serde_json::json!({"v":1,"type":"offer","sdp":"v=0\r\nbroken"}),
    )
    .await;
    assert_eq!(next(&mut a).await["code"], "bad_sdp");
    send(
        &mut a,
        serde_json::json!({"v":1,"type":"offer","sdp":CHROME}),
    )
    .await;
    let answer = expect(&mut a, "answer").await;
    let sdp = answer["sdp"].as_str().unwrap();
    assert!(sdp.contains("a=ice-lite"), "{sdp}");
    assert!(
        sdp.contains(&format!(" {port} typ host")),
        "candidate on the worker port: {sdp}"
    );

    let (mut b, joined) = join(&server, "standup", "Bo").await;
    assert_eq!(
        joined["participants"][0]["sources"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        expect(&mut a, "participant_joined").await["participant"]["name"],
        "Bo"
    );
    send(
        &mut b,
        serde_json::json!({"v":1,"type":"offer","sdp":CHROME.replace("Brw5", "Brw7")}),
    )
    .await;
    expect(&mut b, "answer").await;
    let offer_b = expect(&mut b, "offer").await;
    assert_eq!(offer_b["sdp"].as_str().unwrap().matches("m=").count(), 4);
    assert_eq!(
        expect(&mut a, "source_added").await["participant"],
        joined["id"],
        "B's own id, from its joined"
    );
    expect(&mut a, "offer").await;

    let (_, stats) = tokio::task::block_in_place(|| server.get("/stats"));
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(
        (stats["rooms"].as_u64(), stats["participants"].as_u64()),
        (Some(1), Some(2))
    );

    // B leaves by closing its socket: A is told
    let _ = b.close(None).await;
    drop(b);
    expect(&mut a, "participant_left").await;
}
