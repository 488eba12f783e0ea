//! SRTP protect / unprotect per profile, backend and packet size.
//!
//! `cargo bench -p switchyard-benches --bench srtp`
//! Protect runs in place on one buffer (the same index each time, as a
//! retransmission would). Unprotect needs a fresh, never-seen packet each
//! time (the replay window rejects repeats before any crypto), so each
//! iteration's packet is protected in an untimed setup step.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use switchyard_benches::vp8_packet;
use switchyard_srtp::{Backend, Config, MasterKey, Profile, Session};

fn sessions(profile: Profile, backend: Backend) -> (Session, Session) {
    let key = vec![0x42u8; profile.key_len()];
    let salt = vec![0x24u8; profile.salt_len()];
    let m = MasterKey::new(profile, &key, &salt).expect("key lengths match the profile");
    let c = Config {
        backend: Some(backend),
        ..Config::default()
    };
    (
        Session::new(profile, &m, c).expect("supported"),
        Session::new(profile, &m, c).expect("supported"),
    )
}

fn bench(c: &mut Criterion) {
    for (profile, backend) in Backend::combinations() {
        for size in [200usize, 1200] {
            let id = format!("{}/{}/{size}", profile.name(), backend.name());
            let mut g = c.benchmark_group("srtp");
            g.throughput(Throughput::Bytes(size as u64));
            let (mut tx, mut rx) = sessions(profile, backend);
            let mut buf = vp8_packet(1, 7, size);
            buf.resize(size + 16, 0);
            g.bench_function(format!("protect/{id}"), |b| {
                b.iter(|| black_box(tx.protect_rtp(black_box(&mut buf), size)))
            });
            let mut seq = 0u16;
            let (mut sender, _) = sessions(profile, backend);
            g.bench_function(format!("unprotect/{id}"), |b| {
                b.iter_batched_ref(
                    || {
                        seq = seq.wrapping_add(1);
                        let mut p = vp8_packet(seq, 7, size);
                        p.resize(size + 16, 0);
                        let n = sender.protect_rtp(&mut p, size).expect("protect");
                        p.truncate(n);
                        p
                    },
                    |p| black_box(rx.unprotect_rtp(p)),
                    BatchSize::SmallInput,
                )
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
