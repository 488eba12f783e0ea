//! Property tests: protect → unprotect is the identity for every profile and
//! backend, across reordering and the sequence-number wrap, and arbitrary
//! bytes never panic unprotect.

use crate::{combinations, pair, rtp};
use proptest::prelude::*;
use switchyard_srtp::Config;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_with_reordering_and_wrap(
        start in 65300u16..=65535,
        order in Just((0..300usize).collect::<Vec<_>>()).prop_shuffle(),
        sizes in proptest::collection::vec(0usize..1300, 300),
        combo in 0usize..8,
    ) {
        let (profile, backend) = combinations()[combo % combinations().len()];
        let (mut tx, mut rx) = pair(profile, backend, Config::default());
        // protect in order (as a sender does) ...
        let mut sent = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let plain = rtp(start.wrapping_add(i as u16), 42, *size);
            let mut buf = plain.clone();
            buf.resize(plain.len() + 16, 0);
            let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
            buf.truncate(n);
            sent.push((plain, buf));
        }
        prop_assert_eq!(tx.roc(42), Some(1));
        // ... and receive the first packet first (a receiver learns the ROC
        // from it, RFC 3711 §3.3.1), the rest shuffled within groups of 50
        let mut order = order;
        order.sort_by_key(|&i| (i != 0, i / 50));
        for i in order {
            let (plain, protected) = &sent[i];
            let mut buf = protected.clone();
            let n = rx.unprotect_rtp(&mut buf).unwrap();
            prop_assert_eq!(&buf[..n], &plain[..]);
        }
        prop_assert_eq!(rx.roc(42), Some(1));
    }

    #[test]
    fn unprotect_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), combo in 0usize..8, rtcp: bool) {
        let (profile, backend) = combinations()[combo % combinations().len()];
        let (_, mut rx) = pair(profile, backend, Config::default());
        let mut buf = data;
        if buf.len() > 1 { buf[0] = 0x80 | (buf[0] & 0x3f); }
        let r = if rtcp { rx.unprotect_rtcp(&mut buf) } else { rx.unprotect_rtp(&mut buf) };
        prop_assert!(r.is_err());
    }
}
