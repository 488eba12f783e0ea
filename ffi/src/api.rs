//! The exported functions. Each one runs its body inside `catch_unwind`
//! (no panic crosses into C), returns a [`SwitchyardStatus`], and on
//! failure leaves a detail for `switchyard_last_error` on this thread.
//!
//! Thread safety: every function may be called from any thread. Handles
//! live in a process-wide registry; calls on one handle are serialised by
//! its lock, calls on different handles run in parallel.

use crate::handles;
use crate::status::{Failure, SwitchyardStatus, copy_last, set_last};
use crate::types::{
    self, SWITCHYARD_DROP_REASONS, SwitchyardCounters, SwitchyardEndpoint, SwitchyardEvent,
    SwitchyardIceTcpCounters, SwitchyardPacketInfo, SwitchyardRelay, SwitchyardSource,
    SwitchyardSubscription,
};
use core::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use switchyard_dataplane::abi::{Client, Command, DropReason, PacketHeader, wakeup};

type Result<T> = std::result::Result<T, Failure>;

/// Runs `f`, turning errors and panics into a status.
fn run(f: impl FnOnce() -> Result<SwitchyardStatus>) -> SwitchyardStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            set_last(&e.detail);
            e.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            set_last(&format!("panic in libswitchyard: {what}"));
            SwitchyardStatus::Internal
        }
    }
}

fn null(what: &str) -> Failure {
    Failure::new(SwitchyardStatus::NullArgument, format!("{what} is NULL"))
}

/// A reference from a pointer argument.
///
/// # Safety
/// `p` is NULL or points to a valid `T` for the call's duration.
unsafe fn arg<'a, T>(p: *const T, what: &str) -> Result<&'a T> {
    // SAFETY: the caller's contract; NULL is checked by `as_ref`.
    unsafe { p.as_ref() }.ok_or_else(|| null(what))
}

/// A mutable reference from an out-pointer argument.
///
/// # Safety
/// `p` is NULL or points to a writable `T` for the call's duration.
unsafe fn out<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T> {
    // SAFETY: the caller's contract; NULL is checked by `as_mut`.
    unsafe { p.as_mut() }.ok_or_else(|| null(what))
}

/// A UTF-8 string from a NUL-terminated argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
unsafe fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| {
        Failure::new(
            SwitchyardStatus::BadArgument,
            format!("{what} is not UTF-8"),
        )
    })
}

fn worker(client: &Client, w: u32) -> Result<usize> {
    let w = w as usize;
    if w < client.workers() {
        Ok(w)
    } else {
        Err(Failure::new(
            SwitchyardStatus::NoWorker,
            format!("worker {w} of {}", client.workers()),
        ))
    }
}

fn send(handle: u64, w: u32, cmd: Command) -> Result<SwitchyardStatus> {
    handles::with(handle, |c| {
        let w = worker(c, w)?;
        c.send(w, &cmd)?;
        Ok(SwitchyardStatus::Ok)
    })
}

/// The library version, a static NUL-terminated string.
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_version() -> *const c_char {
    crate::VERSION.as_ptr()
}

/// A static NUL-terminated message for a status code (unknown codes get
/// "unknown status").
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_status_message(status: i32) -> *const c_char {
    SwitchyardStatus::ALL
        .iter()
        .find(|s| **s as i32 == status)
        .map_or(c"unknown status".as_ptr(), |s| s.message().as_ptr())
}

/// Copies this thread's last error detail into `buf` (NUL-terminated,
/// truncated to `cap` bytes) and returns its full length. `buf` may be
/// NULL to ask for the length.
///
/// # Safety
/// `buf` is NULL or points to `cap` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_last_error(buf: *mut c_char, cap: usize) -> usize {
    catch_unwind(|| copy_last(buf, cap)).unwrap_or(0)
}

/// The name of drop reason `index` (`SwitchyardCounters::drops`), or NULL
/// past the last one the struct carries.
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_drop_reason_name(index: u32) -> *const c_char {
    DropReason::ALL[..SWITCHYARD_DROP_REASONS]
        .get(index as usize)
        .map_or(core::ptr::null(), |r| r.c_name().as_ptr())
}

/// Attaches to the dataplane listening on the control socket `socket_path`
/// and stores a handle in `*handle_out`. Attaching makes any earlier
/// client of that dataplane stale (`SUPERSEDED`).
///
/// # Safety
/// `socket_path` is a NUL-terminated string; `handle_out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_attach(
    socket_path: *const c_char,
    handle_out: *mut u64,
) -> SwitchyardStatus {
    run(|| {
        // SAFETY: forwarded caller contract.
        let path = unsafe { text(socket_path, "socket_path") }?;
        // SAFETY: forwarded caller contract.
        let out = unsafe { out(handle_out, "handle_out") }?;
        let client = Client::connect(Path::new(path))
            .map_err(|e| Failure::from(e).with_context(&format!("attaching to {path}")))?;
        *out = handles::insert(client);
        Ok(SwitchyardStatus::Ok)
    })
}

/// Detaches and forgets the handle. The dataplane keeps forwarding; a later
/// attach finds its endpoints in place.
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_detach(handle: u64) -> SwitchyardStatus {
    run(|| {
        handles::remove(handle)?;
        Ok(SwitchyardStatus::Ok)
    })
}

/// The number of workers in `*count_out`.
///
/// # Safety
/// `count_out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_workers(handle: u64, count_out: *mut u32) -> SwitchyardStatus {
    run(|| {
        // SAFETY: forwarded caller contract.
        let out = unsafe { out(count_out, "count_out") }?;
        *out = handles::with(handle, |c| Ok(c.workers() as u32))?;
        Ok(SwitchyardStatus::Ok)
    })
}

/// Worker `worker`'s UDP port in `*port_out`.
///
/// # Safety
/// `port_out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_worker_port(
    handle: u64,
    worker: u32,
    port_out: *mut u16,
) -> SwitchyardStatus {
    run(|| {
        // SAFETY: forwarded caller contract.
        let out = unsafe { out(port_out, "port_out") }?;
        *out = handles::with(handle, |c| {
            let w = self::worker(c, worker)?;
            c.worker_port(w)
                .ok_or_else(|| Failure::new(SwitchyardStatus::NoWorker, "no port"))
        })?;
        Ok(SwitchyardStatus::Ok)
    })
}

/// The ICE-TCP front's port in `*port_out`, 0 when the dataplane runs none
/// (ABI 1.9). A connection reaches the worker its bridge ufrag names in its
/// first two characters (docs/abi.md, "ICE-TCP").
///
/// # Safety
/// `port_out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_ice_tcp_port(
    handle: u64,
    port_out: *mut u16,
) -> SwitchyardStatus {
    run(|| {
        // SAFETY: forwarded caller contract.
        let out = unsafe { out(port_out, "port_out") }?;
        *out = handles::with(handle, |c| Ok(c.ice_tcp_port().unwrap_or(0)))?;
        Ok(SwitchyardStatus::Ok)
    })
}

/// Adds an endpoint on `worker` (the worker whose port its packets reach).
///
/// # Safety
/// `endpoint` points to a valid struct whose `remote` is a NUL-terminated
/// string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_add_endpoint(
    handle: u64,
    worker: u32,
    endpoint: *const SwitchyardEndpoint,
) -> SwitchyardStatus {
    run(|| {
        // SAFETY: forwarded caller contract.
        let e = unsafe { arg(endpoint, "endpoint") }?;
        // SAFETY: forwarded caller contract.
        let remote = types::addr(unsafe { text(e.remote, "endpoint.remote") }?)?;
        let spec = types::endpoint(e, remote)?;
        send(handle, worker, Command::AddEndpoint(spec))
    })
}

/// Removes an endpoint (its subscriptions go with it).
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_remove_endpoint(
    handle: u64,
    worker: u32,
    endpoint: u64,
) -> SwitchyardStatus {
    run(|| send(handle, worker, Command::RemoveEndpoint { endpoint }))
}

/// Moves an endpoint to a new remote address (ICE chose another pair).
///
/// # Safety
/// `remote` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_update_remote(
    handle: u64,
    worker: u32,
    endpoint: u64,
    remote: *const c_char,
) -> SwitchyardStatus {
    run(|| {
        // SAFETY: forwarded caller contract.
        let remote = types::addr(unsafe { text(remote, "remote") }?)?;
        send(handle, worker, Command::UpdateRemote { endpoint, remote })
    })
}

/// Adds a source on every worker.
///
/// # Safety
/// `source` points to a valid struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_add_source(
    handle: u64,
    source: *const SwitchyardSource,
) -> SwitchyardStatus {
    run(|| {
        // SAFETY: forwarded caller contract.
        let spec = types::source(unsafe { arg(source, "source") }?)?;
        handles::with(handle, |c| {
            c.add_source(&spec)?;
            Ok(SwitchyardStatus::Ok)
        })
    })
}

/// Removes a source from every worker.
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_remove_source(handle: u64, source: u64) -> SwitchyardStatus {
    run(|| {
        handles::with(handle, |c| {
            c.remove_source(source)?;
            Ok(SwitchyardStatus::Ok)
        })
    })
}

/// Subscribes an endpoint on `subscriber_worker` to a source whose
/// publisher is on `source_worker` (the same worker when equal).
///
/// # Safety
/// `subscription` points to a valid struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_subscribe(
    handle: u64,
    subscriber_worker: u32,
    source_worker: u32,
    subscription: *const SwitchyardSubscription,
) -> SwitchyardStatus {
    run(|| {
        // SAFETY: forwarded caller contract.
        let spec = types::subscription(unsafe { arg(subscription, "subscription") }?)?;
        handles::with(handle, |c| {
            let (sw, pw) = (worker(c, subscriber_worker)?, worker(c, source_worker)?);
            c.subscribe(sw, pw, &spec)?;
            Ok(SwitchyardStatus::Ok)
        })
    })
}

/// Ends a subscription; `last_on_worker` (nonzero) when no other endpoint
/// on `subscriber_worker` receives this source.
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_unsubscribe(
    handle: u64,
    subscriber_worker: u32,
    source_worker: u32,
    endpoint: u64,
    source: u64,
    last_on_worker: u8,
) -> SwitchyardStatus {
    run(|| {
        handles::with(handle, |c| {
            let (sw, pw) = (worker(c, subscriber_worker)?, worker(c, source_worker)?);
            c.unsubscribe(sw, pw, endpoint, source, last_on_worker != 0)?;
            Ok(SwitchyardStatus::Ok)
        })
    })
}

/// Sets the layer a subscriber wants; the switch happens at that layer's
/// next keyframe.
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_set_target_layer(
    handle: u64,
    worker: u32,
    endpoint: u64,
    source: u64,
    layer: u8,
) -> SwitchyardStatus {
    run(|| {
        if usize::from(layer) >= switchyard_dataplane::abi::command::MAX_LAYERS {
            return Err(Failure::new(
                SwitchyardStatus::BadArgument,
                format!("layer {layer} (0–2)"),
            ));
        }
        send(
            handle,
            worker,
            Command::SetTargetLayer {
                endpoint,
                source,
                layer,
            },
        )
    })
}

/// Marks (`relay` nonzero) or unmarks an endpoint id as a relay to another
/// bridge, on every worker: a relay takes sources only through
/// `switchyard_relay_source`, and what a relay publishes is never relayed
/// again.
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_set_relay(handle: u64, endpoint: u64, relay: u8) -> SwitchyardStatus {
    run(|| {
        handles::with(handle, |c| {
            c.set_relay(endpoint, relay != 0)?;
            Ok(SwitchyardStatus::Ok)
        })
    })
}

/// Forwards the layers of a source published on `source_worker` to a
/// relay endpoint on `relay_worker`, one stream per layer; a layer whose
/// SSRC is 0 is not relayed (its stream, if any, pauses and keeps its
/// numbering: ABI 1.6).
///
/// # Safety
/// `relay` points to a valid struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_relay_source(
    handle: u64,
    relay_worker: u32,
    source_worker: u32,
    relay: *const SwitchyardRelay,
) -> SwitchyardStatus {
    run(|| {
        // SAFETY: forwarded caller contract.
        let spec = types::relay(unsafe { arg(relay, "relay") }?)?;
        handles::with(handle, |c| {
            let (rw, sw) = (worker(c, relay_worker)?, worker(c, source_worker)?);
            c.relay_source(rw, sw, &spec)?;
            Ok(SwitchyardStatus::Ok)
        })
    })
}

/// Stops relaying a source to a relay endpoint on `worker`.
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_unrelay_source(
    handle: u64,
    worker: u32,
    endpoint: u64,
    source: u64,
) -> SwitchyardStatus {
    run(|| send(handle, worker, Command::UnrelaySource { endpoint, source }))
}

/// Asks a source's publisher for a keyframe of `layer` (throttled by the
/// dataplane).
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_request_keyframe(
    handle: u64,
    worker: u32,
    source: u64,
    layer: u8,
) -> SwitchyardStatus {
    run(|| send(handle, worker, Command::RequestKeyframe { source, layer }))
}

/// Pads the streams toward a subscriber up to `target_bps` for
/// `duration_ms` (RTX copies of recent packets) so that its bandwidth
/// estimate learns whether the path carries that much.
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_probe(
    handle: u64,
    worker: u32,
    endpoint: u64,
    target_bps: u64,
    duration_ms: u32,
) -> SwitchyardStatus {
    run(|| {
        send(
            handle,
            worker,
            Command::Probe {
                endpoint,
                target_bps,
                duration_ms,
            },
        )
    })
}

/// Sends a datagram (STUN, DTLS) to `remote` from `worker`'s socket;
/// `endpoint` is the endpoint it belongs to, or 0.
///
/// # Safety
/// `remote` is a NUL-terminated string; `data` points to `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_send_packet(
    handle: u64,
    worker: u32,
    endpoint: u64,
    remote: *const c_char,
    data: *const u8,
    len: usize,
) -> SwitchyardStatus {
    run(|| {
        // SAFETY: forwarded caller contract.
        let remote = types::addr(unsafe { text(remote, "remote") }?)?;
        if data.is_null() {
            return Err(null("data"));
        }
        // SAFETY: non-NULL, and `len` readable bytes by the caller's contract.
        let bytes = unsafe { core::slice::from_raw_parts(data, len) };
        handles::with(handle, |c| {
            let w = self::worker(c, worker)?;
            let header = PacketHeader {
                endpoint,
                remote,
                local_port: c.worker_port(w).unwrap_or(0),
            };
            c.send_packet(w, &header, bytes)?;
            Ok(SwitchyardStatus::Ok)
        })
    })
}

/// Takes the next exception packet (STUN, DTLS, unmatched) from any worker:
/// `OK` with the datagram in `buf` (`*len_out` bytes) and where it came
/// from in `*info_out`, or `EMPTY`. `cap` of at least 1500 is enough.
///
/// # Safety
/// `info_out` and `len_out` are writable; `buf` points to `cap` writable
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_recv_packet(
    handle: u64,
    info_out: *mut SwitchyardPacketInfo,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
) -> SwitchyardStatus {
    run(|| {
        // SAFETY: forwarded caller contract.
        let info = unsafe { out(info_out, "info_out") }?;
        // SAFETY: forwarded caller contract.
        let len = unsafe { out(len_out, "len_out") }?;
        if buf.is_null() {
            return Err(null("buf"));
        }
        // SAFETY: non-NULL, `cap` writable bytes by the caller's contract.
        let buf = unsafe { core::slice::from_raw_parts_mut(buf, cap) };
        handles::with(handle, |c| match c.recv_packet(buf) {
            Some((w, h, n)) => {
                *info = types::packet_info(w, &h);
                *len = n;
                Ok(SwitchyardStatus::Ok)
            }
            None => Ok(SwitchyardStatus::Empty),
        })
    })
}

/// Takes the next event from any worker: `OK` with it in `*event_out`, or
/// `EMPTY`.
///
/// # Safety
/// `event_out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_poll_event(
    handle: u64,
    event_out: *mut SwitchyardEvent,
) -> SwitchyardStatus {
    run(|| {
        // SAFETY: forwarded caller contract.
        let out = unsafe { out(event_out, "event_out") }?;
        handles::with(handle, |c| match c.poll_event() {
            Some((w, e)) => {
                *out = types::event(w, e);
                Ok(SwitchyardStatus::Ok)
            }
            None => Ok(SwitchyardStatus::Empty),
        })
    })
}

/// Sleeps until the dataplane has an event or exception packet for this
/// handle, or `timeout_ms` passed: `OK` when there may be something to
/// read (read until `EMPTY`), `EMPTY` when the time ran out. The first call
/// registers for wake-ups (ABI 1.10); from then on every call that gives a
/// worker commands or datagrams also wakes it. Against a dataplane older
/// than 1.10 it sleeps at most a millisecond and says `OK` (poll).
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_wait(handle: u64, timeout_ms: u32) -> SwitchyardStatus {
    run(|| {
        let entry = handles::get(handle)?;
        let fd = match entry.wake()? {
            handles::Wake::Registered(fd) => fd,
            _ => {
                let pause = std::time::Duration::from_millis(u64::from(timeout_ms.min(1)));
                std::thread::sleep(pause);
                return Ok(SwitchyardStatus::Ok);
            }
        };
        // (a signal left from before is cleared either way)
        let clear = entry.client().prepare_sleep();
        let wait = std::time::Duration::from_millis(if clear { u64::from(timeout_ms) } else { 0 });
        let woken = wakeup::wait(&*fd, wait) || !clear;
        entry.client().end_sleep();
        Ok(if woken {
            SwitchyardStatus::Ok
        } else {
            SwitchyardStatus::Empty
        })
    })
}

/// A snapshot of `worker`'s counters in `*counters_out`.
///
/// # Safety
/// `counters_out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_counters(
    handle: u64,
    worker: u32,
    counters_out: *mut SwitchyardCounters,
) -> SwitchyardStatus {
    run(|| {
        // SAFETY: forwarded caller contract.
        let out = unsafe { out(counters_out, "counters_out") }?;
        handles::with(handle, |c| {
            let w = self::worker(c, worker)?;
            let block = c
                .counters(w)
                .ok_or_else(|| Failure::new(SwitchyardStatus::NoWorker, "no counters"))?;
            *out = types::counters(&block);
            Ok(SwitchyardStatus::Ok)
        })
    })
}

/// A snapshot of the ICE-TCP front's counters in `*counters_out` (all zero
/// when the dataplane runs no front).
///
/// # Safety
/// `counters_out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchyard_ice_tcp_counters(
    handle: u64,
    counters_out: *mut SwitchyardIceTcpCounters,
) -> SwitchyardStatus {
    run(|| {
        // SAFETY: forwarded caller contract.
        let out = unsafe { out(counters_out, "counters_out") }?;
        *out = handles::with(handle, |c| Ok(types::ice_tcp_counters(&c.tcp_counters())))?;
        Ok(SwitchyardStatus::Ok)
    })
}
