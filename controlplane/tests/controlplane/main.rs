//! End-to-end tests of the `switchyard` binary. One module per scenario.

mod abuse;
mod aiortc;
mod bad_input;
mod browser;
mod capture;
mod cascade;
mod chat;
mod cluster;
mod devices;
mod exposure;
mod ice_restart;
mod ice_tcp;
mod ipv6;
mod lastn;
mod media_path;
mod moderator;
mod netns;
mod resume;
mod screen;
mod screenshots;
mod shards;
mod shared_bridges;
mod shutdown;
mod signalling;
mod simulcast;
mod supervisor;
mod survive;
mod turn;
mod webrtcbin;
mod xdp;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `host:port` of the first `http://` URL in the first line `child`
/// prints (its banner; its stdout piped).
pub fn banner_http(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .unwrap();
    line.split("http://")
        .nth(1)
        .and_then(|r| r.split(|c: char| c == '/' || c.is_whitespace()).next())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| panic!("banner: {line:?}"))
        .to_string()
}

/// A running `switchyard`, terminated on drop.
pub struct Server {
    pub child: Child,
    pub http: String,
    pub dir: std::path::PathBuf,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// With extra flags, e.g. `["--join-deadline", "2"]`.
    pub fn start_with(extra: &[&str]) -> Server {
        Server::start_on(None, extra)
    }

    /// On the control socket `socket` (default: its own), with extra flags.
    pub fn start_on(socket: Option<&std::path::Path>, extra: &[&str]) -> Server {
        let dir =
            std::env::temp_dir().join(format!("swyd-cp-{}-{}", std::process::id(), rand_suffix()));
        switchyard_dataplane::abi::access::prepare_socket_dir(&dir).unwrap();
        let socket = socket.map_or_else(|| dir.join("dp.sock"), |s| s.to_path_buf());
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([
                "--http",
                "127.0.0.1:0",
                "--https",
                "127.0.0.1:0",
                "--workers",
                "1",
                "--base-port",
                "0",
                "--ice-tcp-port",
                "0",
                "--log",
                "warn",
            ])
            .arg("--control-socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(&dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start switchyard");
        let http = banner_http(&mut child);
        Server { child, http, dir }
    }

    /// GET a path; (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.http, path)
    }

    /// Waits until `/health` answers 200 and returns its JSON.
    pub fn healthy(&self, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let (status, body) = self.get("/health");
            if status == 200 {
                return serde_json::from_str(&body).unwrap();
            }
            assert!(Instant::now() < deadline, "not healthy: {status} {body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// GET `http://{addr}{path}`: (status, body), `(0, "")` when nothing
/// answers.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Stops a `switchyard`: SIGTERM first, so that it stops its dataplane
/// child, then a kill after 10 s.
pub fn stop(child: &mut Child) {
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::TERM,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
