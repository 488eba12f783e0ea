//! Bad input of every kind against a running `switchyard`, while a
//! participant in another room looks on: oversized frames, a WebSocket that
//! vanishes mid-handshake or mid-call, STUN with wrong credentials, and a
//! DTLS peer whose certificate is not the one its SDP promised. Each gets a
//! clear error or a counted drop; the server and the other room stay up.

use crate::Server;
use crate::signalling::{CHROME, Ws, connect, expect, join, next, send};
use futures_util::{SinkExt, StreamExt};
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use switchyard_controlplane::dtls::{Certificate, DtlsRole, DtlsSession};
use switchyard_controlplane::sdp::Offer;
use switchyard_wire::stun::{StunMessage, StunWriter, attr};
use tokio_tungstenite::tungstenite::Message;

/// A connectivity check from the browser whose offer was CHROME.
fn check(answer: &Offer, offer: &Offer, pwd: &[u8], txid: u8) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let mut w = StunWriter::new(&mut buf, 0x0001, &[txid; 12]).unwrap();
    w.add(
        attr::USERNAME,
        format!("{}:{}", answer.ice.ufrag, offer.ice.ufrag).as_bytes(),
    )
    .unwrap();
    w.add_u32(attr::PRIORITY, 2_130_706_431).unwrap();
    w.add_u64(attr::ICE_CONTROLLING, 7).unwrap();
    w.add(attr::USE_CANDIDATE, &[]).unwrap();
    w.add_message_integrity(pwd).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf[..n].to_vec()
}

fn recv_stun(socket: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf)
            && StunMessage::new_checked(&buf[..n]).is_ok()
        {
            return buf[..n].to_vec();
        }
    }
    panic!("no STUN response");
}

async fn still_answers(ws: &mut Ws) {
    send(ws, serde_json::json!({"v":1,"type":"ping"})).await;
    assert_eq!(expect(ws, "pong").await["type"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_errors_and_the_other_room_carries_on() {
    // a cut connection may resume for 2 s; then the room is told
    let server = tokio::task::spawn_blocking(|| Server::start_with(&["--resume-grace", "2s"]))
        .await
        .unwrap();
    let health = tokio::task::block_in_place(|| server.healthy(Duration::from_secs(30)));
    let port = health["dataplane"]["ports"][0].as_u64().unwrap() as u16;
    let media = SocketAddr::from(([127, 0, 0, 1], port));

    // the bystander: a participant in another room
    let (mut calm, _) = join(&server, "calm", "Ada").await;

    // oversized frames: over 64 KiB is refused with `too_large` and the
    // connection stays; far over it, the connection is closed
    let mut big = connect(&server).await;
    let pad = "x".repeat(100 * 1024);
    big.send(Message::Text(
        format!(r#"{{"v":1,"type":"ping","pad":"{pad}"}}"#).into(),
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut big).await["code"], "too_large");
    send(&mut big, serde_json::json!({"v":1,"type":"ping"})).await;
    assert_eq!(
        next(&mut big).await["type"],
        "pong",
        "still answering (ping is answered before join too)"
    );
    let _ = big.send(Message::Text("y".repeat(300 << 10).into())).await;
    // what the protocol promises beyond 256 KiB: `too_large`, then close
    // code 1009
    let (error, code) = tokio::time::timeout(Duration::from_secs(10), async {
        let mut error = None;
        while let Some(Ok(m)) = big.next().await {
            match m {
                Message::Text(t) => error = serde_json::from_str::<serde_json::Value>(&t).ok(),
                Message::Close(f) => return (error, f.map(|f| u16::from(f.code))),
                _ => {}
            }
        }
        (error, None)
    })
    .await
    .expect("a 300 KiB frame closes that connection");
    assert_eq!(error.map(|e| e["code"].clone()), Some("too_large".into()));
    assert_eq!(code, Some(1009));
    // far larger: closed too (the client may see a reset: the server stops
    // reading at 256 KiB)
    let mut huge = connect(&server).await;
    let _ = huge.send(Message::Text("y".repeat(4 << 20).into())).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = huge.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a 4 MiB frame closes that connection");

    // a WebSocket that vanishes mid-handshake: half an upgrade request
    tokio::task::block_in_place(|| {
        let mut s = std::net::TcpStream::connect(&server.http).unwrap();
        let _ = s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Up");
    });

    // a participant who offers, then has its TCP connection cut: the room is told
    let (mut gone, _) = join(&server, "calm", "Gone").await;
    send(
        &mut gone,
        serde_json::json!({"v":1,"type":"offer","sdp":CHROME}),
    )
    .await;
    expect(&mut gone, "answer").await;
    expect(&mut calm, "participant_joined").await;
    drop(gone); // no close frame: gone once the resume grace is over
    expect(&mut calm, "participant_left").await;

    // STUN with wrong credentials, then a DTLS peer with the wrong certificate
    let (mut evil, _) = join(&server, "attack", "Mallory").await;
    send(
        &mut evil,
        serde_json::json!({"v":1,"type":"offer","sdp":CHROME}),
    )
    .await;
    let answer = expect(&mut evil, "answer").await;
    let answer = Offer::parse(answer["sdp"].as_str().unwrap()).unwrap();
    let offer = Offer::parse(CHROME).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    udp.send_to(
        &check(&answer, &offer, b"not-the-password-at-all", 1),
        media,
    )
    .unwrap();
    let r = recv_stun(&udp);
    let r = StunMessage::new_checked(&r[..]).unwrap();
    assert_eq!(r.message_type(), 0x0111, "a binding error response");
    let code = r.attribute(attr::ERROR_CODE).expect("ERROR-CODE");
    assert_eq!(
        u16::from(code.value[2]) * 100 + u16::from(code.value[3]),
        401,
        "Unauthorized"
    );
    // with the right password the check passes …
    udp.send_to(&check(&answer, &offer, answer.ice.pwd.as_bytes(), 2), media)
        .unwrap();
    let r = recv_stun(&udp);
    assert_eq!(
        StunMessage::new_checked(&r[..]).unwrap().message_type(),
        0x0101
    );
    // … but the DTLS certificate is not the one CHROME's fingerprint names
    let t0 = Instant::now();
    let mut dtls =
        DtlsSession::new(DtlsRole::Client, &Certificate::generate().unwrap(), t0).unwrap();
    dtls.set_remote_fingerprint(answer.fingerprint);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 2048];
    let error = loop {
        assert!(
            Instant::now() < deadline,
            "no error for the wrong fingerprint"
        );
        let now = Instant::now();
        dtls.handle_timeout(now);
        while let Some(d) = dtls.poll_datagram() {
            udp.send_to(&d, media).unwrap();
        }
        if let Ok(n) = udp.recv(&mut buf) {
            dtls.handle_datagram(now, &buf[..n]);
        }
        // the server checks the fingerprint once the handshake is done,
        // then closes (close_notify) and reports instead of adding keys
        let _ = dtls.poll_event();
        if let Ok(Ok(Some(Ok(Message::Text(t))))) =
            tokio::time::timeout(Duration::from_millis(1), async {
                Ok::<_, ()>(evil.next().await)
            })
            .await
        {
            let m: serde_json::Value = serde_json::from_str(&t).unwrap();
            if m["type"] == "error" {
                break m;
            }
        }
    };
    assert_eq!(error["code"], "internal", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("fingerprint"),
        "{error}"
    );

    // the server and the other room carry on
    still_answers(&mut calm).await;
    let (_, stats) = tokio::task::block_in_place(|| server.get("/stats"));
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["participants"], 1, "only Ada is left: {stats}");
    assert_eq!(
        tokio::task::block_in_place(|| server.healthy(Duration::from_secs(5)))["status"],
        "ok"
    );
}
