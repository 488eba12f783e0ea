//! Relays to other bridges (cascading, docs/cascading.md): which endpoint
//! ids are relays, and relay streams — every layer of a source forwarded
//! to a relay endpoint as its own stream pinned to that layer, with its own
//! numbering, retransmission history and RTX, so the far bridge can treat
//! the source as one of its own. A source a relay publishes is never
//! relayed again, and a relay never subscribes: rooms over any number of
//! bridges have no loops.

use super::{Engine, Sink};
use crate::abi::command::MAX_LAYERS;
use crate::abi::{CommandError, RelaySpec, SubscriptionSpec};
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
    /// relay endpoint (replacing earlier ones of the pair).
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
        let count = usize::from(source_spec.layer_count.max(1)).min(MAX_LAYERS);
        if spec.ssrcs[..count].contains(&0) {
            return Err(CommandError::Malformed);
        }
        self.drop_relay_streams(e, s);
        for layer in 0..count {
            let (ssrc, rtx_ssrc) = (spec.ssrcs[layer], spec.rtx_ssrcs[layer]);
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
                target_layer: layer as u8,
                mid: [0; crate::abi::command::MAX_MID],
                mid_len: 0,
            };
            self.open_stream(now, e, s, stream, layer as u8, true, sink);
        }
        Ok(())
    }

    /// `UnrelaySource`.
    pub(super) fn unrelay_source(
        &mut self,
        endpoint: u64,
        source: u64,
    ) -> Result<(), CommandError> {
        let e = self.endpoint_idx(endpoint)?;
        let s = self.source_idx(source)?;
        match self.drop_relay_streams(e, s) {
            0 => Err(CommandError::UnknownSource),
            _ => Ok(()),
        }
    }

    /// Drops the relay streams of source `s` toward endpoint `e`; how many.
    fn drop_relay_streams(&mut self, e: u32, s: u32) -> usize {
        let Some(ep) = self.endpoints.get(e) else {
            return 0;
        };
        let doomed: Vec<u32> = ep
            .streams
            .iter()
            .copied()
            .filter(|&o| {
                self.streams
                    .get(o)
                    .is_some_and(|st| st.relay && st.source == s)
            })
            .collect();
        for &o in &doomed {
            self.drop_stream(o);
        }
        doomed.len()
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
