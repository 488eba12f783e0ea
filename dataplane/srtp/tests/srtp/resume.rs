//! A sending session rebuilt from its context states (a restarted process)
//! carries on where the receiver expects it, also across a rollover; one
//! rebuilt from scratch does not.

use crate::{combinations, pair, rtp};
use switchyard_srtp::{Config, Session, SrtpError};

fn send(s: &mut Session, seq: u16) -> Vec<u8> {
    let plain = rtp(seq, 7, 40);
    let mut buf = plain.clone();
    buf.resize(plain.len() + 32, 0);
    let n = s.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

fn send_rtcp(s: &mut Session) -> Vec<u8> {
    let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 7];
    let mut buf = rr.to_vec();
    buf.resize(rr.len() + 32, 0);
    let n = s.protect_rtcp(&mut buf, rr.len()).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn a_resumed_sender_is_accepted_across_a_rollover() {
    for (profile, backend) in combinations() {
        let what = format!("{} {}", profile.name(), backend.name());
        let (mut tx, mut rx) = pair(profile, backend, Config::default());
        for seq in 65_000..=65_535u16 {
            assert!(rx.unprotect_rtp(&mut send(&mut tx, seq)).is_ok(), "{what}");
        }
        for _ in 0..300 {
            assert!(rx.unprotect_rtcp(&mut send_rtcp(&mut tx)).is_ok(), "{what}");
        }
        let states: Vec<_> = tx.contexts().collect();
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].rtp_index, Some(65_535));
        assert_eq!(states[0].srtcp_index, 300);

        // a fresh session: its first packets fall behind the receiver
        let (mut fresh, _) = pair(profile, backend, Config::default());
        assert_eq!(
            rx.unprotect_rtp(&mut send(&mut fresh, 10)),
            Err(SrtpError::AuthenticationFailed),
            "{what}"
        );
        assert!(rx.unprotect_rtcp(&mut send_rtcp(&mut fresh)).is_err());

        // a resumed one, moved on by a margin, wraps into ROC 1 with it
        let (mut resumed, _) = pair(profile, backend, Config::default());
        let mut state = states[0];
        state.rtp_index = state.rtp_index.map(|i| i + 512);
        state.srtcp_index += 64;
        resumed.resume_context(state).unwrap();
        for seq in 512..600u16 {
            assert!(
                rx.unprotect_rtp(&mut send(&mut resumed, seq)).is_ok(),
                "{what} {seq}"
            );
        }
        assert_eq!(resumed.roc(7), Some(1));
        assert!(rx.unprotect_rtcp(&mut send_rtcp(&mut resumed)).is_ok());
    }
}
