//! Arbitrary bytes never panic any parser, and bit flips of valid packets
//! are either rejected or parsed consistently.

use proptest::prelude::*;
use switchyard_wire::fuzz::TARGETS;

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        for (_, target) in TARGETS {
            target(&data);
        }
    }

    /// Random data with a plausible first byte reaches deeper into parsers.
    #[test]
    fn plausible_headers_never_panic(
        first in prop::sample::select(vec![0x80u8, 0x81, 0x8f, 0x90, 0xa0, 0x00, 0x01, 0xbf]),
        second in prop::sample::select(vec![200u8, 201, 202, 203, 204, 205, 206, 96, 111]),
        rest in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut data = vec![first, second];
        data.extend(rest);
        if data.len() >= 8 {
            data[4..8].copy_from_slice(&0x2112_a442u32.to_be_bytes());
        }
        for (_, target) in TARGETS {
            target(&data);
        }
    }
}
