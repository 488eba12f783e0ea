#![no_main]
//! Fuzzes switchyard_controlplane::fuzz::registry_record.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_controlplane::fuzz::registry_record(data));
