#![no_main]
//! Fuzzes SRTP and SRTCP unprotect for every profile.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_srtp::fuzz::unprotect(data));
