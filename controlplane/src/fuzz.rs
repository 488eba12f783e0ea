//! Fuzz entry points for the control plane's parsers of network input:
//! signalling frames, SDP offers, STUN for the ICE agent, cluster
//! protocol frames and registry records; and of what it reads back from the shared region: ABI
//! commands and its saved state. They must
//! never panic; used by `fuzz/` and by tests over random input.

use crate::ice::{Credentials, IceLite};
use crate::signalling::ClientMessage;
use std::time::Instant;

/// A WebSocket text frame (lossily decoded).
pub fn signalling(data: &[u8]) {
    let _ = ClientMessage::parse(&String::from_utf8_lossy(data));
}

/// An SDP offer, and an answer to it when it parses.
pub fn sdp_offer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(offer) = crate::sdp::Offer::parse(&text) {
        let ice = Credentials {
            ufrag: "fuzz".into(),
            pwd: "fuzzfuzzfuzzfuzzfuzzfuzz".into(),
        };
        let params = crate::sdp::AnswerParams {
            ice: &ice,
            fingerprint: crate::dtls::Fingerprint([0; 32]),
            candidates: &[],
            tcp_candidates: &[],
            session_id: 1,
        };
        let _ = crate::sdp::answer(&offer, &params);
    }
}

/// A dataplane command slot (kind in the first two bytes, body after), the
/// form commands and continuity records are saved and sent in.
pub fn abi_command(data: &[u8]) {
    if let [a, b, body @ ..] = data {
        let _ = switchyard_dataplane::abi::Command::decode(u16::from_le_bytes([*a, *b]), body);
        let _ = switchyard_dataplane::abi::Continuity::decode(body);
    }
}

/// The saved state as read back from the region, and the agent carried on
/// from it when it parses.
pub fn saved_state(data: &[u8]) {
    if let Ok(saved) = crate::saved_state::SavedState::parse(data) {
        let _ = crate::agent::host::AgentHost::restore(saved.agent, Instant::now());
    }
}

/// A cluster protocol frame as each end reads it: as a handshake message
/// (`hello`, `welcome`), as a sealed frame, and as the JSON of the
/// messages both ways with what they decode to.
pub fn cluster_frame(data: &[u8]) {
    use crate::cluster::auth::{Direction, Secret};
    use crate::cluster::handshake::{AgentHandshake, FocusHandshake, open};
    use crate::cluster::wire::{Down, Up};
    let text = String::from_utf8_lossy(data);
    let Ok(secret) = Secret::new(b"fuzzing cluster secret") else {
        return;
    };
    let (focus, _) = FocusHandshake::start(secret.clone());
    let _ = focus.on_hello(&text, |_| false);
    let challenge = r#"{"type":"challenge","v":1,"nonce":"0000000000000000000000000000000000000000000000000000000000000000"}"#;
    if let Ok((agent, _)) = AgentHandshake::on_challenge(secret.clone(), "fuzz", challenge) {
        let _ = agent.on_welcome(&text);
    }
    if let Ok(mut s) = secret.session(&[0; 32], &[1; 32], Direction::Down) {
        let _ = open::<Up>(&mut s, &text);
    }
    if let Ok(up) = serde_json::from_str::<Up>(&text) {
        let _ = up.health();
        let _ = up.clone().registration("fuzz");
        let _ = up.into_msg();
    }
    if let Ok(down) = serde_json::from_str::<Down>(&text) {
        let _ = down.into_msg();
    }
}

/// A datagram for the ICE-lite agent.
pub fn ice(data: &[u8]) {
    let mut agent = IceLite::new(Credentials {
        ufrag: "fuzz".into(),
        pwd: "fuzzfuzzfuzzfuzzfuzzfuzz".into(),
    });
    let mut out = [0u8; 1024];
    let from = std::net::SocketAddr::from(([192, 0, 2, 1], 9));
    let _ = agent.handle(Instant::now(), from, data, &mut out);
}

/// A record read from the shards' registry (another process wrote it).
pub fn registry_record(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::registry::parse_record::<crate::registry::ShardRecord>(&text);
    let _ = crate::registry::parse_record::<crate::registry::BridgeRecord>(&text);
}

#[cfg(test)]
mod tests {
    /// Random and mutated inputs never panic any entry point.
    #[test]
    fn entry_points_survive_garbage() {
        let mut resume = vec![14, 0];
        resume.extend_from_slice(
            &switchyard_dataplane::abi::Continuity::Endpoint {
                endpoint: 7,
                twcc_seq: 9,
            }
            .to_bytes(),
        );
        let saved = br#"{"version":2,"agent":{"key_pem":"x","cert_pem":"y","transports":[],"replica":[[0,14,[1,2,3]],[1,1,[]]]},"hub":{"next_id":9,"rooms":{},"participants":{}}}"#;
        assert!(crate::saved_state::SavedState::parse(saved).is_ok());
        let seeds: [&[u8]; 7] = [
            br#"{"v":1,"type":"join","room":"r","name":"n"}"#,
            include_bytes!("sdp/testdata/chrome_simulcast_offer.sdp"),
            &[
                0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
            ],
            &resume,
            saved,
            br#"{"type":"open","endpoint":7,"worker":0,"port":10000,"local":{"ufrag":"abcd","pwd":"0123456789012345678901"},"remote":{"ufrag":"efgh","pwd":"0123456789012345678901"},"fingerprint":"sha-256 AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB","setup":"actpass","ext":[1,null,null,null,3,null,null],"user_data":"0000000000000000000000000000000000000000000000000000000000000000"}"#,
            br#"{"id":"b1","shard":"a","region":"eu","stress":0.25,"participants":3,"available":true}"#,
        ];
        let targets: [fn(&[u8]); 7] = [
            super::signalling,
            super::sdp_offer,
            super::ice,
            super::abi_command,
            super::saved_state,
            super::cluster_frame,
            super::registry_record,
        ];
        let mut seed = 0xdead_beef_cafe_f00du64;
        for (target, base) in targets.iter().zip(seeds) {
            for _ in 0..3000 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let mut data = base.to_vec();
                for _ in 0..=(seed % 8) {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let i = (seed % data.len().max(1) as u64) as usize;
                    match seed >> 61 {
                        0 => data.truncate(i),
                        1 if i < data.len() => {
                            data.remove(i);
                        }
                        _ if i < data.len() => data[i] = (seed >> 24) as u8,
                        _ => data.push(seed as u8),
                    }
                }
                target(&data);
            }
        }
    }
}
