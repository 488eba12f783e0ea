//! A safe, test-only wrapper over libsrtp2 (Debian `libsrtp2-dev`), the
//! independent SRTP implementation that switchyard-srtp is checked against.
//! Not used by any shipping binary.

/// Profiles by DTLS-SRTP id, as the C shim numbers them.
pub const CM_80: i32 = 1;
/// AES128_CM_HMAC_SHA1_32.
pub const CM_32: i32 = 2;
/// AEAD_AES_128_GCM.
pub const GCM_128: i32 = 7;
/// AEAD_AES_256_GCM.
pub const GCM_256: i32 = 8;

/// Which way a libsrtp session works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `ssrc_any_outbound`: protects.
    Outbound,
    /// `ssrc_any_inbound`: unprotects.
    Inbound,
}

/// Why libsrtp refused an operation: its `srtp_err_status_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub i32);

#[cfg(not(libsrtp_missing))]
mod ffi {
    use core::ffi::{c_int, c_uchar, c_ulong, c_void};
    unsafe extern "C" {
        pub fn sy_init() -> c_int;
        pub fn sy_create(
            profile: c_int,
            key_salt: *const c_uchar,
            inbound: c_int,
            window: c_ulong,
        ) -> *mut c_void;
        pub fn sy_destroy(session: *mut c_void);
        pub fn sy_protect(s: *mut c_void, buf: *mut c_uchar, len: *mut c_int) -> c_int;
        pub fn sy_unprotect(s: *mut c_void, buf: *mut c_uchar, len: *mut c_int) -> c_int;
        pub fn sy_protect_rtcp(s: *mut c_void, buf: *mut c_uchar, len: *mut c_int) -> c_int;
        pub fn sy_unprotect_rtcp(s: *mut c_void, buf: *mut c_uchar, len: *mut c_int) -> c_int;
        pub fn sy_max_trailer() -> c_int;
    }
}

/// One libsrtp session (`srtp_t`).
#[cfg(not(libsrtp_missing))]
pub struct Libsrtp {
    session: *mut core::ffi::c_void,
}

#[cfg(not(libsrtp_missing))]
impl Libsrtp {
    /// Creates a session; `key_salt` is the master key then the master salt.
    pub fn new(
        profile: i32,
        key_salt: &[u8],
        direction: Direction,
        window: u64,
    ) -> Result<Libsrtp, String> {
        let need = match profile {
            CM_80 | CM_32 => 30,
            GCM_128 => 28,
            GCM_256 => 44,
            _ => return Err(format!("unknown profile {profile}")),
        };
        if key_salt.len() != need {
            return Err(format!(
                "profile {profile} needs {need} bytes of key and salt"
            ));
        }
        static INIT: std::sync::Once = std::sync::Once::new();
        // SAFETY: srtp_init has no preconditions; Once runs it a single time
        // before any session exists.
        INIT.call_once(|| unsafe {
            ffi::sy_init();
        });
        let inbound = i32::from(direction == Direction::Inbound);
        // SAFETY: key_salt holds exactly the bytes libsrtp reads for this
        // profile (checked above); srtp_create copies the key.
        let session = unsafe { ffi::sy_create(profile, key_salt.as_ptr(), inbound, window as _) };
        if session.is_null() {
            return Err("srtp_create failed".into());
        }
        Ok(Libsrtp { session })
    }

    fn call(
        &mut self,
        f: unsafe extern "C" fn(*mut core::ffi::c_void, *mut u8, *mut i32) -> i32,
        packet: &[u8],
        grow: bool,
    ) -> Result<Vec<u8>, Status> {
        // SAFETY: sy_max_trailer only returns a compile-time constant.
        let max_trailer = unsafe { ffi::sy_max_trailer() } as usize;
        let trailer = if grow { max_trailer } else { 0 };
        let mut buf = packet.to_vec();
        buf.resize(packet.len() + trailer, 0);
        let mut len = packet.len() as i32;
        // SAFETY: `buf` is valid for `len + trailer` bytes, the most libsrtp
        // writes; `self.session` is live until drop.
        let status = unsafe { f(self.session, buf.as_mut_ptr(), &mut len) };
        if status != 0 {
            return Err(Status(status));
        }
        buf.truncate(len as usize);
        Ok(buf)
    }

    /// srtp_protect.
    pub fn protect(&mut self, rtp: &[u8]) -> Result<Vec<u8>, Status> {
        self.call(ffi::sy_protect, rtp, true)
    }
    /// srtp_unprotect.
    pub fn unprotect(&mut self, srtp: &[u8]) -> Result<Vec<u8>, Status> {
        self.call(ffi::sy_unprotect, srtp, false)
    }
    /// srtp_protect_rtcp.
    pub fn protect_rtcp(&mut self, rtcp: &[u8]) -> Result<Vec<u8>, Status> {
        self.call(ffi::sy_protect_rtcp, rtcp, true)
    }
    /// srtp_unprotect_rtcp.
    pub fn unprotect_rtcp(&mut self, srtcp: &[u8]) -> Result<Vec<u8>, Status> {
        self.call(ffi::sy_unprotect_rtcp, srtcp, false)
    }
}

#[cfg(not(libsrtp_missing))]
impl Drop for Libsrtp {
    fn drop(&mut self) {
        // SAFETY: the session came from srtp_create and is freed once.
        unsafe { ffi::sy_destroy(self.session) };
    }
}

/// Stand-in when libsrtp2 was not found at build time: every constructor
/// fails with the fix.
#[cfg(libsrtp_missing)]
pub struct Libsrtp;

#[cfg(libsrtp_missing)]
impl Libsrtp {
    /// Always fails: libsrtp2 was not found when building.
    pub fn new(_: i32, _: &[u8], _: Direction, _: u64) -> Result<Libsrtp, String> {
        Err("libsrtp2 was not found at build time: run `apt-get install -y libsrtp2-dev pkg-config` (scripts/test.sh does)".into())
    }
    /// Unreachable without a session.
    pub fn protect(&mut self, _: &[u8]) -> Result<Vec<u8>, Status> {
        Err(Status(-1))
    }
    /// Unreachable without a session.
    pub fn unprotect(&mut self, _: &[u8]) -> Result<Vec<u8>, Status> {
        Err(Status(-1))
    }
    /// Unreachable without a session.
    pub fn protect_rtcp(&mut self, _: &[u8]) -> Result<Vec<u8>, Status> {
        Err(Status(-1))
    }
    /// Unreachable without a session.
    pub fn unprotect_rtcp(&mut self, _: &[u8]) -> Result<Vec<u8>, Status> {
        Err(Status(-1))
    }
}
