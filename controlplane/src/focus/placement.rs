//! Where a new room goes: a pure function of what the focus knows about
//! its bridges (docs/cluster.md, "Placement").
//!
//! - Only bridges that can take a room are candidates: healthy (heartbeats
//!   arriving), not draining, of the focus's protocol version, and below
//!   the stress threshold.
//! - A bridge's stress is what it reports (packet rate over capacity, 1 =
//!   full) plus a share for each room placed on it lately: reports lag, so
//!   a burst of new rooms would otherwise all land on the bridge that
//!   looked idlest a second ago.
//! - With regions configured, a bridge in the participant's region wins
//!   over any other; without one there, any candidate will do.
//! - The least stressed candidate wins; ties go to the bridge with fewer
//!   rooms, then to the smaller id, so that the choice is reproducible.
//!
//! Later joiners of a room do not come here: a room stays on its bridge.

use std::time::{Duration, Instant};

/// Stress one recent placement adds until the bridge's own reports can
/// show it (about what two participants add to a small bridge).
pub const RECENT_PLACEMENT_STRESS: f64 = 0.02;
/// How long a placement counts as recent.
pub const RECENT_WINDOW: Duration = Duration::from_secs(10);
/// Bridges at or above this stress take no new rooms (by default).
pub const DEFAULT_STRESS_THRESHOLD: f64 = 0.8;

/// What placement looks at of one bridge.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// The bridge's id.
    pub id: &'a str,
    /// Its region, if it announced one.
    pub region: Option<&'a str>,
    /// Heartbeats arrive and its dataplane is up.
    pub healthy: bool,
    /// It is draining: no new rooms.
    pub draining: bool,
    /// It speaks the focus's protocol version.
    pub compatible: bool,
    /// Its last reported stress (1 = full).
    pub stress: f64,
    /// Rooms on it now.
    pub rooms: usize,
    /// When rooms were placed on it lately (older entries are ignored).
    pub placed: &'a [Instant],
}

/// A room's participants on one bridge, at most (with cascading on).
pub const DEFAULT_ROOM_CAP_PER_BRIDGE: usize = 50;

/// Placement settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Bridges at or above this (effective) stress take no new rooms.
    pub stress_threshold: f64,
    /// Rooms may span bridges (docs/cascading.md).
    pub cascade: bool,
    /// With `cascade`: a room's participants on one bridge, at most,
    /// before the room spreads to another.
    pub room_cap_per_bridge: usize,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            stress_threshold: DEFAULT_STRESS_THRESHOLD,
            cascade: false,
            room_cap_per_bridge: DEFAULT_ROOM_CAP_PER_BRIDGE,
        }
    }
}

/// A bridge's stress with its recent placements counted in.
pub fn effective_stress(c: &Candidate<'_>, now: Instant) -> f64 {
    let recent = c
        .placed
        .iter()
        .filter(|&&t| now.saturating_duration_since(t) < RECENT_WINDOW)
        .count();
    c.stress + RECENT_PLACEMENT_STRESS * recent as f64
}

/// The bridge a new room goes to (its index in `bridges`), or `None` when
/// no bridge can take one.
pub fn place(
    bridges: &[Candidate<'_>],
    region: Option<&str>,
    rules: Rules,
    now: Instant,
) -> Option<usize> {
    let able: Vec<(usize, f64)> = bridges
        .iter()
        .enumerate()
        .filter(|(_, c)| c.healthy && !c.draining && c.compatible)
        .map(|(i, c)| (i, effective_stress(c, now)))
        .filter(|&(_, s)| s < rules.stress_threshold)
        .collect();
    let in_region = |i: usize| region.is_some() && bridges[i].region == region;
    let pool: Vec<(usize, f64)> = if able.iter().any(|&(i, _)| in_region(i)) {
        able.into_iter().filter(|&(i, _)| in_region(i)).collect()
    } else {
        able
    };
    pool.into_iter()
        .min_by(|&(a, sa), &(b, sb)| {
            sa.total_cmp(&sb)
                .then(bridges[a].rooms.cmp(&bridges[b].rooms))
                .then(bridges[a].id.cmp(bridges[b].id))
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridge<'a>(id: &'a str, stress: f64, placed: &'a [Instant]) -> Candidate<'a> {
        Candidate {
            id,
            region: None,
            healthy: true,
            draining: false,
            compatible: true,
            stress,
            rooms: placed.len(),
            placed,
        }
    }

    /// Places `n` rooms one after another, 10 ms apart, over bridges with
    /// the given reported stress; returns the rooms per bridge.
    fn spread(stress: &[f64], n: usize) -> Vec<usize> {
        let t = Instant::now();
        let ids: Vec<String> = (0..stress.len()).map(|i| format!("b{i}")).collect();
        let mut placed: Vec<Vec<Instant>> = vec![Vec::new(); stress.len()];
        for k in 0..n {
            let now = t + Duration::from_millis(10 * k as u64);
            let chosen = {
                let c: Vec<Candidate> = ids
                    .iter()
                    .zip(&placed)
                    .zip(stress)
                    .map(|((id, p), &s)| bridge(id, s, p))
                    .collect();
                place(&c, None, Rules::default(), now)
            };
            placed[chosen.expect("a bridge")].push(now);
        }
        placed.iter().map(Vec::len).collect()
    }

    #[test]
    fn a_burst_of_rooms_spreads_over_idle_bridges() {
        assert_eq!(spread(&[0.0, 0.0], 20), [10, 10]);
        assert_eq!(spread(&[0.0, 0.0, 0.0], 9), [3, 3, 3]);
    }

    #[test]
    fn a_loaded_bridge_gets_fewer_and_a_full_one_none() {
        let s = spread(&[0.1, 0.0], 20);
        assert!(s[0] < s[1], "{s:?}");
        assert_eq!(spread(&[0.9, 0.1], 10), [0, 10]);
    }

    #[test]
    fn draining_failed_and_incompatible_bridges_get_nothing() {
        let t = Instant::now();
        let mut b = [bridge("a", 0.0, &[]), bridge("b", 0.5, &[])];
        b[0].draining = true;
        assert_eq!(place(&b, None, Rules::default(), t), Some(1));
        b[0].draining = false;
        b[0].healthy = false;
        assert_eq!(place(&b, None, Rules::default(), t), Some(1));
        b[0].healthy = true;
        b[0].compatible = false;
        assert_eq!(place(&b, None, Rules::default(), t), Some(1));
        b[1].stress = 0.85;
        assert_eq!(place(&b, None, Rules::default(), t), None, "all full");
    }

    #[test]
    fn the_participants_region_wins_while_it_has_room() {
        let t = Instant::now();
        let mut b = [bridge("eu", 0.5, &[]), bridge("us", 0.0, &[])];
        b[0].region = Some("eu-west");
        b[1].region = Some("us-east");
        assert_eq!(place(&b, Some("eu-west"), Rules::default(), t), Some(0));
        assert_eq!(place(&b, Some("ap-south"), Rules::default(), t), Some(1));
        assert_eq!(place(&b, None, Rules::default(), t), Some(1));
        b[0].stress = 0.95;
        assert_eq!(
            place(&b, Some("eu-west"), Rules::default(), t),
            Some(1),
            "a full region spills over"
        );
    }

    #[test]
    fn recent_placements_fade() {
        let t = Instant::now();
        let placed = [t; 10];
        let b = [bridge("a", 0.0, &placed), bridge("b", 0.1, &[])];
        assert_eq!(place(&b, None, Rules::default(), t), Some(1));
        let later = t + RECENT_WINDOW;
        assert_eq!(place(&b, None, Rules::default(), later), Some(0));
    }
}
