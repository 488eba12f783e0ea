#![no_main]
//! Fuzzes switchyard_controlplane::fuzz::cluster_frame.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_controlplane::fuzz::cluster_frame(data));
