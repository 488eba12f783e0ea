//! End-to-end tests of the real `switchyard-dataplane` binary, driven
//! through `abi::Client` with peers on loopback UDP sockets. Every scenario
//! that touches packet I/O runs once per backend.

mod forwarding;
mod garbage;
mod harness;
mod reattach;
