//! Integration tests of switchyard-srtp: RFC vectors, typed rejections and
//! property tests. (Round trips against libsrtp live in srtp-interop.)

mod properties;
mod rejections;
mod resume;
mod rfc_vectors;

use switchyard_srtp::{Backend, Config, MasterKey, Profile, Session};

/// Reads `name hex` lines from a vector file under tests/vectors.
pub fn vector(file: &str, name: &str) -> Vec<u8> {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .find(|(n, _)| *n == name)
        .map(|(_, h)| hex::decode(h.trim()).expect("valid hex"))
        .unwrap_or_else(|| panic!("{name} not in {file}"))
}

/// A sender and a receiver session sharing one master key.
pub fn pair(profile: Profile, backend: Backend, config: Config) -> (Session, Session) {
    let key: Vec<u8> = (0..profile.key_len() as u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(1))
        .collect();
    let salt: Vec<u8> = (0..profile.salt_len() as u8)
        .map(|i| i.wrapping_mul(13))
        .collect();
    let master = MasterKey::new(profile, &key, &salt).unwrap();
    let config = Config {
        backend: Some(backend),
        ..config
    };
    (
        Session::new(profile, &master, config).unwrap(),
        Session::new(profile, &master, config).unwrap(),
    )
}

/// Every (profile, backend) pair the library supports.
pub fn combinations() -> Vec<(Profile, Backend)> {
    Backend::combinations().collect()
}

/// A plain RTP packet: V=2, PT 96, seq, ts, ssrc, `payload_len` bytes.
pub fn rtp(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload_len).map(|i| i as u8));
    p
}
