//! The C ABI of Switchyard (library name `switchyard`).
//!
//! Today it exports the library version; the C-ABI issue adds the dataplane
//! client (header generated with cbindgen, tested from C).

use core::ffi::{CStr, c_char};

static VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("version string has an interior NUL"),
    };

/// The library version as a NUL-terminated string with static lifetime.
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_version() -> *const c_char {
    VERSION.as_ptr()
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_is_the_crate_version() {
        let p = super::switchyard_version();
        // SAFETY: the pointer comes from a `&'static CStr`.
        let s = unsafe { core::ffi::CStr::from_ptr(p) };
        assert_eq!(s.to_str().unwrap(), switchyard_dataplane::VERSION);
    }
}
