//! `switchyard-pktgen`: the load generator. It will play many real clients
//! (signalling, ICE, DTLS, SRTP) against a running Switchyard; that needs
//! the control plane, so for now it only explains itself.

fn main() {
    println!(
        "switchyard-pktgen {}: not yet — it needs a running control plane to play clients against.\n\
         Micro-benchmarks: cargo bench -p switchyard-benches",
        env!("CARGO_PKG_VERSION")
    );
}
