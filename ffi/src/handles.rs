//! Handles: integers naming attached clients in a process-wide registry, so
//! that a stale or made-up handle is an error code, never a dangling
//! pointer. Handles are never reused.

use crate::status::{Failure, SwitchyardStatus};
use rustix::fd::{AsFd, OwnedFd};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use switchyard_dataplane::abi::Client;

/// An attached client; calls on one handle are serialised by its mutex.
pub type Shared = Arc<Entry>;

/// A handle's client and its wake-up eventfd.
pub struct Entry {
    client: Mutex<Client>,
    wake: Mutex<Wake>,
}

/// Whether a handle's client takes wake-ups (ABI 1.10).
#[derive(Clone)]
pub enum Wake {
    /// Not asked yet (asked at the first `switchyard_wait`).
    Unasked,
    /// Registered: the eventfd the dataplane signals.
    Registered(Arc<OwnedFd>),
    /// The dataplane is older than 1.10: poll.
    Unsupported,
}

impl Entry {
    /// The client, locked.
    pub fn client(&self) -> MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The client's wake-up eventfd, registered at the first call.
    pub fn wake(&self) -> Result<Wake, Failure> {
        let mut wake = self.wake.lock().unwrap_or_else(|p| p.into_inner());
        if let Wake::Unasked = *wake {
            let fd = rustix::event::eventfd(
                0,
                rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
            )
            .map_err(|e| Failure::new(SwitchyardStatus::Internal, format!("eventfd: {e}")))?;
            *wake = if self.client().register_wakeups(fd.as_fd())? {
                Wake::Registered(Arc::new(fd))
            } else {
                Wake::Unsupported
            };
        }
        Ok(wake.clone())
    }
}

static NEXT: AtomicU64 = AtomicU64::new(1);
static HANDLES: Mutex<Option<HashMap<u64, Shared>>> = Mutex::new(None);

fn registry() -> MutexGuard<'static, Option<HashMap<u64, Shared>>> {
    // a panic while holding it was caught at the boundary; the map is intact
    HANDLES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers a client; returns its handle.
pub fn insert(client: Client) -> u64 {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    registry().get_or_insert_with(HashMap::new).insert(
        id,
        Arc::new(Entry {
            client: Mutex::new(client),
            wake: Mutex::new(Wake::Unasked),
        }),
    );
    id
}

/// The client behind `handle`.
pub fn get(handle: u64) -> Result<Shared, Failure> {
    registry()
        .as_ref()
        .and_then(|m| m.get(&handle).cloned())
        .ok_or_else(|| Failure::new(SwitchyardStatus::BadHandle, format!("no handle {handle}")))
}

/// Forgets `handle`; the client detaches when its last user is done.
pub fn remove(handle: u64) -> Result<(), Failure> {
    registry()
        .as_mut()
        .and_then(|m| m.remove(&handle))
        .map(|_| ())
        .ok_or_else(|| Failure::new(SwitchyardStatus::BadHandle, format!("no handle {handle}")))
}

/// Runs `f` with the client behind `handle`, locked; then wakes the
/// workers it gave commands or datagrams (when wake-ups are registered).
pub fn with<R>(
    handle: u64,
    f: impl FnOnce(&mut Client) -> Result<R, Failure>,
) -> Result<R, Failure> {
    let shared = get(handle)?;
    let mut client = shared.client();
    let result = f(&mut client);
    client.wake_workers();
    result
}
