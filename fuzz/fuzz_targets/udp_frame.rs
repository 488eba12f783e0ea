#![no_main]
//! Fuzzes switchyard_wire::fuzz::udp_frame.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_wire::fuzz::udp_frame(data));
