//! Relays to other bridges (cascading, docs/cascading.md): which endpoint
//! ids are relays, and relay streams — each layer of a source the focus
//! relays forwarded to a relay endpoint as its own stream pinned to that
//! layer, with its own numbering, retransmission history and RTX, so the
//! far bridge can treat the source as one of its own. A source a relay publishes is never
//! relayed again, and a relay never subscribes: rooms over any number of
//! bridges have no loops.

use super::{Engine, Sink};
use crate::abi::command::{MAX_LAYERS, PAUSED};
use crate::abi::{CommandError, MediaKind, RelaySpec, SubscriptionSpec};
use std::collections::BTreeMap;
use std::time::Instant;

/// Most relay endpoint ids a worker remembers.
const MAX_RELAYS: usize = 4096;

impl Engine {
    /// `SetRelay`: marks or unmarks an endpoint id as a relay.
    pub(super) fn set_relay(&mut self, endpoint: u64, relay: bool) -> Result<(), CommandError> {
        if relay && self.relays.len() >= MAX_RELAYS && !self.relays.contains(&endpoint) {
            return Err(CommandError::Full);
        }
        if relay {
            self.relays.insert(endpoint);
        } else {
            self.relays.remove(&endpoint);
        }
        if let Some(e) = self
            .by_id
            .get(&endpoint)
            .and_then(|&i| self.endpoints.get_mut(i))
        {
            e.relay = relay;
        }
        Ok(())
    }

    /// `RelaySource`: one pinned stream per layer of the source toward the
    /// relay endpoint. A layer whose SSRC is 0 is not relayed now (ABI 1.6:
    /// the focus relays only the layers far receivers use); its stream, if
    /// the pair had one, pauses and keeps its numbering for when the layer
    /// is relayed again (the far side's SRTP and loss tracking see no jump).
    /// A layer's stream whose SSRC changes starts over.
    pub(super) fn relay_source(
        &mut self,
        now: Instant,
        spec: RelaySpec,
        sink: &mut dyn Sink,
    ) -> Result<(), CommandError> {
        let e = self.endpoint_idx(spec.endpoint)?;
        let s = self.source_idx(spec.source)?;
        let src = self.sources.get(s).ok_or(CommandError::UnknownSource)?;
        // only to a relay, and never what a relay brought
        if !self.relays.contains(&spec.endpoint) || self.relays.contains(&src.spec.endpoint) {
            return Err(CommandError::RelayLoop);
        }
        let source_spec = src.spec;
        let video = source_spec.kind == MediaKind::Video;
        let count = usize::from(source_spec.layer_count.max(1)).min(MAX_LAYERS);
        let existing = self.relay_streams(e, s);
        for (&o, &layer) in &existing {
            if usize::from(layer) >= count {
                self.drop_stream(o);
            }
        }
        for layer in 0..count {
            let (ssrc, rtx_ssrc) = (spec.ssrcs[layer], spec.rtx_ssrcs[layer]);
            let pinned = layer as u8;
            let kept = existing
                .iter()
                .find(|&(_, &l)| l == pinned)
                .map(|(&o, _)| o);
            if let Some(o) = kept {
                let Some(out) = self.streams.get_mut(o) else {
                    continue;
                };
                if ssrc == 0 {
                    // resuming later waits for a keyframe
                    out.target = PAUSED;
                    out.current = None;
                    continue;
                }
                if out.spec.ssrc == ssrc && out.spec.rtx_ssrc == rtx_ssrc {
                    if out.target == PAUSED {
                        out.target = pinned;
                        if video {
                            self.request_keyframe(now, s, pinned, sink);
                        }
                    }
                    continue;
                }
                self.drop_stream(o);
            }
            if ssrc == 0 {
                continue;
            }
            let stream = SubscriptionSpec {
                endpoint: spec.endpoint,
                source: spec.source,
                ssrc,
                rtx_ssrc,
                payload_type: source_spec.payload_type,
                rtx_payload_type: if rtx_ssrc == 0 {
                    0
                } else {
                    source_spec.rtx_payload_type
                },
                target_layer: pinned,
                mid: [0; crate::abi::command::MAX_MID],
                mid_len: 0,
            };
            self.open_stream(now, e, s, stream, pinned, true, sink);
        }
        Ok(())
    }

    /// The relay streams of source `s` toward endpoint `e`, with the layer
    /// each is pinned to.
    fn relay_streams(&self, e: u32, s: u32) -> BTreeMap<u32, u8> {
        let Some(ep) = self.endpoints.get(e) else {
            return BTreeMap::new();
        };
        ep.streams
            .iter()
            .filter_map(|&o| {
                let st = self.streams.get(o)?;
                (st.relay && st.source == s).then_some((o, st.spec.target_layer))
            })
            .collect()
    }

    /// The relay stream of source `s` toward endpoint `e` sending with
    /// `ssrc` (paused or not).
    pub(super) fn relay_stream(&self, e: u32, s: u32, ssrc: u32) -> Option<u32> {
        self.relay_streams(e, s)
            .into_keys()
            .find(|&o| self.streams.get(o).is_some_and(|st| st.spec.ssrc == ssrc))
    }

    /// `UnrelaySource`: the pair's relay streams go. A pair with none (never
    /// relayed, or every layer left out from the start) is already there.
    pub(super) fn unrelay_source(
        &mut self,
        endpoint: u64,
        source: u64,
    ) -> Result<(), CommandError> {
        let e = self.endpoint_idx(endpoint)?;
        let s = self.source_idx(source)?;
        for o in self.relay_streams(e, s).into_keys() {
            self.drop_stream(o);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
