//! `libswitchyard`: a C ABI over the dataplane's shared-memory interface, so
//! that a control plane in any language (C, Go, Java, Node, Python) can
//! attach to a running `switchyard-dataplane` and do what the Rust control
//! plane does: endpoints with their SRTP keys, sources, subscriptions,
//! target layers, keyframe requests, exception packets (STUN, DTLS),
//! events and counters.
//!
//! The header `ffi/include/switchyard.h` is generated from this crate by
//! cbindgen (`tests/header.rs` fails when it is stale); docs/ffi.md has a
//! complete C example and `ffi/examples/` a Python `ctypes` one.
//!
//! Conventions: every function returns a [`SwitchyardStatus`] (0 = ok,
//! 1 = nothing to read, negative = error); on error
//! [`switchyard_last_error`] gives this thread's detail. No panic crosses
//! the boundary. Handles are integers, so a stale one is an error, not a
//! crash. Every function is thread-safe.

mod api;
mod handles;
mod status;
mod types;

pub use api::*;
pub use status::SwitchyardStatus;
pub use types::*;

use core::ffi::CStr;

static VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("version string has an interior NUL"),
    };

#[cfg(test)]
mod tests {
    use super::*;
    use core::ffi::CStr;

    #[test]
    fn version_is_the_crate_version() {
        let p = switchyard_version();
        // SAFETY: the pointer comes from a `&'static CStr`.
        let s = unsafe { CStr::from_ptr(p) };
        assert_eq!(s.to_str().unwrap(), switchyard_dataplane::VERSION);
    }

    #[test]
    fn every_status_has_a_message_and_unknown_ones_too() {
        for s in SwitchyardStatus::ALL {
            // SAFETY: static NUL-terminated strings.
            let m = unsafe { CStr::from_ptr(switchyard_status_message(s as i32)) };
            assert!(!m.to_bytes().is_empty());
        }
        // SAFETY: as above.
        let m = unsafe { CStr::from_ptr(switchyard_status_message(-999)) };
        assert_eq!(m.to_str().unwrap(), "unknown status");
    }

    #[test]
    fn errors_without_a_dataplane() {
        let mut h = 0u64;
        // SAFETY: valid string and out-pointer.
        let s = unsafe { switchyard_attach(c"/nonexistent/dp.sock".as_ptr(), &mut h) };
        assert_eq!(s, SwitchyardStatus::Connect);
        let mut buf = [0 as core::ffi::c_char; 256];
        // SAFETY: `buf` has 256 writable bytes.
        let n = unsafe { switchyard_last_error(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: NUL-terminated by `switchyard_last_error`.
        let detail = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert!(detail.contains("/nonexistent/dp.sock"), "{detail}");
        assert_eq!(n, detail.len());
        // SAFETY: NULL arguments are what is tested.
        let s = unsafe { switchyard_attach(core::ptr::null(), &mut h) };
        assert_eq!(s, SwitchyardStatus::NullArgument);
        assert_eq!(switchyard_detach(12345), SwitchyardStatus::BadHandle);
        assert_eq!(
            switchyard_remove_source(12345, 1),
            SwitchyardStatus::BadHandle
        );
        let mut n = 0u32;
        // SAFETY: valid out-pointer.
        let s = unsafe { switchyard_workers(777, &mut n) };
        assert_eq!(s, SwitchyardStatus::BadHandle);
        // a truncated copy stays NUL-terminated
        let mut small = [1 as core::ffi::c_char; 4];
        // SAFETY: 4 writable bytes.
        let full = unsafe { switchyard_last_error(small.as_mut_ptr(), small.len()) };
        assert!(full > 3);
        assert_eq!(small[3], 0);
    }

    #[test]
    fn drop_reasons_are_named_in_order() {
        assert!(!switchyard_drop_reason_name(0).is_null());
        assert!(switchyard_drop_reason_name(SWITCHYARD_DROP_REASONS as u32).is_null());
        // SAFETY: static NUL-terminated string.
        let n = unsafe { CStr::from_ptr(switchyard_drop_reason_name(15)) };
        assert_eq!(n.to_str().unwrap(), "padding");
    }
}
