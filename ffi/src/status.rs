//! Status codes (stable: C and Python code compares against them), their
//! messages, and the per-thread detail of the last error.

use core::ffi::{CStr, c_char};
use std::cell::RefCell;
use switchyard_dataplane::abi::AbiError;

/// What every `switchyard_*` function returns. Values are stable.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchyardStatus {
    /// Done.
    Ok = 0,
    /// Nothing to read now (events, packets); not an error.
    Empty = 1,
    /// A required pointer argument was NULL.
    NullArgument = -1,
    /// The handle is not (or no longer) attached.
    BadHandle = -2,
    /// Connecting to the control socket or mapping the region failed
    /// (no dataplane there, or permission).
    Connect = -3,
    /// The dataplane speaks an incompatible ABI version.
    Version = -4,
    /// A ring is full: retry after the dataplane drained it.
    Full = -5,
    /// Worker index out of range.
    NoWorker = -6,
    /// Another client attached after this one; detach this handle.
    Superseded = -7,
    /// A message or datagram does not fit its slot / the buffer given.
    TooLarge = -8,
    /// SRTP key or salt of the wrong length for the profile, or an unknown
    /// profile.
    BadKey = -9,
    /// An argument is out of range or does not parse (address, layer count,
    /// kind, rid/mid too long, string not UTF-8).
    BadArgument = -10,
    /// The region is not a Switchyard region.
    BadRegion = -11,
    /// A bug in the library (a caught panic); the handle may be unusable.
    Internal = -12,
}

impl SwitchyardStatus {
    /// Every status, for tests and `switchyard_status_message`.
    pub const ALL: [SwitchyardStatus; 14] = [
        SwitchyardStatus::Ok,
        SwitchyardStatus::Empty,
        SwitchyardStatus::NullArgument,
        SwitchyardStatus::BadHandle,
        SwitchyardStatus::Connect,
        SwitchyardStatus::Version,
        SwitchyardStatus::Full,
        SwitchyardStatus::NoWorker,
        SwitchyardStatus::Superseded,
        SwitchyardStatus::TooLarge,
        SwitchyardStatus::BadKey,
        SwitchyardStatus::BadArgument,
        SwitchyardStatus::BadRegion,
        SwitchyardStatus::Internal,
    ];

    /// A static NUL-terminated message.
    pub fn message(self) -> &'static CStr {
        match self {
            SwitchyardStatus::Ok => c"ok",
            SwitchyardStatus::Empty => c"nothing to read",
            SwitchyardStatus::NullArgument => c"a required pointer argument is NULL",
            SwitchyardStatus::BadHandle => c"not an attached handle",
            SwitchyardStatus::Connect => c"cannot connect to the dataplane's control socket",
            SwitchyardStatus::Version => c"incompatible ABI version",
            SwitchyardStatus::Full => c"ring full, retry later",
            SwitchyardStatus::NoWorker => c"no such worker",
            SwitchyardStatus::Superseded => c"another client has attached",
            SwitchyardStatus::TooLarge => c"too large",
            SwitchyardStatus::BadKey => c"bad SRTP key, salt or profile",
            SwitchyardStatus::BadArgument => c"bad argument",
            SwitchyardStatus::BadRegion => c"not a Switchyard shared-memory region",
            SwitchyardStatus::Internal => c"internal error in libswitchyard",
        }
    }
}

/// An error on its way to the caller: its status and a detail for
/// `switchyard_last_error`.
#[derive(Debug)]
pub struct Failure {
    /// The code returned.
    pub status: SwitchyardStatus,
    /// What exactly went wrong.
    pub detail: String,
}

impl Failure {
    /// A failure with a detail.
    pub fn new(status: SwitchyardStatus, detail: impl Into<String>) -> Failure {
        Failure {
            status,
            detail: detail.into(),
        }
    }
}

impl Failure {
    /// The same failure with what was being done in front of its detail.
    pub fn with_context(self, what: &str) -> Failure {
        Failure {
            status: self.status,
            detail: format!("{what}: {}", self.detail),
        }
    }
}

impl From<AbiError> for Failure {
    fn from(e: AbiError) -> Failure {
        let status = match e {
            AbiError::Io(..) => SwitchyardStatus::Connect,
            AbiError::BadParams | AbiError::BadRegion(_) => SwitchyardStatus::BadRegion,
            AbiError::Version { .. } => SwitchyardStatus::Version,
            AbiError::Full => SwitchyardStatus::Full,
            AbiError::NoWorker(_) => SwitchyardStatus::NoWorker,
            AbiError::Superseded => SwitchyardStatus::Superseded,
            AbiError::TooLarge => SwitchyardStatus::TooLarge,
            // a newer dataplane crate with an error this library predates
            _ => SwitchyardStatus::Internal,
        };
        Failure::new(status, e.to_string())
    }
}

thread_local! {
    static LAST: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Remembers the detail of a failure for this thread.
pub fn set_last(detail: &str) {
    LAST.with(|l| {
        let mut l = l.borrow_mut();
        l.clear();
        l.push_str(detail);
    });
}

/// Copies this thread's last error detail into `buf` (NUL-terminated,
/// truncated to `cap`); returns the full length without the NUL.
pub fn copy_last(buf: *mut c_char, cap: usize) -> usize {
    LAST.with(|l| {
        let l = l.borrow();
        let bytes = l.as_bytes();
        if !buf.is_null() && cap > 0 {
            let n = bytes.len().min(cap - 1);
            // SAFETY: the caller promises `buf` points to `cap` writable
            // bytes; we write `n + 1 <= cap` of them.
            unsafe {
                core::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
                *buf.add(n) = 0;
            }
        }
        bytes.len()
    })
}
