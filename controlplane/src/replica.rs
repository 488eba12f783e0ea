//! What each dataplane worker holds, kept as the commands that built it, so
//! that a dataplane started after a crash can be given all of it back.
//!
//! Every command on its way to the dataplane passes [`Replica::record`],
//! which folds it into per-worker state: endpoints (with their keys and
//! current remote address), sources, fan-outs and subscriptions (with their
//! current target layer). Transient commands (keyframe requests, probes)
//! leave nothing. [`Replica::rebuild`] turns the state back into commands in
//! an order the dataplane accepts, each endpoint and stream followed by the
//! continuity records (`abi::continuity`) the dead dataplane left, moved
//! past what it may have sent since. Sans-IO; keys live here as they live in
//! the transports (zeroized on drop) and are never written anywhere else.

use std::collections::BTreeMap;
use switchyard_dataplane::abi::{
    Command, Continuity, EndpointSpec, RelaySpec, SourceSpec, SubscriptionSpec,
};

/// The state of one worker.
#[derive(Default)]
struct Worker {
    endpoints: BTreeMap<u64, EndpointSpec>,
    sources: BTreeMap<u64, SourceSpec>,
    fan_out: BTreeMap<(u64, u16), ()>,
    subscriptions: BTreeMap<(u64, u64), SubscriptionSpec>,
    /// Endpoint ids marked as relays.
    relays: std::collections::BTreeSet<u64>,
    /// Sources relayed, by (relay endpoint, source).
    relayed: BTreeMap<(u64, u64), Relayed>,
}

/// A source relayed to a relay endpoint.
struct Relayed {
    /// The last `RelaySource`: the layers relayed now.
    now: RelaySpec,
    /// Every layer's stream the dataplane holds for the pair, paused ones
    /// included: per layer the last SSRC it was relayed with (a layer left
    /// out keeps its stream and numbering, ABI 1.6).
    streams: RelaySpec,
}

impl Relayed {
    fn new(spec: RelaySpec) -> Relayed {
        Relayed {
            now: spec,
            streams: spec,
        }
    }

    /// Folds a later `RelaySource` of the pair in, as the dataplane does.
    fn update(&mut self, spec: RelaySpec) {
        for layer in 0..spec.ssrcs.len() {
            if spec.ssrcs[layer] != 0 {
                self.streams.ssrcs[layer] = spec.ssrcs[layer];
                self.streams.rtx_ssrcs[layer] = spec.rtx_ssrcs[layer];
            }
        }
        self.now = spec;
    }
}

/// The dataplane's state as this control plane built it.
#[derive(Default)]
pub struct Replica {
    workers: BTreeMap<usize, Worker>,
}

impl Replica {
    /// Folds a command sent to `worker` into the state.
    pub fn record(&mut self, worker: usize, command: &Command) {
        let w = self.workers.entry(worker).or_default();
        match command {
            Command::AddEndpoint(spec) => {
                w.endpoints.insert(spec.id, spec.clone());
            }
            Command::RemoveEndpoint { endpoint } => {
                w.endpoints.remove(endpoint);
                w.subscriptions.retain(|(e, _), _| e != endpoint);
                w.relayed.retain(|(e, _), _| e != endpoint);
            }
            Command::UpdateRemote { endpoint, remote } => {
                if let Some(e) = w.endpoints.get_mut(endpoint) {
                    e.remote = *remote;
                }
            }
            Command::RotateKeys { endpoint, keys } => {
                if let Some(e) = w.endpoints.get_mut(endpoint) {
                    e.keys = keys.clone();
                }
            }
            Command::AddSource(spec) => {
                w.sources.insert(spec.id, *spec);
            }
            Command::RemoveSource { source } => {
                w.sources.remove(source);
                w.fan_out.retain(|(s, _), _| s != source);
                w.subscriptions.retain(|(_, s), _| s != source);
                w.relayed.retain(|(_, s), _| s != source);
            }
            Command::Subscribe(spec) => {
                w.subscriptions.insert((spec.endpoint, spec.source), *spec);
            }
            Command::Unsubscribe { endpoint, source } => {
                w.subscriptions.remove(&(*endpoint, *source));
            }
            Command::SetTargetLayer {
                endpoint,
                source,
                layer,
            } => {
                if let Some(s) = w.subscriptions.get_mut(&(*endpoint, *source)) {
                    s.target_layer = *layer;
                }
            }
            Command::AddFanOut { source, worker } => {
                w.fan_out.insert((*source, *worker), ());
            }
            Command::RemoveFanOut { source, worker } => {
                w.fan_out.remove(&(*source, *worker));
            }
            Command::SetRelay { endpoint, relay } => {
                if *relay {
                    w.relays.insert(*endpoint);
                } else {
                    w.relays.remove(endpoint);
                }
            }
            Command::RelaySource(spec) => {
                w.relayed
                    .entry((spec.endpoint, spec.source))
                    .and_modify(|r| r.update(*spec))
                    .or_insert_with(|| Relayed::new(*spec));
            }
            Command::UnrelaySource { endpoint, source } => {
                w.relayed.remove(&(*endpoint, *source));
            }
            Command::RequestKeyframe { .. } | Command::Probe { .. } | Command::Resume(_) => {}
        }
    }

    /// Endpoints held, over all workers.
    pub fn endpoints(&self) -> usize {
        self.workers.values().map(|w| w.endpoints.len()).sum()
    }

    /// The workers that hold source `id`.
    pub fn workers_of_source(&self, id: u64) -> Vec<usize> {
        self.workers
            .iter()
            .filter(|(_, w)| w.sources.contains_key(&id))
            .map(|(n, _)| *n)
            .collect()
    }

    /// The commands that give a new dataplane this state, carrying on from
    /// `records` (what the dead one last wrote): per worker its endpoints
    /// (each followed by its SRTP and counter records), after the relay
    /// marks; sources (each followed by its layers' SSRCs), fan-outs, then
    /// subscriptions (each followed by its stream record) and relayed
    /// sources: every layer's stream the dead one held, paused ones too,
    /// each followed by its record, then the layers relayed now (a paused
    /// stream's numbering is kept for when its layer is relayed again).
    pub fn rebuild(&self, records: &[Continuity]) -> Vec<(usize, Command)> {
        let mut by_endpoint: BTreeMap<u64, Vec<Continuity>> = BTreeMap::new();
        let mut by_stream: BTreeMap<(u64, u64), Vec<Continuity>> = BTreeMap::new();
        let mut by_source: BTreeMap<u64, Continuity> = BTreeMap::new();
        for r in records {
            match *r {
                Continuity::Layers { source, .. } => {
                    by_source.insert(source, *r);
                }
                Continuity::Stream {
                    endpoint, source, ..
                } => {
                    by_stream
                        .entry((endpoint, source))
                        .or_default()
                        .push(r.carried_on());
                }
                _ => by_endpoint
                    .entry(r.endpoint())
                    .or_default()
                    .push(r.carried_on()),
            }
        }
        let mut out = Vec::new();
        for (&worker, w) in &self.workers {
            for &endpoint in &w.relays {
                out.push((
                    worker,
                    Command::SetRelay {
                        endpoint,
                        relay: true,
                    },
                ));
            }
            for (id, spec) in &w.endpoints {
                out.push((worker, Command::AddEndpoint(spec.clone())));
                for r in by_endpoint.get(id).into_iter().flatten() {
                    out.push((worker, Command::Resume(*r)));
                }
            }
            for spec in w.sources.values() {
                out.push((worker, Command::AddSource(*spec)));
                if let Some(r) = by_source.get(&spec.id) {
                    out.push((worker, Command::Resume(*r)));
                }
            }
            for &(source, to) in w.fan_out.keys() {
                out.push((worker, Command::AddFanOut { source, worker: to }));
            }
            // a stream's record: the one with its SSRC (a writer older than
            // ABI 1.11 wrote 0)
            let record = |key: &(u64, u64), ssrc: u32| {
                by_stream.get(key).into_iter().flatten().find(|r| {
                    matches!(r, Continuity::Stream { ssrc: s, .. } if *s == ssrc || (*s == 0 && !w.relays.contains(&key.0)))
                })
            };
            for (key, spec) in &w.subscriptions {
                out.push((worker, Command::Subscribe(*spec)));
                if let Some(r) = record(key, spec.ssrc) {
                    out.push((worker, Command::Resume(*r)));
                }
            }
            for (key, relayed) in &w.relayed {
                out.push((worker, Command::RelaySource(relayed.streams)));
                for &ssrc in relayed.streams.ssrcs.iter().filter(|&&s| s != 0) {
                    if let Some(r) = record(key, ssrc) {
                        out.push((worker, Command::Resume(*r)));
                    }
                }
                if relayed.now != relayed.streams {
                    out.push((worker, Command::RelaySource(relayed.now)));
                }
            }
        }
        out
    }
}

/// Commands in saved state: each as its ABI kind and body.
pub mod saved_commands {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use switchyard_dataplane::abi::Command;
    use zeroize::Zeroize;

    /// One command's ABI encoding.
    pub fn encode(c: &Command) -> (u16, Vec<u8>) {
        let mut buf = [0u8; switchyard_dataplane::abi::layout::COMMAND_SLOT];
        let (kind, n) = c.encode(&mut buf).unwrap_or((0, 0));
        let body = buf[..n].to_vec();
        buf.zeroize();
        (kind, body)
    }

    /// A command back from its encoding (`None` if it does not decode).
    pub fn decode(kind: u16, mut body: Vec<u8>) -> Option<Command> {
        let c = Command::decode(kind, &body);
        body.zeroize();
        c
    }

    /// Writes the commands.
    pub fn serialize<S: Serializer>(v: &[Command], s: S) -> Result<S::Ok, S::Error> {
        v.iter().map(encode).collect::<Vec<_>>().serialize(s)
    }

    /// Reads the commands (dropping any that do not decode).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Command>, D::Error> {
        let raw: Vec<(u16, Vec<u8>)> = Vec::deserialize(d)?;
        Ok(raw.into_iter().filter_map(|(k, b)| decode(k, b)).collect())
    }
}

impl Replica {
    /// The state as commands (each worker's, in rebuild order), for saving.
    pub fn commands(&self) -> Vec<(usize, Command)> {
        self.rebuild(&[])
    }

    /// A replica holding what `commands` build.
    pub fn from_commands(commands: impl IntoIterator<Item = (usize, Command)>) -> Replica {
        let mut r = Replica::default();
        for (w, c) in commands {
            r.record(w, &c);
        }
        r
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use switchyard_dataplane::abi::{
        Codec, Direction, LayerSpec, MediaKind, SrtpKeys, StreamState,
    };
    use switchyard_dataplane::srtp::{MasterKey, Profile};
    use switchyard_wire::rtp::ExtensionIds;

    /// An `AddEndpoint` with made-up keys (tests elsewhere use it too).
    pub(crate) fn endpoint(id: u64) -> Command {
        let p = Profile::AeadAes128Gcm;
        Command::AddEndpoint(EndpointSpec {
            id,
            remote: "192.0.2.1:5000".parse().unwrap(),
            keys: SrtpKeys {
                profile: p,
                rx: MasterKey::new(p, &[1; 16], &[2; 12]).unwrap(),
                tx: MasterKey::new(p, &[3; 16], &[4; 12]).unwrap(),
            },
            ext: ExtensionIds::default(),
            user_data: [0; 32],
        })
    }

    /// An `AddSource` of a one-layer VP8 video (tests elsewhere use it too).
    pub(crate) fn source(id: u64, endpoint: u64) -> Command {
        Command::AddSource(SourceSpec {
            id,
            endpoint,
            kind: MediaKind::Video,
            codec: Codec::Vp8,
            clock_rate: 90_000,
            payload_type: 96,
            rtx_payload_type: 0,
            layer_count: 1,
            layers: [LayerSpec::default(); 3],
        })
    }

    fn subscribe(endpoint: u64, source: u64) -> Command {
        Command::Subscribe(SubscriptionSpec {
            endpoint,
            source,
            ssrc: 9,
            rtx_ssrc: 0,
            payload_type: 96,
            rtx_payload_type: 0,
            target_layer: 0,
            mid: [0; 16],
            mid_len: 0,
        })
    }

    fn names(cmds: &[(usize, Command)]) -> Vec<String> {
        cmds.iter().map(|(w, c)| format!("{w}:{c:?}")).collect()
    }

    #[test]
    fn rebuilds_what_is_left_in_order_with_the_records() {
        let mut r = Replica::default();
        for (w, c) in [
            (0, endpoint(1)),
            (0, endpoint(2)),
            (0, endpoint(3)),
            (0, source(10, 1)),
            (1, source(10, 1)),
            (0, source(11, 2)),
            (
                0,
                Command::AddFanOut {
                    source: 10,
                    worker: 1,
                },
            ),
            (0, subscribe(2, 10)),
            (0, subscribe(3, 10)),
            (0, subscribe(1, 11)),
            (
                0,
                Command::SetTargetLayer {
                    endpoint: 2,
                    source: 10,
                    layer: 0xff,
                },
            ),
            (
                0,
                Command::UpdateRemote {
                    endpoint: 2,
                    remote: "192.0.2.9:7".parse().unwrap(),
                },
            ),
            (
                0,
                Command::RequestKeyframe {
                    source: 10,
                    layer: 0,
                },
            ),
            // participant 3 leaves, source 11 goes
            (0, Command::RemoveEndpoint { endpoint: 3 }),
            (0, Command::RemoveSource { source: 11 }),
            (1, Command::RemoveSource { source: 11 }),
        ] {
            r.record(w, &c);
        }
        assert_eq!(r.endpoints(), 2);
        let records = [
            Continuity::Endpoint {
                endpoint: 2,
                twcc_seq: 5,
            },
            Continuity::Srtp {
                endpoint: 2,
                direction: Direction::Send,
                ssrc: 9,
                rtp_index: Some(100),
                srtcp_index: 3,
            },
            Continuity::Stream {
                endpoint: 2,
                source: 10,
                ssrc: 9,
                state: StreamState {
                    seq: 100,
                    last_sent_ms: 1,
                    ..StreamState::default()
                },
            },
            // of an endpoint that is gone: ignored
            Continuity::Endpoint {
                endpoint: 3,
                twcc_seq: 1,
            },
        ];
        let cmds = r.rebuild(&records);
        assert_eq!(
            names(&cmds),
            [
                "0:AddEndpoint(1, SRTP_AEAD_AES_128_GCM)",
                "0:AddEndpoint(2, SRTP_AEAD_AES_128_GCM)",
                &format!("0:Resume({:?})", records[0].carried_on()),
                &format!("0:Resume({:?})", records[1].carried_on()),
                "0:AddSource(10 of 1)",
                "0:AddFanOut(10 -> 1)",
                "0:Subscribe(2 <- 10)",
                &format!("0:Resume({:?})", records[2].carried_on()),
                "1:AddSource(10 of 1)",
            ]
        );
        let Command::AddEndpoint(e2) = &cmds[1].1 else {
            panic!()
        };
        assert_eq!(e2.remote, "192.0.2.9:7".parse().unwrap());
        let Command::Subscribe(s) = &cmds[6].1 else {
            panic!()
        };
        assert_eq!(s.target_layer, 0xff);
    }

    #[test]
    fn relays_are_rebuilt_marked_first_and_relayed_after_their_sources() {
        use switchyard_dataplane::abi::RelaySpec;
        let mut r = Replica::default();
        let relay = RelaySpec {
            endpoint: 9,
            source: 11,
            ssrcs: [1, 2, 3],
            rtx_ssrcs: [0; 3],
        };
        for c in [
            endpoint(9),
            Command::SetRelay {
                endpoint: 9,
                relay: true,
            },
            source(11, 4),
            Command::RelaySource(relay),
            source(12, 4),
            Command::RelaySource(RelaySpec {
                source: 12,
                ..relay
            }),
            Command::RemoveSource { source: 12 },
        ] {
            r.record(0, &c);
        }
        let names: Vec<String> = r
            .rebuild(&[])
            .iter()
            .map(|(_, c)| format!("{c:?}"))
            .collect();
        assert_eq!(
            names,
            [
                "SetRelay(9: true)",
                "AddEndpoint(9, SRTP_AEAD_AES_128_GCM)",
                "AddSource(11 of 4)",
                "RelaySource(11 -> 9)",
            ],
        );
        // the relay gone: its relayed sources with it; unmarked: no mark
        r.record(0, &Command::RemoveEndpoint { endpoint: 9 });
        r.record(
            0,
            &Command::SetRelay {
                endpoint: 9,
                relay: false,
            },
        );
        assert_eq!(r.rebuild(&[]).len(), 1, "{:?}", r.rebuild(&[]));
    }

    #[test]
    fn relay_streams_come_back_with_their_records_paused_layers_included() {
        use switchyard_dataplane::abi::RelaySpec;
        let mut r = Replica::default();
        let all = RelaySpec {
            endpoint: 9,
            source: 11,
            ssrcs: [1, 2, 3],
            rtx_ssrcs: [4, 5, 6],
        };
        // the top layer left the relay, then the middle one too
        let narrowed = RelaySpec {
            ssrcs: [1, 0, 0],
            rtx_ssrcs: [4, 0, 0],
            ..all
        };
        for c in [
            Command::SetRelay {
                endpoint: 9,
                relay: true,
            },
            endpoint(9),
            source(11, 4),
            Command::RelaySource(all),
            Command::RelaySource(RelaySpec {
                ssrcs: [1, 2, 0],
                rtx_ssrcs: [4, 5, 0],
                ..all
            }),
            Command::RelaySource(narrowed),
        ] {
            r.record(0, &c);
        }
        let stream = |ssrc: u32, seq: u16| Continuity::Stream {
            endpoint: 9,
            source: 11,
            ssrc,
            state: StreamState {
                seq,
                last_sent_ms: 1,
                ..StreamState::default()
            },
        };
        // an older writer's record (SSRC 0) names no relay stream
        let records = [stream(3, 30), stream(1, 10), stream(2, 20), stream(0, 99)];
        let cmds = r.rebuild(&records);
        let got: Vec<String> = cmds.iter().map(|(_, c)| format!("{c:?}")).collect();
        assert_eq!(
            got[..3],
            [
                "SetRelay(9: true)",
                "AddEndpoint(9, SRTP_AEAD_AES_128_GCM)",
                "AddSource(11 of 4)"
            ]
        );
        // every stream the dead one held, each with its record, then the
        // layers relayed now
        let rest: Vec<Result<RelaySpec, Continuity>> = cmds[3..]
            .iter()
            .map(|(_, c)| match c {
                Command::RelaySource(spec) => Ok(*spec),
                Command::Resume(rec) => Err(*rec),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            rest,
            [
                Ok(all),
                Err(records[1].carried_on()),
                Err(records[2].carried_on()),
                Err(records[0].carried_on()),
                Ok(narrowed),
            ]
        );
        // nothing paused: one RelaySource
        r.record(0, &Command::RelaySource(all));
        let relayed = r
            .rebuild(&[])
            .iter()
            .filter(|(_, c)| matches!(c, Command::RelaySource(_)))
            .count();
        assert_eq!(relayed, 1);
    }
}
