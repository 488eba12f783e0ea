//! Fuzz entry point: arbitrary bytes through SRTP and SRTCP unprotect for
//! every profile. Must never panic; used by `fuzz/` and the CI fallback.

use crate::{Config, MasterKey, Profile, Session};

/// The first byte picks profile and RTP/RTCP; the rest is the packet.
/// Half of the inputs get a plausible RTP/RTCP first byte so that the
/// header checks pass and the crypto paths run.
pub fn unprotect(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let profile = Profile::ALL[(selector & 3) as usize];
    let key = [0x11u8; 32];
    let salt = [0x22u8; 14];
    let Ok(master) = MasterKey::new(
        profile,
        &key[..profile.key_len()],
        &salt[..profile.salt_len()],
    ) else {
        return;
    };
    let Ok(mut session) = Session::new(profile, &master, Config::default()) else {
        return;
    };
    let mut buf = [0u8; 1500];
    let n = rest.len().min(buf.len());
    buf[..n].copy_from_slice(&rest[..n]);
    if selector & 8 != 0 && n > 0 {
        buf[0] = 0x80 | (buf[0] & 0x3f);
    }
    let _ = if selector & 4 != 0 {
        session.unprotect_rtcp(&mut buf[..n])
    } else {
        session.unprotect_rtp(&mut buf[..n])
    };
}
