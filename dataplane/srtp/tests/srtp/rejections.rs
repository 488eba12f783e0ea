//! Every failure is a typed reason and leaves the session usable.

use crate::{combinations, pair, rtp};
use switchyard_srtp::{Config, SrtpError};

fn protect(s: &mut switchyard_srtp::Session, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + 32, 0);
    let n = s.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn tampered_replayed_too_old_truncated_unknown() {
    for (profile, backend) in combinations() {
        let what = format!("{} {}", profile.name(), backend.name());
        let config = Config {
            replay_window: 64,
            ..Config::default()
        };
        let (mut tx, mut rx) = pair(profile, backend, config);
        let first = protect(&mut tx, &rtp(1000, 7, 100));
        assert_eq!(rx.unprotect_rtp(&mut first.clone()), Ok(12 + 100), "{what}");

        // tampered: flip one bit in header, payload and tag in turn
        let p = protect(&mut tx, &rtp(1001, 7, 100));
        for at in [3, 20, p.len() - 1] {
            let mut t = p.clone();
            t[at] ^= 0x10;
            assert_eq!(
                rx.unprotect_rtp(&mut t),
                Err(SrtpError::AuthenticationFailed),
                "{what} at {at}"
            );
        }
        // the genuine packet still passes after the forgeries
        assert!(rx.unprotect_rtp(&mut p.clone()).is_ok(), "{what}");

        // replayed
        assert_eq!(
            rx.unprotect_rtp(&mut p.clone()),
            Err(SrtpError::Replayed),
            "{what}"
        );

        // too old: move the window 100 packets ahead, then send an old one
        let old = protect(&mut tx, &rtp(1002, 7, 10));
        let ahead = protect(&mut tx, &rtp(1100, 7, 10));
        rx.unprotect_rtp(&mut ahead.clone()).unwrap();
        assert_eq!(
            rx.unprotect_rtp(&mut old.clone()),
            Err(SrtpError::TooOld),
            "{what}"
        );

        // truncated: shorter than header + tag, and a cut extension header
        assert_eq!(
            rx.unprotect_rtp(&mut p.clone()[..10]),
            Err(SrtpError::Truncated),
            "{what}"
        );
        let mut ext = rtp(1200, 7, 0);
        ext[0] |= 0x10;
        ext.extend_from_slice(&[0xbe, 0xde, 0, 9]);
        assert!(
            matches!(rx.unprotect_rtp(&mut ext), Err(SrtpError::Truncated)),
            "{what}"
        );

        // unknown SSRC on a session that only accepts added streams
        let strict = Config {
            accept_new_ssrcs: false,
            ..Config::default()
        };
        let (mut tx2, mut rx2) = pair(profile, backend, strict);
        tx2.add_stream(9, 0).unwrap();
        let p9 = protect(&mut tx2, &rtp(1, 9, 20));
        assert_eq!(
            rx2.unprotect_rtp(&mut p9.clone()),
            Err(SrtpError::UnknownSsrc),
            "{what}"
        );
        rx2.add_stream(9, 0).unwrap();
        assert!(rx2.unprotect_rtp(&mut p9.clone()).is_ok(), "{what}");
    }
}

#[test]
fn forged_packets_do_not_create_streams_or_move_windows() {
    for (profile, backend) in combinations() {
        let (_, mut rx) = pair(
            profile,
            backend,
            Config {
                max_streams: 2,
                ..Config::default()
            },
        );
        let (mut tx, _) = pair(profile, backend, Config::default());
        for ssrc in 100..200u32 {
            let mut junk = rtp(5, ssrc, 40);
            junk.extend_from_slice(&[0; 16]);
            assert_eq!(
                rx.unprotect_rtp(&mut junk),
                Err(SrtpError::AuthenticationFailed)
            );
        }
        assert_eq!(rx.ssrcs().count(), 0);
        // a forged packet far ahead must not make genuine ones "too old"
        let genuine = protect(&mut tx, &rtp(10, 1, 20));
        let mut forged = rtp(30000, 1, 20);
        forged.extend_from_slice(&[0; 16]);
        assert!(rx.unprotect_rtp(&mut forged).is_err());
        assert!(rx.unprotect_rtp(&mut genuine.clone()).is_ok());
        // the stream limit is a typed error
        protect(&mut tx, &rtp(1, 2, 5));
        let third = protect(&mut tx, &rtp(1, 3, 5));
        rx.unprotect_rtp(&mut protect(&mut tx, &rtp(2, 2, 5)))
            .unwrap();
        assert_eq!(
            rx.unprotect_rtp(&mut third.clone()),
            Err(SrtpError::TooManyStreams)
        );
    }
}

#[test]
fn srtcp_rejections() {
    for (profile, backend) in combinations() {
        let (mut tx, mut rx) = pair(profile, backend, Config::default());
        let rr = [
            0x81u8, 201, 0, 7, 0, 0, 0, 5, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0,
        ];
        let mut buf = rr.to_vec();
        buf.resize(rr.len() + 20, 0);
        let n = tx.protect_rtcp(&mut buf, rr.len()).unwrap();
        buf.truncate(n);
        let mut t = buf.clone();
        t[12] ^= 1;
        assert_eq!(
            rx.unprotect_rtcp(&mut t),
            Err(SrtpError::AuthenticationFailed)
        );
        assert_eq!(rx.unprotect_rtcp(&mut buf.clone()), Ok(rr.len()));
        assert_eq!(
            rx.unprotect_rtcp(&mut buf.clone()),
            Err(SrtpError::Replayed)
        );
        assert_eq!(
            rx.unprotect_rtcp(&mut buf.clone()[..12]),
            Err(SrtpError::Truncated)
        );
        let mut not_rtcp = buf.clone();
        not_rtcp[1] = 96;
        assert!(matches!(
            rx.unprotect_rtcp(&mut not_rtcp),
            Err(SrtpError::Malformed(_))
        ));
        // protect needs room for the trailer
        let mut small = rr.to_vec();
        assert_eq!(
            tx.protect_rtcp(&mut small, rr.len()),
            Err(SrtpError::BufferTooSmall)
        );
    }
}
