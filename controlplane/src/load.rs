//! Packet and bit rates from the dataplane's counters, and a stress level in
//! the spirit of Jitsi's colibri stats: the packet rate over what the
//! dataplane's workers can carry. Sans-IO: the caller samples the counters
//! about once a second and passes the time in.

use std::time::{Duration, Instant};

/// Counter totals over all workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Datagrams received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Datagrams sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets forwarded to subscribers.
    pub forwarded: u64,
}

/// Rates over the last sampling interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Datagrams received per second.
    pub rx_packets_per_s: f64,
    /// Datagrams sent per second.
    pub tx_packets_per_s: f64,
    /// Bits received per second.
    pub rx_bits_per_s: f64,
    /// Bits sent per second.
    pub tx_bits_per_s: f64,
    /// Packets forwarded per second.
    pub forwarded_per_s: f64,
}

/// Turns counter samples into rates.
#[derive(Debug)]
pub struct LoadMeter {
    last: Option<(Instant, Totals)>,
    rates: Rates,
    worker_capacity_pps: f64,
    workers: usize,
}

/// Samples closer together than this do not change the rates.
const MIN_INTERVAL: Duration = Duration::from_millis(500);

impl LoadMeter {
    /// A meter for a dataplane whose workers each carry
    /// `worker_capacity_pps` packets per second (received + sent) at full
    /// load.
    pub fn new(worker_capacity_pps: f64) -> LoadMeter {
        LoadMeter {
            last: None,
            rates: Rates::default(),
            worker_capacity_pps: worker_capacity_pps.max(1.0),
            workers: 1,
        }
    }

    /// A new sample of the totals over `workers` workers.
    pub fn sample(&mut self, now: Instant, totals: Totals, workers: usize) {
        self.workers = workers.max(1);
        let Some((then, before)) = self.last else {
            self.last = Some((now, totals));
            return;
        };
        let dt = now.saturating_duration_since(then);
        if dt < MIN_INTERVAL {
            return;
        }
        if totals.rx_packets < before.rx_packets || totals.tx_packets < before.tx_packets {
            // the dataplane restarted: its counters began again
            self.last = Some((now, totals));
            self.rates = Rates::default();
            return;
        }
        let per_s = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt.as_secs_f64();
        self.rates = Rates {
            rx_packets_per_s: per_s(totals.rx_packets, before.rx_packets),
            tx_packets_per_s: per_s(totals.tx_packets, before.tx_packets),
            rx_bits_per_s: 8.0 * per_s(totals.rx_bytes, before.rx_bytes),
            tx_bits_per_s: 8.0 * per_s(totals.tx_bytes, before.tx_bytes),
            forwarded_per_s: per_s(totals.forwarded, before.forwarded),
        };
        self.last = Some((now, totals));
    }

    /// The latest rates.
    pub fn rates(&self) -> Rates {
        self.rates
    }

    /// Packet rate (in + out) over capacity: 0 idle, 1 at capacity, above 1
    /// overloaded. A focus uses it to place new rooms on the least stressed
    /// bridge.
    pub fn stress(&self) -> f64 {
        (self.rates.rx_packets_per_s + self.rates.tx_packets_per_s)
            / (self.worker_capacity_pps * self.workers as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(rx: u64, tx: u64) -> Totals {
        Totals {
            rx_packets: rx,
            rx_bytes: rx * 1000,
            tx_packets: tx,
            tx_bytes: tx * 1000,
            forwarded: tx,
        }
    }

    #[test]
    fn rates_and_stress_from_samples() {
        let t = Instant::now();
        let mut m = LoadMeter::new(50_000.0);
        m.sample(t, totals(0, 0), 2);
        assert_eq!(m.stress(), 0.0);
        m.sample(t + Duration::from_secs(2), totals(20_000, 60_000), 2);
        let r = m.rates();
        assert_eq!(
            (r.rx_packets_per_s, r.tx_packets_per_s),
            (10_000.0, 30_000.0)
        );
        assert_eq!(r.tx_bits_per_s, 30_000.0 * 8000.0);
        assert!((m.stress() - 0.4).abs() < 1e-9);
        // too soon: unchanged
        m.sample(t + Duration::from_millis(2100), totals(90_000, 90_000), 2);
        assert_eq!(m.rates(), r);
        // a restarted dataplane starts from zero again
        m.sample(t + Duration::from_secs(3), totals(5, 5), 2);
        assert_eq!(m.rates(), Rates::default());
        m.sample(t + Duration::from_secs(4), totals(1005, 2005), 2);
        assert_eq!(m.rates().rx_packets_per_s, 1000.0);
    }
}
