#![no_main]
//! Fuzzes switchyard_controlplane::fuzz::saved_state.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_controlplane::fuzz::saved_state(data));
