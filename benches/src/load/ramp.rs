//! Ramp mode: the same load shape with more rooms step by step until the
//! SFU falls behind (loss over 0.1 % or p99 one-way latency over 20 ms);
//! the knee is the last step that kept up.

use super::{LoadConfig, Report, run};

/// Where a step stops counting as keeping up.
pub const MAX_LOSS: f64 = 0.001;
/// p99 one-way latency limit, µs.
pub const MAX_P99_US: u64 = 20_000;

/// One step of a ramp.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    /// Rooms in this step.
    pub rooms: usize,
    /// Its report.
    pub report: Report,
    /// Within the limits.
    pub kept_up: bool,
}

/// Whether a step kept up.
pub fn kept_up(r: &Report) -> bool {
    r.failed.is_empty()
        && r.loss() <= MAX_LOSS
        && r.latency_us[1] <= MAX_P99_US
        && r.streams_missing == 0
}

/// The knee: the last step that kept up before the first that did not
/// (`None` when no step fell behind: the ramp did not reach it).
pub fn knee(steps: &[Step]) -> Option<&Step> {
    if steps.iter().all(|s| s.kept_up) {
        return None;
    }
    steps.iter().take_while(|s| s.kept_up).last()
}

/// Runs steps of `base` with `first`, `first + step`, … rooms, at most
/// `max_steps`, stopping after the first step that does not keep up.
pub fn ramp(
    base: &LoadConfig,
    first: usize,
    step: usize,
    max_steps: usize,
    mut progress: impl FnMut(&str),
) -> Vec<Step> {
    let mut steps = Vec::new();
    for k in 0..max_steps {
        let rooms = first + k * step.max(1);
        let config = LoadConfig {
            rooms,
            room_prefix: format!("{}s{k}r", base.room_prefix),
            ..base.clone()
        };
        progress(&format!(
            "step {}: {rooms} rooms × {} participants",
            k + 1,
            base.participants
        ));
        let report = run(&config, &mut progress);
        let ok = kept_up(&report);
        progress(&format!(
            "step {}: {:.0} packets/s forwarded, loss {:.3} %, p99 {:.2} ms: {}",
            k + 1,
            report.received_pps,
            report.loss() * 100.0,
            report.latency_us[1] as f64 / 1000.0,
            if ok { "kept up" } else { "fell behind" }
        ));
        steps.push(Step {
            rooms,
            report,
            kept_up: ok,
        });
        if !ok {
            break;
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rooms: usize, loss: u64, p99_us: u64) -> Step {
        let report = Report {
            clients: rooms * 4,
            failed: vec![],
            seconds: 10.0,
            sent: 1000,
            received: 10_000,
            lost: loss,
            duplicates: 0,
            reordered: 0,
            streams_expected: 8,
            streams_missing: 0,
            bad: 0,
            received_pps: 1000.0 * rooms as f64,
            latency_us: [500, p99_us, p99_us, p99_us],
            keyframes_on_request: 0,
            cpu_ns_per_packet: None,
            cpu_cores: None,
            timeline: vec![],
        };
        let ok = kept_up(&report);
        Step {
            rooms,
            report,
            kept_up: ok,
        }
    }

    #[test]
    fn the_knee_is_the_last_step_within_the_limits() {
        let steps = vec![step(2, 0, 900), step(4, 5, 2_000), step(6, 0, 25_000)];
        assert!(steps[1].kept_up, "0.05 % loss is within 0.1 %");
        assert!(!steps[2].kept_up, "p99 over 20 ms");
        assert_eq!(knee(&steps).map(|s| s.rooms), Some(4));
        let lossy = vec![step(2, 100, 900)];
        assert!(
            knee(&lossy).is_none(),
            "1 % loss at the first step: no knee"
        );
        let table = crate::load::output::ramp_table(&steps);
        assert!(
            table.contains("← knee") && table.contains("(fell behind)"),
            "{table}"
        );
    }
}
