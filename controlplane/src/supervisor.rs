//! Running and watching the dataplane: spawn `switchyard dataplane …` as a
//! child (or attach to one that runs on its own), attach an `abi::Client`,
//! and when the dataplane is gone (the child exited, its control socket
//! closed, it is stopping, or — spawned — its heartbeat stalled) keep what
//! its continuity table holds, start a new one and attach again; the pump
//! then gives the new one the old one's state (`replica`).

use crate::config::DataplaneMode;
use crate::pump_wake::{POLL_EVERY, PumpWake};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchyard_dataplane::abi::{Client, Continuity};

/// Shared view of the dataplane for the rest of the control plane.
#[derive(Default)]
pub struct Dataplane {
    /// The attached client, `None` while (re)starting.
    pub client: Mutex<Option<Client>>,
    /// Process id of the spawned child (0 when attached to an external one).
    pub pid: Mutex<u32>,
    /// How many times the dataplane was (re)started.
    pub starts: Mutex<u32>,
    /// What a dataplane that died last wrote into its continuity table,
    /// until the pump hands it to the next one.
    pub lost: Mutex<Option<Vec<Continuity>>>,
    /// How many times a new dataplane was given back the state of one
    /// that died.
    pub restores: Mutex<u32>,
    /// What the pump sleeps on; the dataplane signals it (wake-ups
    /// registered at each attach).
    pub wake: Arc<PumpWake>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent
    // (plain assignments), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Dataplane {
    /// Runs `f` with the client if attached.
    pub fn with_client<R>(&self, f: impl FnOnce(&mut Client) -> R) -> Option<R> {
        lock(&self.client).as_mut().map(f)
    }

    /// The child's pid (0 if none).
    pub fn pid(&self) -> u32 {
        *lock(&self.pid)
    }

    /// Starts so far.
    pub fn starts(&self) -> u32 {
        *lock(&self.starts)
    }

    /// Restores so far.
    pub fn restores(&self) -> u32 {
        *lock(&self.restores)
    }

    /// Takes the records of the dataplane that died last, once.
    pub fn take_lost(&self) -> Vec<Continuity> {
        lock(&self.lost).take().unwrap_or_default()
    }

    /// Sleeps until the dataplane has packets or events for the pump,
    /// something else signalled [`Dataplane::wake`], or `max` passed.
    /// Attached to a dataplane that takes no wake-ups (older than ABI 1.10),
    /// it polls: a millisecond at most.
    pub fn sleep(&self, max: Duration) {
        let max = match self.with_client(|c| c.wakeups_registered()) {
            Some(false) => max.min(POLL_EVERY),
            _ => max,
        };
        if self.with_client(|c| c.prepare_sleep()).unwrap_or(true) {
            self.wake.wait(max);
        }
        self.with_client(|c| c.end_sleep());
    }

    /// Counts a restore.
    pub fn restored(&self) {
        *lock(&self.restores) += 1;
    }

    /// Detaches from a dataplane that is gone, keeping what its continuity
    /// table holds (the mapping is ours and outlives it).
    fn detach_dead(&self) {
        if let Some(old) = lock(&self.client).take() {
            let records = old.continuity();
            tracing::info!(target: "switchyard::supervisor", records = records.len(), "kept the dead dataplane's continuity records");
            *lock(&self.lost) = Some(records);
        }
    }
}

/// A heartbeat older than this means the dataplane is stuck (stopped, or
/// its control thread hangs): it is killed and replaced.
const HEARTBEAT_STALE_MS: u64 = 5_000;

/// Why an attached dataplane is to be given up, if it is.
fn gone(c: &Client, spawned: bool) -> Option<&'static str> {
    if c.stopping() {
        Some("stopping")
    } else if c.peer_gone() {
        Some("its control socket closed")
    } else if spawned
        && switchyard_dataplane::abi::server::unix_ms().saturating_sub(c.heartbeat_ms())
            > HEARTBEAT_STALE_MS
    {
        Some("no heartbeat")
    } else {
        None
    }
}

/// Registers `wake` with a newly attached client's dataplane, so the pump
/// sleeps until it has something instead of polling; one that cannot
/// (older, or the request failed) is polled.
fn take_wakeups(mut c: Client, wake: &PumpWake) -> Client {
    let Some(fd) = wake.fd() else { return c };
    match c.register_wakeups(fd) {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(target: "switchyard::supervisor", "the dataplane is older than ABI 1.10 (no wake-ups): polled every millisecond")
        }
        Err(e) => {
            tracing::warn!(target: "switchyard::supervisor", error = %e, "wake-ups not registered: the dataplane is polled every millisecond")
        }
    }
    // the pump may have slept through the change
    wake.notify();
    c
}

fn attach(socket: &Path, deadline: Instant) -> Result<Client, String> {
    loop {
        match Client::connect(socket) {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("attaching to {}: {e}", socket.display()));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn spawn(mode: &DataplaneMode, log: &str) -> Result<Child, String> {
    let DataplaneMode::Spawn {
        workers,
        bind,
        base_port,
        ice_tcp_port,
        control_socket,
        io,
    } = mode
    else {
        return Err("not spawning".into());
    };
    let exe = std::env::current_exe().map_err(|e| format!("locating switchyard: {e}"))?;
    Command::new(exe)
        .arg("dataplane")
        .args([
            "--workers",
            &workers.to_string(),
            "--bind",
            &bind.to_string(),
            "--base-port",
            &base_port.to_string(),
            "--ice-tcp-port",
            &ice_tcp_port.map_or("off".to_string(), |p| p.to_string()),
        ])
        .args(io)
        .arg("--control-socket")
        .arg(control_socket)
        // it outlives us: a control plane started after this one adopts it
        .args(["--log", log])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the dataplane: {e}"))
}

/// Keeps a dataplane attached until `stop` is set; then stops the child.
pub fn supervise(
    mode: DataplaneMode,
    log: String,
    state: Arc<Dataplane>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    let socket = match &mode {
        DataplaneMode::Spawn { control_socket, .. } => control_socket.clone(),
        DataplaneMode::Attach(p) => p.clone(),
    };
    let mut backoff = Duration::from_millis(500);
    let mut child: Option<Child> = None;
    // a dataplane that runs on the socket already (left by a control plane
    // before this one) is adopted, calls and all
    let spawned = matches!(mode, DataplaneMode::Spawn { .. });
    let mut adopted = None;
    if spawned
        && let Ok(c) = Client::connect(&socket)
        && gone(&c, true).is_none()
    {
        let pid = c.dataplane_pid();
        let c = take_wakeups(c, &state.wake);
        tracing::info!(target: "switchyard::supervisor", pid, workers = c.workers(), "adopted the running dataplane");
        *lock(&state.pid) = pid;
        *lock(&state.client) = Some(c);
        adopted = Some(pid);
    }
    let mut superseded = false;
    while !stop.load(Ordering::Relaxed) {
        if superseded {
            // another control plane drives the dataplane now: taking it
            // back would start a tug of war; /health says 503 here
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        if lock(&state.client).is_none() {
            adopted = None;
            if spawned && child.is_none() {
                match spawn(&mode, &log) {
                    Ok(c) => {
                        *lock(&state.pid) = c.id();
                        *lock(&state.starts) += 1;
                        tracing::info!(target: "switchyard::supervisor", pid = c.id(), "dataplane started");
                        child = Some(c);
                    }
                    Err(e) => tracing::error!(target: "switchyard::supervisor", "{e}"),
                }
            }
            match attach(&socket, Instant::now() + Duration::from_secs(10)) {
                Ok(c) => {
                    let c = take_wakeups(c, &state.wake);
                    tracing::info!(target: "switchyard::supervisor", workers = c.workers(), "attached to the dataplane");
                    *lock(&state.client) = Some(c);
                    backoff = Duration::from_millis(500);
                }
                Err(e) => {
                    tracing::warn!(target: "switchyard::supervisor", "{e}; retrying in {backoff:?}");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
        if state.with_client(|c| c.superseded()).unwrap_or(false) {
            tracing::error!(target: "switchyard::supervisor", "another switchyard attached to this dataplane (same control socket) and drives it now; this one no longer does and reports itself unhealthy: stop one of them");
            *lock(&state.client) = None;
            superseded = true;
            adopted = None;
            continue;
        }
        let exited = child.as_mut().and_then(|c| c.try_wait().ok().flatten());
        let why = match exited {
            Some(_) => Some("exited"),
            None => state
                .with_client(|c| gone(c, child.is_some() || adopted.is_some()))
                .flatten(),
        };
        if let Some(why) = why.filter(|_| !stop.load(Ordering::Relaxed)) {
            tracing::warn!(target: "switchyard::supervisor", status = ?exited, why, "dataplane gone; restarting and restoring its state");
            state.detach_dead();
            if let Some(mut c) = child.take() {
                // a stuck one still holds the ports
                let _ = c.kill();
                let _ = c.wait();
            }
            if let Some(pid) = adopted.take() {
                signal(pid, rustix::process::Signal::KILL);
            }
        }
    }
    *lock(&state.client) = None;
    if superseded {
        // the dataplane is the other control plane's now
        return;
    }
    if let Some(pid) = adopted {
        // not our child: stopped by its pid, and watched until it is gone
        signal(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(pid) {
            signal(pid, rustix::process::Signal::KILL);
        }
        return;
    }
    if let Some(mut c) = child {
        terminate(&c);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// Whether process `pid` still runs (not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Sends SIGTERM to a child so it stops cleanly.
fn terminate(child: &Child) {
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::TERM,
    );
}
