//! `switchyard-fuzz-random [SECONDS]`: runs every fuzz entry point (the same
//! functions the `cargo fuzz` targets in `fuzz/` call) over random and
//! mutated inputs for a bounded time: the packet parsers, SRTP and the
//! control plane's (signalling, SDP, ABI commands, saved state, cluster
//! frames, ICE, registry records). CI runs it (scripts/test.sh; the
//! coverage-guided `cargo fuzz` runs with `FUZZ=cargo`); a panic fails the
//! run and prints the input in hex.

use std::time::{Duration, Instant};
use switchyard_benches::vp8_packet;

/// xorshift64*: fast, seedable, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Valid packets to mutate, so that inputs get past the first checks.
fn seeds() -> Vec<Vec<u8>> {
    let mut rtcp = vec![0x81, 201, 0, 7, 0, 0, 0, 1];
    rtcp.extend([0u8; 24]);
    rtcp.extend([
        0x8f, 205, 0, 5, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1, 0, 3, 0, 0, 0, 9, 0x20, 0x03, 0x01, 0x02,
    ]);
    let stun = {
        let mut b = [0u8; 128];
        let mut w = switchyard_wire::stun::StunWriter::new(&mut b, 1, &[1; 12]).expect("room");
        let _ = w.add(switchyard_wire::stun::attr::USERNAME, b"ab:cd");
        let _ = w.add_message_integrity(b"key");
        let _ = w.add_fingerprint();
        let n = w.finish();
        b[..n].to_vec()
    };
    vec![
        vp8_packet(1, 2, 200),
        rtcp,
        stun,
        vec![0x7c, 0x85, 1, 2],
        vec![0xaa, 0x81, 2, 0, 7],
        // the control plane's text formats
        br#"{"v":1,"type":"join","room":"r","name":"Ada","id":1}"#.to_vec(),
        b"v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
          m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
          a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijkl\r\n\
          a=fingerprint:sha-256 00:11\r\na=setup:actpass\r\na=rtpmap:111 opus/48000/2\r\n"
            .to_vec(),
    ]
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], out: &mut Vec<u8>) {
    out.clear();
    if rng.below(4) == 0 {
        let len = rng.below(400);
        out.extend((0..len).map(|_| rng.next() as u8));
        return;
    }
    out.extend_from_slice(&seeds[rng.below(seeds.len())]);
    for _ in 0..=rng.below(8) {
        match rng.below(4) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            2 => out.truncate(rng.below(out.len() + 1)),
            _ => out.extend((0..rng.below(16)).map(|_| rng.next() as u8)),
        }
    }
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe_u64);
    let mut targets: Vec<(&str, switchyard_wire::fuzz::Target)> =
        switchyard_wire::fuzz::TARGETS.to_vec();
    targets.push(("srtp_unprotect", switchyard_srtp::fuzz::unprotect));
    {
        use switchyard_controlplane::fuzz;
        targets.extend([
            (
                "cp_signalling",
                fuzz::signalling as switchyard_wire::fuzz::Target,
            ),
            ("cp_sdp_offer", fuzz::sdp_offer),
            ("cp_abi_command", fuzz::abi_command),
            ("cp_saved_state", fuzz::saved_state),
            ("cp_cluster_frame", fuzz::cluster_frame),
            ("cp_ice", fuzz::ice),
            ("cp_registry_record", fuzz::registry_record),
        ]);
    }
    let seeds = seeds();
    let budget = Duration::from_secs(secs) / targets.len() as u32;
    let mut input = Vec::new();
    println!(
        "fuzz-random: {} targets, {:?} each, seed {seed:#x}",
        targets.len(),
        budget
    );
    for (name, target) in targets {
        let mut rng = Rng(seed ^ name.len() as u64 ^ 0x9e37_79b9_7f4a_7c15);
        let start = Instant::now();
        let mut runs = 0u64;
        while start.elapsed() < budget {
            for _ in 0..256 {
                mutate(&mut rng, &seeds, &mut input);
                let result = std::panic::catch_unwind(|| target(&input));
                if result.is_err() {
                    eprintln!("fuzz-random: {name} panicked on input {}", hex(&input));
                    std::process::exit(1);
                }
                runs += 1;
            }
        }
        println!("  {name:<20} {runs:>10} inputs, no panic");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
