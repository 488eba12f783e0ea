//! Round trips between switchyard-srtp and libsrtp2 for all four profiles in
//! both directions, across the sequence-number wrap (ROC 0 → 1), for SRTP
//! and SRTCP, with every backend.

use switchyard_srtp::{Backend, Config, MasterKey, Profile, Session};
use switchyard_srtp_interop::{CM_32, CM_80, Direction, GCM_128, GCM_256, Libsrtp};

fn shim_id(p: Profile) -> i32 {
    match p {
        Profile::Aes128CmHmacSha1_80 => CM_80,
        Profile::Aes128CmHmacSha1_32 => CM_32,
        Profile::AeadAes128Gcm => GCM_128,
        Profile::AeadAes256Gcm => GCM_256,
    }
}

struct Setup {
    ours: Session,
    theirs: Libsrtp,
}

fn setup(profile: Profile, backend: Backend, ours_sends: bool, seed: u8) -> Setup {
    let key: Vec<u8> = (0..profile.key_len())
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    let salt: Vec<u8> = (0..profile.salt_len())
        .map(|i| (i as u8).wrapping_add(seed))
        .collect();
    let master = MasterKey::new(profile, &key, &salt).unwrap();
    let config = Config {
        backend: Some(backend),
        ..Config::default()
    };
    let ours = Session::new(profile, &master, config).unwrap();
    let dir = if ours_sends {
        Direction::Inbound
    } else {
        Direction::Outbound
    };
    let theirs = Libsrtp::new(shim_id(profile), &[key, salt].concat(), dir, 1024)
        .unwrap_or_else(|e| panic!("{e}"));
    Setup { ours, theirs }
}

fn rtp(seq: u16, ssrc: u32, len: usize, ext: bool) -> Vec<u8> {
    let mut p = vec![if ext { 0x90 } else { 0x80 }, 0x60];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq).wrapping_mul(960)).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    if ext {
        p.extend_from_slice(&[0xbe, 0xde, 0x00, 0x01, 0x22, 0x01, 0x02, 0x03]);
    }
    p.extend((0..len).map(|i| (i * 7) as u8));
    p
}

/// A compound RR + SDES packet.
fn rtcp(ssrc: u32, n: u8) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[
        0, 0, 0, 9, n, 0, 0, 1, 0, 0, 0x10, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    p.extend_from_slice(&[0x81, 202, 0, 3]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[1, 4, b'a', b'b', b'c', b'd', 0, 0]);
    p
}

/// Sequence numbers 65500 → 65535 → 0 → 99: the ROC goes from 0 to 1.
fn wrapping_seqs() -> impl Iterator<Item = u16> {
    (0..136u16).map(|i| 65500u16.wrapping_add(i))
}

#[test]
fn ours_protects_libsrtp_unprotects() {
    for (profile, backend) in Backend::combinations() {
        let what = format!("{} {}", profile.name(), backend.name());
        let mut s = setup(profile, backend, true, 1);
        for (i, seq) in wrapping_seqs().enumerate() {
            for ssrc in [0x1111_1111u32, 0x2222_2222] {
                let plain = rtp(seq, ssrc, 20 + i * 9, i % 2 == 0);
                let mut buf = plain.clone();
                buf.resize(plain.len() + 16, 0);
                let n = s.ours.protect_rtp(&mut buf, plain.len()).unwrap();
                let back = s
                    .theirs
                    .unprotect(&buf[..n])
                    .unwrap_or_else(|e| panic!("{what} seq {seq}: {e:?}"));
                assert_eq!(back, plain, "{what} seq {seq}");
            }
        }
        assert_eq!(s.ours.roc(0x1111_1111), Some(1), "{what}");
        for n in 0..40u8 {
            let plain = rtcp(0x3333_3333, n);
            let mut buf = plain.clone();
            buf.resize(plain.len() + 20, 0);
            let len = s.ours.protect_rtcp(&mut buf, plain.len()).unwrap();
            let back = s
                .theirs
                .unprotect_rtcp(&buf[..len])
                .unwrap_or_else(|e| panic!("{what} rtcp {n}: {e:?}"));
            assert_eq!(back, plain, "{what} rtcp {n}");
        }
    }
}

#[test]
fn libsrtp_protects_ours_unprotects() {
    for (profile, backend) in Backend::combinations() {
        let what = format!("{} {}", profile.name(), backend.name());
        let mut s = setup(profile, backend, false, 2);
        for (i, seq) in wrapping_seqs().enumerate() {
            let plain = rtp(seq, 0xabcd_ef01, 1 + i * 8, i % 3 == 0);
            let mut buf = s.theirs.protect(&plain).unwrap();
            let n = s
                .ours
                .unprotect_rtp(&mut buf)
                .unwrap_or_else(|e| panic!("{what} seq {seq}: {e}"));
            assert_eq!(&buf[..n], &plain[..], "{what} seq {seq}");
        }
        assert_eq!(s.ours.roc(0xabcd_ef01), Some(1), "{what}");
        for n in 0..40u8 {
            let plain = rtcp(0x4444_4444, n);
            let mut buf = s.theirs.protect_rtcp(&plain).unwrap();
            let len = s
                .ours
                .unprotect_rtcp(&mut buf)
                .unwrap_or_else(|e| panic!("{what} rtcp {n}: {e}"));
            assert_eq!(&buf[..len], &plain[..], "{what} rtcp {n}");
        }
    }
}

#[test]
fn libsrtp_rejects_our_tampered_packets_and_we_reject_its() {
    for (profile, backend) in Backend::combinations() {
        let mut s = setup(profile, backend, true, 3);
        let plain = rtp(7, 5, 50, false);
        let mut buf = plain.clone();
        buf.resize(plain.len() + 16, 0);
        let n = s.ours.protect_rtp(&mut buf, plain.len()).unwrap();
        buf[20] ^= 1;
        assert!(s.theirs.unprotect(&buf[..n]).is_err());

        let mut r = setup(profile, backend, false, 4);
        let mut theirs = r.theirs.protect(&plain).unwrap();
        theirs[14] ^= 0x80;
        assert!(r.ours.unprotect_rtp(&mut theirs).is_err());
    }
}
