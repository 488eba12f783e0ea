#![no_main]
//! Fuzzes switchyard_wire::fuzz::demux.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_wire::fuzz::demux(data));
