//! What each layer of a source costs, as the allocator should count it: the
//! highest of the dataplane's last few one-second reports, not the last one.
//!
//! A browser's simulcast encoders do not send at a steady rate: a layer
//! ramps up after the publisher joins, dips when the encoder adapts to CPU
//! load, and a static picture costs little until it moves. Counted at its
//! last one-second rate, a layer that dipped looked cheap: on a 400 kbit/s
//! path the allocator raised a receiver to a 360p layer reported at
//! 89 kbit/s, which had carried 300 kbit/s three seconds before and soon
//! did again. With the highest rate of the window, an upgrade waits until a
//! layer has been cheap for the whole window.
//!
//! Whether a layer is sent at all is the last report's word: a layer the
//! publisher stopped (its encoder dropped the top layer when its own
//! bandwidth fell) must not be chosen for the window's length.

/// Reports kept: the dataplane reports once a second.
const WINDOW: usize = 5;

/// The last [`WINDOW`] rate reports of one source (bit/s per layer).
#[derive(Debug, Clone, Default)]
pub(super) struct LayerRates {
    reports: [[u32; 3]; WINDOW],
    /// Reports held (up to [`WINDOW`]).
    held: usize,
    /// Where the next report goes.
    next: usize,
}

impl LayerRates {
    /// Keeps a report, forgetting the oldest of a full window.
    pub(super) fn record(&mut self, layer_bps: [u32; 3]) {
        self.reports[self.next] = layer_bps;
        self.next = (self.next + 1) % WINDOW;
        self.held = (self.held + 1).min(WINDOW);
    }

    /// Each layer's cost: 0 when the last report shows it not sent, else
    /// the highest rate the window saw.
    pub(super) fn costs(&self) -> [u32; 3] {
        if self.held == 0 {
            return [0; 3];
        }
        let last = self.reports[(self.next + WINDOW - 1) % WINDOW];
        let mut costs = [0; 3];
        for (layer, cost) in costs.iter_mut().enumerate() {
            if last[layer] > 0 {
                *cost = self.reports[..self.held]
                    .iter()
                    .map(|r| r[layer])
                    .max()
                    .unwrap_or(0);
            }
        }
        costs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_costs_the_most_the_window_saw() {
        let mut r = LayerRates::default();
        assert_eq!(r.costs(), [0; 3]);
        r.record([100_000, 300_000, 800_000]);
        r.record([60_000, 89_000, 196_000]);
        assert_eq!(r.costs(), [100_000, 300_000, 800_000]);
        // cheap for the whole window: cheap
        for _ in 0..WINDOW {
            r.record([60_000, 89_000, 196_000]);
        }
        assert_eq!(r.costs(), [60_000, 89_000, 196_000]);
    }

    #[test]
    fn a_layer_the_last_report_shows_stopped_costs_nothing() {
        let mut r = LayerRates::default();
        r.record([100_000, 300_000, 800_000]);
        r.record([100_000, 300_000, 0]);
        assert_eq!(r.costs(), [100_000, 300_000, 0]);
        // and sent again: the window's highest counts again
        r.record([100_000, 300_000, 50_000]);
        assert_eq!(r.costs(), [100_000, 300_000, 800_000]);
    }

    #[test]
    fn the_window_wraps() {
        let mut r = LayerRates::default();
        for i in 0..(3 * WINDOW as u32) {
            r.record([i, i, i]);
        }
        let newest = 3 * WINDOW as u32 - 1;
        assert_eq!(r.costs(), [newest; 3]);
        r.record([1, 1, 1]);
        assert_eq!(r.costs(), [newest; 3]);
    }
}
