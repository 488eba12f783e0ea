//! Ramp mode: the same load shape with more rooms step by step until the
//! SFU falls behind (loss over 0.1 % or p99 one-way latency over 20 ms);
//! the knee is the last step that kept up.

use super::{LoadConfig, Report, Target, run};

/// Where a step stops counting as keeping up.
pub const MAX_LOSS: f64 = 0.001;
/// p99 one-way latency limit, µs.
pub const MAX_P99_US: u64 = 20_000;

/// One step of a ramp.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// Rooms in this step.
    pub rooms: usize,
    /// Its report.
    pub report: Report,
    /// Within the limits.
    pub kept_up: bool,
}

/// A whole ramp against one SFU, as `--json` writes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RampRun {
    /// The SFU.
    pub target: Target,
    /// Participants per room.
    pub participants: usize,
    /// Generator threads.
    pub threads: usize,
    /// Rooms at the knee, if the ramp reached one.
    pub knee_rooms: Option<usize>,
    /// Every step run.
    pub steps: Vec<Step>,
}

/// What stopped a ramp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The SFU fell behind.
    Sfu,
    /// The step that fell behind had the generator's thread(s) busy: the
    /// knee is a lower bound for the SFU.
    Generator,
    /// Every step kept up.
    NotReached,
}

/// A ramp boiled down for comparison.
#[derive(Debug, Clone, Copy)]
pub struct Summary<'a> {
    /// The knee, or the last step when none was reached.
    pub top: &'a Step,
    /// What stopped the ramp.
    pub limit: Limit,
    /// The highest step at no more than 80 % of the top's rate.
    pub at_80: Option<&'a Step>,
}

/// Generator CPU (cores per thread) above which a step counts as
/// generator-bound.
const GENERATOR_BUSY: f64 = 0.9;

impl RampRun {
    /// The knee (or the top step), what limited it and the step at 80 %.
    pub fn summary(&self) -> Option<Summary<'_>> {
        let failed = self.steps.iter().find(|s| !s.kept_up);
        let top =
            knee(&self.steps).or_else(|| failed.is_none().then(|| self.steps.last()).flatten())?;
        let limit = match failed {
            None => Limit::NotReached,
            Some(f) => match f.report.generator_cores {
                Some(c) if c >= GENERATOR_BUSY * self.threads.max(1) as f64 => Limit::Generator,
                _ => Limit::Sfu,
            },
        };
        let at_80 = self
            .steps
            .iter()
            .rev()
            .find(|s| s.kept_up && s.report.received_pps <= 0.8 * top.report.received_pps);
        Some(Summary { top, limit, at_80 })
    }
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
pub(crate) mod tests {
    use super::*;

    /// A step of `rooms` rooms (1000 packets/s each) with `loss` packets
    /// lost of 10 000 and that p99.
    pub(crate) fn step(rooms: usize, loss: u64, p99_us: u64) -> Step {
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
            cpu_ns_per_packet_by_process: Vec::new(),
            cpu_cores: None,
            generator_cores: None,
            timeline: vec![],
        };
        let ok = kept_up(&report);
        Step {
            rooms,
            report,
            kept_up: ok,
        }
    }

    pub(crate) fn run_of(steps: Vec<Step>, threads: usize) -> RampRun {
        RampRun {
            target: Target::Switchyard,
            participants: 4,
            threads,
            knee_rooms: None,
            steps,
        }
    }

    #[test]
    fn summary_names_the_limit_and_the_step_at_80_percent() {
        // rates 1000 × rooms: 2, 4, 6, 8 kept up, 10 did not
        let mut steps: Vec<Step> = [2, 4, 6, 8].iter().map(|&r| step(r, 0, 1000)).collect();
        steps.push(step(10, 500, 1000));
        let run = run_of(steps.clone(), 1);
        let s = run.summary().unwrap();
        assert_eq!((s.top.rooms, s.limit), (8, Limit::Sfu));
        assert_eq!(s.at_80.map(|s| s.rooms), Some(6)); // 6000 ≤ 0.8 × 8000
        // the failing step with the generator's one thread busy
        steps[4].report.generator_cores = Some(0.97);
        let limit = |threads| run_of(steps.clone(), threads).summary().unwrap().limit;
        assert_eq!(limit(1), Limit::Generator);
        assert_eq!(limit(2), Limit::Sfu);
        // all kept up: the top is the last step
        steps.pop();
        let s = run_of(steps, 1).summary().map(|s| (s.top.rooms, s.limit));
        assert_eq!(s, Some((8, Limit::NotReached)));
        // the first step failed: nothing to compare
        assert!(run_of(vec![step(2, 500, 1000)], 1).summary().is_none());
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
