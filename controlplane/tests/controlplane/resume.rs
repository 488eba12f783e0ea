//! A participant whose signalling connection drops carries on with
//! `resume` and its token: same id, and what it missed arrives after
//! `resumed`. One that does not come back within `--resume-grace` leaves.

use crate::Server;
use crate::signalling::{connect, expect, join, next, send};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_as_the_same_participant() {
    let server = tokio::task::spawn_blocking(|| Server::start_with(&["--resume-grace", "3s"]))
        .await
        .unwrap();
    tokio::task::block_in_place(|| server.healthy(Duration::from_secs(30)));
    let (ada, joined) = join(&server, "standup", "Ada").await;
    let token = joined["resume_token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 32, "{joined}");
    drop(ada); // the connection drops without `leave`
    tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, body) = server.get("/stats");
            let stats: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if stats["signalling"]["detached"] == 1 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never detached: {stats}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    // meanwhile Bo joins: Ada misses participant_joined
    let (mut bo, joined_bo) = join(&server, "standup", "Bo").await;
    assert_eq!(
        joined_bo["participants"][0]["id"], joined["id"],
        "Ada is still in the room while she may resume"
    );
    // a wrong token is refused and the connection kept
    let mut again = connect(&server).await;
    send(
        &mut again,
        serde_json::json!({"v":1,"type":"resume","token":"0".repeat(32)}),
    )
    .await;
    assert_eq!(next(&mut again).await["code"], "resume_failed");
    // the right one: same id, then the backlog
    send(
        &mut again,
        serde_json::json!({"v":1,"type":"resume","token":token}),
    )
    .await;
    let resumed = next(&mut again).await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    assert_eq!(resumed["id"], joined["id"]);
    let missed = expect(&mut again, "participant_joined").await;
    assert_eq!(missed["participant"]["name"], "Bo");
    send(&mut again, serde_json::json!({"v":1,"type":"ping"})).await;
    expect(&mut again, "pong").await;
    // dropped again and not back within the grace: Ada leaves the room
    drop(again);
    let left = expect(&mut bo, "participant_left").await;
    assert_eq!(left["id"], joined["id"]);
    let mut late = connect(&server).await;
    send(
        &mut late,
        serde_json::json!({"v":1,"type":"resume","token":token}),
    )
    .await;
    assert_eq!(next(&mut late).await["code"], "resume_failed");
}
