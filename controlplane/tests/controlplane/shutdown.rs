//! SIGTERM drains: `/health` says so at once, new joins are refused with
//! `draining`, participants are told (`going_away`) and the process exits 0
//! when the rooms are empty, or at `--drain-timeout` after closing the rest
//! with code 1001.

use crate::Server;
use crate::signalling::{connect, expect, join, next, send};
use futures_util::StreamExt;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn sigterm(server: &Server) {
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&server.child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
}

/// Waits for the process to exit; its status code.
fn exit_code(server: &mut Server, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

async fn close_code(ws: &mut crate::signalling::Ws, within: Duration) -> Option<u16> {
    tokio::time::timeout(within, async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Close(f) = m {
                return f.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_exits_when_the_room_empties() {
    let mut server =
        tokio::task::spawn_blocking(|| Server::start_with(&["--drain-timeout", "60s"]))
            .await
            .unwrap();
    tokio::task::block_in_place(|| server.healthy(Duration::from_secs(30)));
    let (mut ada, _) = join(&server, "standup", "Ada").await;
    sigterm(&server);
    // told at once
    let going = expect(&mut ada, "going_away").await;
    assert_eq!(going["within_s"], 60, "{going}");
    let (status, body) = tokio::task::block_in_place(|| server.get("/health"));
    assert_eq!(status, 503, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "draining", "{health}");
    // a newcomer is refused with the documented code, and closed
    let mut late = connect(&server).await;
    send(
        &mut late,
        serde_json::json!({"v":1,"type":"join","room":"standup","name":"Late"}),
    )
    .await;
    let refusal = next(&mut late).await;
    assert_eq!(refusal["code"], "draining", "{refusal}");
    assert_eq!(
        close_code(&mut late, Duration::from_secs(10)).await,
        Some(1000)
    );
    // the call goes on until its last participant leaves; then exit 0
    send(&mut ada, serde_json::json!({"v":1,"type":"ping"})).await;
    expect(&mut ada, "pong").await;
    let left = Instant::now();
    send(&mut ada, serde_json::json!({"v":1,"type":"leave"})).await;
    let code = tokio::task::block_in_place(|| exit_code(&mut server, Duration::from_secs(20)));
    assert_eq!(code, Some(0), "exit after the room emptied");
    assert!(
        left.elapsed() < Duration::from_secs(15),
        "{:?}",
        left.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_timeout_ends_the_calls_left() {
    let mut server = tokio::task::spawn_blocking(|| Server::start_with(&["--drain-timeout", "2s"]))
        .await
        .unwrap();
    tokio::task::block_in_place(|| server.healthy(Duration::from_secs(30)));
    let (mut bo, _) = join(&server, "stay", "Bo").await;
    let signalled = Instant::now();
    sigterm(&server);
    expect(&mut bo, "going_away").await;
    assert_eq!(
        close_code(&mut bo, Duration::from_secs(20)).await,
        Some(1001)
    );
    assert!(
        signalled.elapsed() >= Duration::from_millis(1800),
        "closed before the timeout: {:?}",
        signalled.elapsed()
    );
    let code = tokio::task::block_in_place(|| exit_code(&mut server, Duration::from_secs(20)));
    assert_eq!(code, Some(0));
}

#[test]
fn a_second_signal_stops_at_once() {
    let mut server = Server::start_with(&["--drain-timeout", "10m"]);
    server.healthy(Duration::from_secs(30));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _ws = rt.block_on(join(&server, "stay", "Cy"));
    sigterm(&server);
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    sigterm(&server);
    assert_eq!(exit_code(&mut server, Duration::from_secs(15)), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(10));
}
