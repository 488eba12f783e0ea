#![no_main]
//! Fuzzes switchyard_wire::fuzz::framing.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_wire::fuzz::framing(data));
