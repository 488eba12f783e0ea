//! Which simulcast layer of each remote video each receiver gets — a pure
//! function of the receiver's bandwidth estimate, its wishes (selected and
//! on-stage sources, the height it draws each one at), the room's speaker
//! order and what each source's layers cost, in the spirit of Jitsi's
//! bandwidth allocator:
//!
//! 1. order the sources: selected, then on-stage, then shared screens, then
//!    by how recently their publisher was the dominant speaker, then the
//!    rest;
//! 2. last-N: only the first N are forwarded, the others are paused — a
//!    shared screen that is selected or on stage is forwarded besides them
//!    (it is what the receiver is looking at, not one face of many);
//! 3. give each forwarded source its lowest layer in that order, then raise
//!    them round by round, never past the layer its drawn height needs (a
//!    shared screen: its best layer wherever it is drawn — text needs every
//!    pixel, and a screen is sent as one high-resolution layer), while the
//!    estimate has room.
//!
//! Downgrades follow the estimate at once, but a video is paused only when
//! the path showed congestion lately (the estimate fell, packets lost) and the
//! lowest layers exceed by a quarter the highest estimate of the last two
//! seconds; an upgrade needs 10 % headroom,
//! and when the wanted allocation does not fit the estimate the caller is
//! told to probe for it (the estimate of an SFU that sends only what it
//! allocated cannot grow by itself).

use std::collections::BTreeMap;

/// What a receiver gets of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// Nothing (last-N, or no bandwidth at all).
    Paused,
    /// This layer (0 = lowest).
    Layer(u8),
}

/// One remote video source as a receiver sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceView {
    /// Source id.
    pub source: u64,
    /// Its publisher's rank by dominant-speaker recency (0 = the current
    /// dominant speaker; `None`: never dominant).
    pub speaker_rank: Option<usize>,
    /// The receiver pinned it.
    pub selected: bool,
    /// The receiver shows it large.
    pub on_stage: bool,
    /// The tallest height the receiver draws it at (`None`: no limit;
    /// 0: not drawn, paused).
    pub max_height: Option<u32>,
    /// Bit/s of each layer (lowest first), as the allocator counts it (the
    /// hub gives the highest of the last few seconds); 0 = the publisher
    /// does not send that layer now.
    pub layer_bps: [u32; 3],
    /// Layers the source has.
    pub layers: u8,
    /// A shared screen (`content: screen`), not a camera.
    pub screen: bool,
}

impl SourceView {
    /// Forwarded whatever last-N says: a shared screen the receiver shows
    /// large.
    fn beyond_last_n(&self) -> bool {
        self.screen && (self.selected || self.on_stage)
    }
}

/// A receiver's situation.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverView {
    /// Its path's estimate (bit/s); `None` before any feedback.
    pub estimate_bps: Option<u64>,
    /// The highest estimate of the last [`PAUSE_HOLD`]: a video is paused
    /// only when the lowest layers exceed even that (by a quarter), so a
    /// dip of the estimate shorter than the hold lowers layers but pauses
    /// nothing. `None`: the current estimate alone.
    pub recent_max_bps: Option<u64>,
    /// The path showed congestion lately (within [`FALL_MEMORY`]): the
    /// estimate fell and the receiver lost packets. Only then are lowest
    /// layers paused for bandwidth. A low estimate alone is not enough: a
    /// receive-side REMB climbs about 8 % a second from what arrives (an
    /// aiortc receiver's started at 44 kbit/s and took 10 s to carry two
    /// 50 kbit/s videos, which were paused and resumed in turn all the
    /// while), and a delay-based one falls when a busy receiver reads late
    /// (three aiortc clients on two cores reported 50 kbit/s while taking
    /// 100 without loss). A path that is really too narrow for the lowest
    /// layers overflows its queue and loses packets.
    pub congested: bool,
    /// What its audio takes of the path (bit/s, packet overhead included):
    /// the estimate covers everything sent to it, so the videos share what
    /// is left. On a 400 kbit/s path, a 320 kbit/s layer that fitted the
    /// 355 kbit/s estimate next to 60 kbit/s of audio lost 5 % of it.
    pub audio_bps: u64,
    /// Forward at most this many videos (`None`: all).
    pub last_n: Option<usize>,
    /// Its remote video sources.
    pub sources: Vec<SourceView>,
}

/// The allocation for one receiver.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Allocation {
    /// Target per source.
    pub targets: BTreeMap<u64, Target>,
    /// What the allocation costs (bit/s).
    pub cost_bps: u64,
    /// The allocation the receiver's wishes want if bandwidth were no
    /// limit costs this much; above the estimate, probe for it.
    pub wanted_bps: u64,
}

/// Layer bit rates assumed before a source reports its own (Chrome's
/// defaults for 180p/360p/720p at 30 fps, roughly).
pub const NOMINAL_BPS: [u32; 3] = [150_000, 500_000, 1_500_000];

/// An audio stream's rate assumed before its source reports its own (Opus
/// voice as browsers send it).
pub const NOMINAL_AUDIO_BPS: u64 = 40_000;

/// What a source's reported rate leaves out of an audio stream on the wire:
/// UDP/IPv4 headers and the SRTP tag (44 bytes) on 50 packets a second.
pub const AUDIO_OVERHEAD_BPS: u64 = 44 * 8 * 50;

/// Upgrades need this much headroom over their cost.
pub const UPGRADE_HEADROOM: f64 = 1.1;

/// The lowest layers may exceed the estimate by this much before a video is
/// paused. A delay-based estimate that detects overuse drops to 0.85 × what
/// was acknowledged, below the cost of what flows; a video paused for that
/// freezes for a second or more (the resume waits for a keyframe), while a
/// lowest layer costs a tenth of a top one. A path that really is narrower
/// keeps lowering the estimate, and videos go.
const LOWEST_LAYER_SLACK: f64 = 1.25;

/// How long the estimate must stay low before a video is paused for it
/// (the hub keeps the estimates of this long; [`ReceiverView::recent_max_bps`]).
/// On a busy machine, estimates dipped for 0.6–1.8 s and came back with the
/// next probe while nothing on the path had changed.
pub const PAUSE_HOLD: std::time::Duration = std::time::Duration::from_millis(2000);

/// An estimate below this fraction of the highest of the last
/// [`PAUSE_HOLD`] has fallen (an AIMD or delay-based backoff is to 0.85 ×
/// what arrived, usually far below the estimate; noise is a few percent).
pub const FALL_FRACTION: f64 = 0.85;

/// The loss (fraction of packets) that, with a fall of the estimate, shows
/// congestion.
pub const CONGESTION_LOSS: f64 = 0.05;

/// How long a fall of the estimate, or a loss, counts as congestion. On a
/// path that really is narrow, videos resumed after it overload the path
/// again and pause again: a probe every 10 s.
pub const FALL_MEMORY: std::time::Duration = std::time::Duration::from_secs(10);

/// The highest layer a drawn height needs: simulcast layers are about ¼, ½
/// and full height of a 720p camera.
pub fn layer_for_height(height: u32) -> u8 {
    match height {
        0..=240 => 0,
        241..=480 => 1,
        _ => 2,
    }
}

fn rates(s: &SourceView) -> [u32; 3] {
    let reported = s.layer_bps.iter().any(|&b| b > 0);
    if reported { s.layer_bps } else { NOMINAL_BPS }
}

/// The highest layer this receiver should get of `s` with no bandwidth
/// limit: the best one the publisher sends at or below what the drawn
/// height needs, else the lowest one sent above it.
fn ceiling(s: &SourceView) -> Option<u8> {
    if s.max_height == Some(0) || s.layers == 0 {
        return None;
    }
    let layers = s.layers.min(3);
    let cap = match s.screen {
        true => 2,
        false => s.max_height.map_or(2, layer_for_height),
    }
    .min(layers - 1);
    let r = rates(s);
    let sent = |l: &u8| r[usize::from(*l)] > 0;
    (0..=cap)
        .rev()
        .find(sent)
        .or_else(|| (cap + 1..layers).find(sent))
}

/// Sources in priority order.
fn ordered(sources: &[SourceView]) -> Vec<&SourceView> {
    let mut v: Vec<&SourceView> = sources.iter().collect();
    v.sort_by_key(|s| {
        (
            !s.selected,
            !s.on_stage,
            !s.screen,
            s.speaker_rank.unwrap_or(usize::MAX),
            s.source,
        )
    });
    v
}

/// Allocates within `budget` (bit/s), lowest layers within `low_budget`;
/// returns targets and cost.
fn fill(
    order: &[&SourceView],
    forwarded: &[bool],
    (budget, low_budget): (f64, f64),
) -> (BTreeMap<u64, Target>, u64) {
    let mut targets: BTreeMap<u64, Target> =
        order.iter().map(|s| (s.source, Target::Paused)).collect();
    let mut layer: Vec<Option<u8>> = vec![None; order.len()];
    let mut spent = 0.0;
    let cost = |s: &SourceView, l: u8| f64::from(rates(s)[usize::from(l)]);
    // lowest layers first, in order, with some slack; the first source
    // always gets one
    for (i, s) in order.iter().enumerate().filter(|(i, _)| forwarded[*i]) {
        let Some(top) = ceiling(s) else { continue };
        let low = (0..=top)
            .find(|&l| rates(s)[usize::from(l)] > 0)
            .unwrap_or(0);
        let c = cost(s, low);
        if spent + c <= low_budget || i == 0 {
            layer[i] = Some(low);
            spent += c;
        }
    }
    // then raise round by round
    loop {
        let mut raised = false;
        for (i, s) in order.iter().enumerate().filter(|(i, _)| forwarded[*i]) {
            let (Some(cur), Some(top)) = (layer[i], ceiling(s)) else {
                continue;
            };
            let Some(next) = (cur + 1..=top).find(|&l| rates(s)[usize::from(l)] > 0) else {
                continue;
            };
            let delta = cost(s, next) - cost(s, cur);
            if spent + delta <= budget {
                layer[i] = Some(next);
                spent += delta;
                raised = true;
            }
        }
        if !raised {
            break;
        }
    }
    for (i, s) in order.iter().enumerate() {
        if let Some(l) = layer[i] {
            targets.insert(s.source, Target::Layer(l));
        }
    }
    (targets, spent as u64)
}

/// Which of the ordered sources are forwarded: the first `n` (all with
/// `None`), not counting shared screens shown large, which always are.
fn last_n(order: &[&SourceView], n: Option<usize>) -> Vec<bool> {
    let mut left = n.unwrap_or(usize::MAX);
    order
        .iter()
        .map(|s| {
            if s.beyond_last_n() {
                return true;
            }
            let counted = left > 0;
            left = left.saturating_sub(1);
            counted
        })
        .collect()
}

/// The allocation for `r`, given the previous one (for hysteresis).
pub fn allocate(r: &ReceiverView, previous: &Allocation) -> Allocation {
    let order = ordered(&r.sources);
    let forwarded = last_n(&order, r.last_n);
    let (wanted, wanted_bps) = fill(&order, &forwarded, (f64::INFINITY, f64::INFINITY));
    let Some(estimate) = r.estimate_bps else {
        // no feedback yet: what the receiver wants
        return Allocation {
            targets: wanted,
            cost_bps: wanted_bps,
            wanted_bps,
        };
    };
    let budget = estimate.saturating_sub(r.audio_bps) as f64;
    let low_budget = match r.congested {
        true => {
            let recent = r.recent_max_bps.unwrap_or(estimate).max(estimate);
            recent.saturating_sub(r.audio_bps) as f64 * LOWEST_LAYER_SLACK
        }
        false => f64::INFINITY,
    };
    let (targets, cost) = fill(&order, &forwarded, (budget, low_budget));
    // an upgrade over the previous allocation needs headroom
    let upgraded = targets
        .iter()
        .any(|(s, t)| previous.targets.get(s).is_none_or(|p| t > p))
        && previous.cost_bps > 0;
    if upgraded && (cost as f64) * UPGRADE_HEADROOM > budget {
        let (targets, cost) = fill(
            &order,
            &forwarded,
            (budget / UPGRADE_HEADROOM, low_budget / UPGRADE_HEADROOM),
        );
        return Allocation {
            targets,
            cost_bps: cost,
            wanted_bps,
        };
    }
    Allocation {
        targets,
        cost_bps: cost,
        wanted_bps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(source: u64) -> SourceView {
        SourceView {
            source,
            speaker_rank: None,
            selected: false,
            on_stage: false,
            max_height: None,
            layer_bps: [150_000, 500_000, 1_500_000],
            layers: 3,
            screen: false,
        }
    }

    /// A shared screen: one layer of 1.2 Mbit/s.
    fn screen(source: u64) -> SourceView {
        SourceView {
            layer_bps: [1_200_000, 0, 0],
            layers: 1,
            screen: true,
            ..src(source)
        }
    }

    fn view(estimate: Option<u64>, sources: Vec<SourceView>) -> ReceiverView {
        ReceiverView {
            estimate_bps: estimate,
            recent_max_bps: None,
            congested: true,
            audio_bps: 0,
            last_n: None,
            sources,
        }
    }

    fn layers(a: &Allocation) -> Vec<Target> {
        a.targets.values().copied().collect()
    }

    #[test]
    fn plenty_of_bandwidth_gives_every_source_its_top_layer() {
        let a = allocate(
            &view(Some(10_000_000), vec![src(1), src(2)]),
            &Allocation::default(),
        );
        assert_eq!(layers(&a), [Target::Layer(2), Target::Layer(2)]);
        assert_eq!(a.cost_bps, 3_000_000);
    }

    #[test]
    fn drawn_heights_cap_the_layers() {
        let mut small = src(1);
        small.max_height = Some(180);
        let mut medium = src(2);
        medium.max_height = Some(360);
        let mut hidden = src(3);
        hidden.max_height = Some(0);
        let a = allocate(
            &view(Some(10_000_000), vec![small, medium, hidden]),
            &Allocation::default(),
        );
        assert_eq!(
            layers(&a),
            [Target::Layer(0), Target::Layer(1), Target::Paused]
        );
    }

    #[test]
    fn a_tight_estimate_goes_to_the_selected_and_the_speakers_first() {
        let mut selected = src(3);
        selected.selected = true;
        let mut speaker = src(2);
        speaker.speaker_rank = Some(0);
        let other = src(1);
        // 350 kbit/s: everyone's lowest layer (450k) does not fit, even
        // with the slack: the selected source gets its low layer, the
        // speaker too, then nothing
        let a = allocate(
            &view(
                Some(350_000),
                vec![other.clone(), speaker.clone(), selected.clone()],
            ),
            &Allocation::default(),
        );
        assert_eq!(a.targets[&3], Target::Layer(0));
        assert_eq!(a.targets[&2], Target::Layer(0));
        assert_eq!(a.targets[&1], Target::Paused);
        // 1.2 Mbit/s: the selected rises first
        let a = allocate(
            &view(Some(1_200_000), vec![other, speaker, selected]),
            &Allocation::default(),
        );
        assert_eq!(a.targets[&3], Target::Layer(1));
        assert_eq!(a.targets[&2], Target::Layer(1));
        assert_eq!(a.targets[&1], Target::Layer(0));
    }

    #[test]
    fn last_n_pauses_the_rest() {
        let mut v = view(Some(10_000_000), (1..=4).map(src).collect());
        v.sources[2].speaker_rank = Some(0);
        v.sources[3].speaker_rank = Some(1);
        v.last_n = Some(2);
        let a = allocate(&v, &Allocation::default());
        assert_eq!(a.targets[&3], Target::Layer(2));
        assert_eq!(a.targets[&4], Target::Layer(2));
        assert_eq!(a.targets[&1], Target::Paused);
        assert_eq!(a.targets[&2], Target::Paused);
    }

    #[test]
    fn a_screen_on_stage_is_forwarded_beyond_last_n_and_served_before_faces() {
        let mut v = view(Some(10_000_000), (1..=3).map(src).collect());
        v.sources[0].speaker_rank = Some(0);
        v.sources.push(screen(9));
        v.last_n = Some(1);
        // not on stage: the screen is one of the N, and outranks the speaker
        let a = allocate(&v, &Allocation::default());
        assert_eq!(a.targets[&9], Target::Layer(0));
        assert_eq!(a.targets[&1], Target::Paused);
        // on stage: besides the N, who are the faces that would be there
        // without it
        v.sources[3].on_stage = true;
        let a = allocate(&v, &Allocation::default());
        assert_eq!(a.targets[&9], Target::Layer(0));
        assert_eq!(a.targets[&1], Target::Layer(2));
        assert_eq!(a.targets[&2], Target::Paused);
        assert_eq!(a.targets[&3], Target::Paused);
        // with little bandwidth the screen gets it first
        v.estimate_bps = Some(1_000_000);
        let a = allocate(&v, &Allocation::default());
        assert_eq!(a.targets[&9], Target::Layer(0));
        assert_eq!(a.targets[&1], Target::Paused);
    }

    #[test]
    fn a_screen_gets_its_best_layer_at_any_drawn_height() {
        let mut s = screen(9);
        s.layers = 2;
        s.layer_bps = [300_000, 1_200_000, 0];
        s.max_height = Some(180);
        let mut face = src(1);
        face.max_height = Some(180);
        let a = allocate(
            &view(Some(10_000_000), vec![s.clone(), face]),
            &Allocation::default(),
        );
        assert_eq!(a.targets[&9], Target::Layer(1));
        assert_eq!(a.targets[&1], Target::Layer(0));
        // a screen not drawn at all is paused like any video
        s.max_height = Some(0);
        let a = allocate(&view(Some(10_000_000), vec![s]), &Allocation::default());
        assert_eq!(a.targets[&9], Target::Paused);
    }

    #[test]
    fn even_a_tiny_estimate_keeps_the_first_source_at_its_low_layer() {
        let a = allocate(
            &view(Some(10_000), vec![src(1), src(2)]),
            &Allocation::default(),
        );
        assert_eq!(layers(&a), [Target::Layer(0), Target::Paused]);
    }

    #[test]
    fn a_dip_of_the_estimate_below_the_lowest_layers_pauses_nothing() {
        let three = || (1..=3).map(src).collect::<Vec<_>>();
        // 450 kbit/s of lowest layers: 400 (an overuse's 0.85 × 470) keeps
        // all three, 300 does not
        let a = allocate(&view(Some(400_000), three()), &Allocation::default());
        assert_eq!(layers(&a), [Target::Layer(0); 3]);
        let a = allocate(&view(Some(300_000), three()), &a);
        assert_eq!(
            layers(&a),
            [Target::Layer(0), Target::Layer(0), Target::Paused]
        );
        // the slack is for lowest layers only: 480k does not raise one
        // source to its 500k layer
        let a = allocate(&view(Some(480_000), vec![src(1)]), &a);
        assert_eq!(layers(&a), [Target::Layer(0)]);
    }

    #[test]
    fn a_dip_shorter_than_the_hold_lowers_layers_but_pauses_nothing() {
        let two = || vec![src(1), src(2)];
        let high = allocate(&view(Some(1_500_000), two()), &Allocation::default());
        assert_eq!(layers(&high), [Target::Layer(1), Target::Layer(1)]);
        // the estimate dips to 200k while 1.5M is recent: lowest layers
        let mut v = view(Some(200_000), two());
        v.recent_max_bps = Some(1_500_000);
        let dip = allocate(&v, &high);
        assert_eq!(layers(&dip), [Target::Layer(0), Target::Layer(0)]);
        // once the hold has passed with the estimate low, one goes
        v.recent_max_bps = Some(220_000);
        let low = allocate(&v, &dip);
        assert_eq!(layers(&low), [Target::Layer(0), Target::Paused]);
    }

    #[test]
    fn a_low_estimate_without_congestion_pauses_no_lowest_layer() {
        // a REMB still climbing from what arrived, or one fallen without
        // loss: 60 kbit/s for two 50 kbit/s videos
        let mut s = [src(1), src(2)];
        for s in s.iter_mut() {
            s.layer_bps = [50_000, 0, 0];
        }
        let mut v = view(Some(60_000), s.to_vec());
        v.congested = false;
        let a = allocate(&v, &Allocation::default());
        assert_eq!(layers(&a), [Target::Layer(0), Target::Layer(0)]);
        assert_eq!(a.cost_bps, 100_000);
        // nor lets one rise beyond the estimate
        let a = allocate(&view_uncongested(Some(200_000), vec![src(1)]), &a);
        assert_eq!(layers(&a), [Target::Layer(0)]);
        // once the path lost packets too, the second goes
        v.congested = true;
        let a = allocate(&v, &a);
        assert_eq!(layers(&a), [Target::Layer(0), Target::Paused]);
    }

    #[test]
    fn the_videos_share_what_the_audio_leaves() {
        // the narrow-path test's numbers: 400 kbit/s, estimate 355
        let mut s = src(1);
        s.layer_bps = [130_000, 321_000, 700_000];
        let mut v = view(Some(355_000), vec![s]);
        let low = Allocation {
            targets: [(1, Target::Layer(0))].into(),
            cost_bps: 130_000,
            wanted_bps: 700_000,
        };
        assert_eq!(layers(&allocate(&v, &low)), [Target::Layer(1)], "no audio");
        v.audio_bps = 40_000 + AUDIO_OVERHEAD_BPS;
        assert_eq!(layers(&allocate(&v, &low)), [Target::Layer(0)]);
        // and no audio left at all still forwards the lowest layer
        v.audio_bps = 1_000_000;
        assert_eq!(layers(&allocate(&v, &low)), [Target::Layer(0)]);
    }

    fn view_uncongested(estimate: Option<u64>, sources: Vec<SourceView>) -> ReceiverView {
        ReceiverView {
            congested: false,
            ..view(estimate, sources)
        }
    }

    #[test]
    fn layers_the_publisher_does_not_send_are_skipped() {
        let mut s = src(1);
        s.layer_bps = [150_000, 500_000, 0]; // Chrome dropped its top layer
        let a = allocate(&view(Some(10_000_000), vec![s]), &Allocation::default());
        assert_eq!(layers(&a), [Target::Layer(1)]);
    }

    #[test]
    fn upgrades_need_headroom_and_downgrades_do_not() {
        let v = |e| view(Some(e), vec![src(1)]);
        let low = allocate(&v(600_000), &Allocation::default());
        assert_eq!(layers(&low), [Target::Layer(1)]);
        // 1.55 Mbit/s would carry 1.5 but not with 10 % headroom: stay
        let a = allocate(&v(1_550_000), &low);
        assert_eq!(layers(&a), [Target::Layer(1)]);
        assert_eq!(a.wanted_bps, 1_500_000, "worth probing for");
        let a = allocate(&v(1_700_000), &low);
        assert_eq!(layers(&a), [Target::Layer(2)]);
        // down at once
        let a = allocate(&v(400_000), &a);
        assert_eq!(layers(&a), [Target::Layer(0)]);
    }

    #[test]
    fn without_an_estimate_the_wishes_rule() {
        let mut s = src(1);
        s.max_height = Some(360);
        let a = allocate(&view(None, vec![s]), &Allocation::default());
        assert_eq!(layers(&a), [Target::Layer(1)]);
    }
}
