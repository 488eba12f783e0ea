//! Handles: integers naming attached clients in a process-wide registry, so
//! that a stale or made-up handle is an error code, never a dangling
//! pointer. Handles are never reused.

use crate::status::{Failure, SwitchyardStatus};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use switchyard_dataplane::abi::Client;

/// An attached client; calls on one handle are serialised by its mutex.
pub type Shared = Arc<Mutex<Client>>;

static NEXT: AtomicU64 = AtomicU64::new(1);
static HANDLES: Mutex<Option<HashMap<u64, Shared>>> = Mutex::new(None);

fn registry() -> MutexGuard<'static, Option<HashMap<u64, Shared>>> {
    // a panic while holding it was caught at the boundary; the map is intact
    HANDLES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers a client; returns its handle.
pub fn insert(client: Client) -> u64 {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    registry()
        .get_or_insert_with(HashMap::new)
        .insert(id, Arc::new(Mutex::new(client)));
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

/// Runs `f` with the client behind `handle`, locked.
pub fn with<R>(
    handle: u64,
    f: impl FnOnce(&mut Client) -> Result<R, Failure>,
) -> Result<R, Failure> {
    let shared = get(handle)?;
    let mut client = shared.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut client)
}
