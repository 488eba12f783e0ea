//! What one subscriber stream costs in memory: an engine in this thread
//! gets 64 endpoints and their subscriptions to a three-layer video source
//! and an audio source while the counting allocator (main.rs) keeps the
//! thread's live bytes. The figures are printed (docs/benchmarks.md,
//! "Memory per subscriber stream"); the test holds a stream to 64 KiB (the
//! packets are kept once per source layer, when its first subscriber
//! comes), and checks that every byte comes back when the streams and
//! endpoints go.

use crate::harness::*;
use std::net::SocketAddr;
use std::time::Instant;
use switchyard_dataplane::abi::{Codec, Command, Event, LayerSpec, MediaKind, SourceSpec};
use switchyard_dataplane::engine::{CrossMessage, EndpointInfo, Engine, EngineConfig, Sink};

/// A sink that sends nothing: commands alone are measured.
struct Nothing([u8; 1500]);

impl Sink for Nothing {
    fn buffer(&mut self) -> Option<&mut [u8]> {
        Some(&mut self.0)
    }
    fn commit(&mut self, _: usize, _: SocketAddr) {}
    fn cross(&mut self, _: u16, _: CrossMessage, _: &[u8]) -> bool {
        true
    }
    fn exception(&mut self, _: u64, _: SocketAddr, _: &[u8]) -> bool {
        true
    }
    fn event(&mut self, _: Event) {}
    fn endpoint_changed(&mut self, _: u64, _: Option<EndpointInfo>) {}
}

const AUDIO: u64 = 78;

fn audio_source(publisher: u64) -> SourceSpec {
    let mut layers = [LayerSpec::default(); 3];
    layers[0].ssrc = 0x400;
    SourceSpec {
        id: AUDIO,
        endpoint: publisher,
        kind: MediaKind::Audio,
        codec: Codec::Opus,
        clock_rate: 48_000,
        payload_type: 111,
        rtx_payload_type: 0,
        layer_count: 1,
        layers,
    }
}

/// Live bytes per item after `add` ran for each of `ids`.
fn per_item(ids: &[u64], mut add: impl FnMut(u64)) -> i64 {
    let before = crate::live_bytes();
    for &id in ids {
        add(id);
    }
    (crate::live_bytes() - before) / ids.len() as i64
}

/// What one round of [`cycle`] measured, in live bytes.
struct Round {
    /// Per endpoint.
    endpoint: i64,
    /// The first video subscriber: its stream and the source's layer rings.
    first_video: i64,
    /// Each further video subscriber stream.
    video: i64,
    /// The same for audio.
    first_audio: i64,
    audio: i64,
    /// Held after everything was removed again, against before the round.
    left: i64,
}

/// Adds 64 subscribers with a video and an audio stream each, then removes
/// them.
fn cycle(engine: &mut Engine, specs: &[switchyard_dataplane::abi::EndpointSpec]) -> Round {
    let mut sink = Nothing([0; 1500]);
    let t0 = Instant::now();
    let start = crate::live_bytes();
    let subscribers: Vec<u64> = (2..=specs.len() as u64).collect();
    let endpoint = per_item(&subscribers, |id| {
        let spec = specs[id as usize - 1].clone();
        engine.handle_command(t0, Command::AddEndpoint(spec), &mut sink);
    });
    let mut video = |id: u64| {
        let s = subscription(id, 0x5000 + id as u32, 2);
        engine.handle_command(t0, Command::Subscribe(s), &mut sink);
    };
    let first_video = per_item(&subscribers[..1], &mut video);
    let video = per_item(&subscribers[1..], &mut video);
    let mut audio = |id: u64| {
        let mut s = subscription(id, 0x6000 + id as u32, 0);
        s.source = AUDIO;
        s.payload_type = 111;
        engine.handle_command(t0, Command::Subscribe(s), &mut sink);
    };
    let first_audio = per_item(&subscribers[..1], &mut audio);
    let audio = per_item(&subscribers[1..], &mut audio);
    for &id in &subscribers {
        for source in [SOURCE, AUDIO] {
            let c = Command::Unsubscribe {
                endpoint: id,
                source,
            };
            engine.handle_command(t0, c, &mut sink);
        }
        engine.handle_command(t0, Command::RemoveEndpoint { endpoint: id }, &mut sink);
    }
    Round {
        endpoint,
        first_video,
        video,
        first_audio,
        audio,
        left: crate::live_bytes() - start,
    }
}

#[test]
fn a_subscriber_stream_costs_at_most_64_kib_and_gives_it_back() {
    let config = EngineConfig::default();
    let (video_history, audio_history) = (config.video_history, config.audio_history);
    let mut engine = Engine::new(config);
    let mut sink = Nothing([0; 1500]);
    let t0 = Instant::now();
    // endpoint specs need keys; the peers' sockets are not used
    let server: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let specs: Vec<_> = (1..=65)
        .map(|id| Peer::standalone(id, server).spec())
        .collect();
    engine.handle_command(t0, Command::AddEndpoint(specs[0].clone()), &mut sink);
    engine.handle_command(t0, Command::AddSource(source_spec(1)), &mut sink);
    engine.handle_command(t0, Command::AddSource(audio_source(1)), &mut sink);
    let r = cycle(&mut engine, &specs);
    let kib = |b: i64| b as f64 / 1024.0;
    eprintln!(
        "per endpoint {:.1} KiB; per video subscriber stream {:.1} KiB (the first {:.1} KiB: three layers \
         keep {video_history} packets each); per audio stream {:.1} KiB (the first {:.1} KiB: {audio_history} \
         packets); table room held after the round {:.1} KiB",
        kib(r.endpoint),
        kib(r.video),
        kib(r.first_video),
        kib(r.audio),
        kib(r.first_audio),
        kib(r.left)
    );
    // a stream records how it made each packet; the packets are kept once
    // per source layer, by the first subscriber's arrival
    for (what, bytes) in [("video", r.video), ("audio", r.audio)] {
        assert!(bytes <= 64 * 1024, "{what}: {bytes} bytes per stream");
    }
    let rings = |layers: usize, packets: usize| (layers * packets * 1500) as i64;
    assert!(
        r.first_video >= rings(3, video_history)
            && r.first_video <= rings(3, video_history) + 64 * 1024,
        "first video subscriber: {} bytes",
        r.first_video
    );
    assert!(
        r.first_audio >= rings(1, audio_history)
            && r.first_audio <= rings(1, audio_history) + 64 * 1024,
        "first audio subscriber: {} bytes",
        r.first_audio
    );
    assert!(r.endpoint < 256 * 1024, "{} bytes per endpoint", r.endpoint);

    // what went came back: a second round leaves no more held than the
    // first (the tables keep their slots for the next ones), and the rings
    // went with the last subscriber (the next first one makes them again)
    let again = cycle(&mut engine, &specs);
    assert!(
        again.left.abs() < 4096,
        "{} bytes more held after a second round of the same streams",
        again.left
    );
    assert!(
        again.first_video >= rings(3, video_history),
        "{} bytes",
        again.first_video
    );
}
