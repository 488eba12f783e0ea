//! Reports for machines and people: a CSV time series, a ramp table and an
//! SVG plot (written by hand: a polyline needs no plotting library).

use super::Sample;
use super::ramp::{Limit, RampRun, Step, Summary};
use std::fmt::Write;

/// `t,sent_pps,received_pps,p99_ms,missing_pps` rows.
pub fn csv(timeline: &[Sample]) -> String {
    let mut out = String::from("t,sent_pps,received_pps,p99_ms,missing_pps\n");
    for s in timeline {
        let _ = writeln!(
            out,
            "{:.1},{:.0},{:.0},{:.3},{:.0}",
            s.t, s.sent_pps, s.received_pps, s.p99_ms, s.missing_pps
        );
    }
    out
}

/// The per-second series of every step of a ramp, one after the other on one
/// time axis (the seconds without media, setting up, left out).
pub fn ramp_timeline(steps: &[Step]) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut offset = 0.0;
    for step in steps {
        let media: Vec<&Sample> = step
            .report
            .timeline
            .iter()
            .filter(|s| s.sent_pps > 0.0 || s.received_pps > 0.0)
            .collect();
        let first = media.first().map_or(0.0, |s| s.t);
        for s in media {
            out.push(Sample {
                t: offset + s.t - first,
                ..*s
            });
        }
        offset = out.last().map_or(offset, |s| s.t + 1.0);
    }
    out
}

/// The ramp as a table: one line per step, the knee marked.
pub fn ramp_table(steps: &[Step]) -> String {
    let knee = super::ramp::knee(steps).map(|s| s.rooms);
    let mut out = String::from(
        "rooms  clients  forwarded pkt/s  loss %   p50 ms  p99 ms  p99.9 ms  SFU ns/pkt  SFU cores  gen. cores\n",
    );
    let opt = |v: Option<f64>, decimals: usize| {
        v.map_or_else(|| "–".to_string(), |v| format!("{v:.decimals$}"))
    };
    for s in steps {
        let r = &s.report;
        let _ = writeln!(
            out,
            "{:>5}  {:>7}  {:>15.0}  {:>6.3}  {:>6.2}  {:>6.2}  {:>8.2}  {:>10}  {:>9}  {:>10}{}",
            s.rooms,
            r.clients,
            r.received_pps,
            r.loss() * 100.0,
            r.latency_us[0] as f64 / 1000.0,
            r.latency_us[1] as f64 / 1000.0,
            r.latency_us[2] as f64 / 1000.0,
            opt(r.cpu_ns_per_packet, 0),
            opt(r.cpu_cores, 2),
            opt(r.generator_cores, 2),
            if Some(s.rooms) == knee {
                "  ← knee"
            } else if s.kept_up {
                ""
            } else {
                "  (fell behind)"
            }
        );
    }
    out
}

/// Runs against several SFUs side by side, each headed by its name in
/// `names` (its target's when missing), the first against each other as
/// ratios (how many times better the first is).
pub fn compare_table(runs: &[RampRun], names: &[String]) -> String {
    let summaries: Vec<Option<Summary<'_>>> = runs.iter().map(RampRun::summary).collect();
    let mut out = String::new();
    let head: Vec<String> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("{:?}", r.target))
        })
        .collect();
    // columns as wide as the longest name, and at least 18
    let w = head
        .iter()
        .map(|h| h.chars().count() + 2)
        .max()
        .unwrap_or(0)
        .max(18);
    let _ = write!(out, "{:<34}", "");
    for h in &head {
        let _ = write!(out, "{h:>w$}");
    }
    if runs.len() > 1 {
        let _ = write!(out, "   first vs. others");
    }
    out.push('\n');
    type Metric<'m> = (
        &'m str,
        &'m dyn Fn(&Summary<'_>) -> Option<f64>,
        bool,
        usize,
    );
    // (label, value, higher is better, decimals)
    let pps = |s: &Summary<'_>| Some(s.top.report.received_pps);
    let ns = |s: &Summary<'_>| s.top.report.cpu_ns_per_packet;
    let cores = |s: &Summary<'_>| s.top.report.cpu_cores;
    let per_core = |s: &Summary<'_>| Some(s.top.report.received_pps / s.top.report.cpu_cores?);
    let p = |i: usize| move |s: &Summary<'_>| Some(s.top.report.latency_us[i] as f64 / 1000.0);
    let (p50, p99, p999) = (p(0), p(1), p(2));
    let p99_80 = |s: &Summary<'_>| Some(s.at_80?.report.latency_us[1] as f64 / 1000.0);
    let pps_80 = |s: &Summary<'_>| Some(s.at_80?.report.received_pps);
    let metrics: [Metric<'_>; 9] = [
        ("knee, forwarded packets/s", &pps, true, 0),
        ("CPU ns per forwarded packet", &ns, false, 0),
        ("CPU cores busy at the knee", &cores, false, 2),
        ("packets/s per busy core", &per_core, true, 0),
        ("one-way p50 at the knee, ms", &p50, false, 2),
        ("one-way p99 at the knee, ms", &p99, false, 2),
        ("one-way p99.9 at the knee, ms", &p999, false, 2),
        ("step at ≤ 80 % of knee, pkt/s", &pps_80, true, 0),
        ("one-way p99 there, ms", &p99_80, false, 2),
    ];
    for (label, value, higher_better, decimals) in metrics {
        let values: Vec<Option<f64>> = summaries
            .iter()
            .map(|s| s.as_ref().and_then(value))
            .collect();
        let _ = write!(out, "{label:<34}");
        for v in &values {
            match v {
                Some(v) => {
                    let _ = write!(out, "{v:>w$.decimals$}");
                }
                None => {
                    let _ = write!(out, "{:>w$}", "–");
                }
            }
        }
        if let Some(Some(first)) = values.first() {
            for v in values.iter().skip(1) {
                if let Some(v) = v
                    && *v > 0.0
                    && *first > 0.0
                {
                    let ratio = if higher_better { first / v } else { v / first };
                    let _ = write!(out, "   {ratio:.2}×");
                }
            }
        }
        out.push('\n');
    }
    let _ = write!(out, "{:<34}", "what ended the ramp");
    for s in &summaries {
        let what = match s.map(|s| s.limit) {
            Some(Limit::Sfu) => "the SFU",
            Some(Limit::Generator) => "the generator",
            Some(Limit::NotReached) => "nothing (no knee)",
            None => "first step failed",
        };
        let _ = write!(out, "{what:>w$}");
    }
    out.push('\n');
    out
}

/// A line in a chart: name, colour, value of a sample.
type Series<'a> = (&'a str, &'a str, &'a dyn Fn(&Sample) -> f64);

/// An SVG chart of a run over time: packets/s sent and received above, the
/// p99 one-way latency of each second and the packets seen missing below.
pub fn svg(timeline: &[Sample], title: &str) -> String {
    let (w, pad) = (720.0, 48.0);
    let (top, panel, gap) = (50.0, 220.0, 56.0);
    let h = top + 14.0 + 2.0 * panel + gap + 28.0;
    let t_max = timeline.iter().map(|s| s.t).fold(1.0, f64::max);
    let x = |t: f64| pad + (w - 2.0 * pad) * t / t_max;
    let largest =
        |f: &dyn Fn(&Sample) -> f64| timeline.iter().map(f).fold(0.0, f64::max).max(1e-9) * 1.1;
    // one panel with its legend in the top left corner, above the lines;
    // `shared`: one scale for all its series (the axis says it), else each
    // series to its own largest value (its legend says it)
    let chart = |y0: f64, unit: &str, shared: bool, series: &[Series<'_>]| {
        let all = series
            .iter()
            .map(|(_, _, f)| largest(f))
            .fold(1e-9, f64::max);
        let (b, r) = (y0 + panel, w - pad);
        let prec = |v: f64| if v < 10.0 { 2 } else { 0 };
        let mut out = format!(
            "<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n\
             <line x1=\"{pad}\" y1=\"{y0}\" x2=\"{pad}\" y2=\"{b}\" stroke=\"black\"/>\n\
             <text x=\"4\" y=\"{b}\">{unit}</text>\n",
        );
        if shared {
            let _ = writeln!(
                out,
                "<text x=\"4\" y=\"{ty}\">{all:.p$}</text>",
                ty = y0 + 10.0,
                p = prec(all)
            );
        }
        for (k, (name, colour, f)) in series.iter().enumerate() {
            let max = if shared { all } else { largest(f) };
            let points: Vec<String> = timeline
                .iter()
                .map(|s| format!("{:.1},{:.1}", x(s.t), y0 + panel - panel * f(s) / max))
                .collect();
            let label = if shared {
                name.to_string()
            } else {
                format!("{name} (top of the panel: {max:.p$})", p = prec(max))
            };
            let _ = writeln!(
                out,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"{sw}\" points=\"{p}\"/>\n\
                 <text x=\"{lx}\" y=\"{ly}\" fill=\"{colour}\">{label}</text>",
                sw = if k == 0 { 2 } else { 1 },
                p = points.join(" "),
                lx = pad + 8.0,
                ly = y0 - 6.0 - 14.0 * (series.len() - 1 - k) as f64,
            );
        }
        out
    };
    let rates = chart(
        top + 14.0,
        "pkt/s",
        true,
        &[
            ("received", "#1f77b4", &|s: &Sample| s.received_pps),
            ("sent", "#ff7f0e", &|s: &Sample| s.sent_pps),
        ],
    );
    let quality = chart(
        top + 14.0 + panel + gap,
        "",
        false,
        &[
            ("p99 one-way latency, ms", "#2ca02c", &|s: &Sample| s.p99_ms),
            ("missing on arrival, pkt/s", "#d62728", &|s: &Sample| {
                s.missing_pps
            }),
        ],
    );
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{pad}\" y=\"22\" font-size=\"14\">{title}</text>\n{rates}{quality}\
         <text x=\"{r}\" y=\"{tb}\" text-anchor=\"end\">{t_max:.0} s</text>\n</svg>\n",
        r = w - pad,
        tb = h - 8.0,
        title = title.replace('&', "&amp;").replace('<', "&lt;"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Sample> {
        (1..=5)
            .map(|i| Sample {
                t: f64::from(i),
                sent_pps: 100.0,
                received_pps: 300.0,
                p99_ms: 0.5,
                missing_pps: 0.0,
            })
            .collect()
    }

    #[test]
    fn csv_and_svg_carry_every_sample() {
        let c = csv(&samples());
        assert_eq!(c.lines().count(), 6);
        assert!(c.contains("3.0,100,300,0.500,0"));
        let s = svg(&samples(), "a <test> & more");
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        // rates, latency and gaps: four series of five points each
        assert_eq!(s.matches("<polyline").count(), 4);
        assert!(s.contains("a &lt;test> &amp; more"));
        let points = s
            .split("points=\"")
            .skip(1)
            .map(|p| p.split('"').next().unwrap());
        assert!(points.clone().all(|p| p.split(' ').count() == 5));
        // every point inside the picture
        for p in points.flat_map(|p| p.split(' ')) {
            let (x, y) = p.split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            assert!(
                (0.0..=720.0).contains(&x) && (0.0..=600.0).contains(&y),
                "{p}"
            );
        }
    }

    #[test]
    fn a_ramp_timeline_lays_the_steps_end_to_end() {
        use crate::load::ramp::tests::step;
        let mut steps = vec![step(2, 0, 1000), step(4, 0, 1000)];
        for (k, s) in steps.iter_mut().enumerate() {
            // each step's clock starts at its own setup: media 3 s in
            let setup = (1..=3).map(|t| Sample {
                t: f64::from(t),
                sent_pps: 0.0,
                received_pps: 0.0,
                p99_ms: 0.0,
                missing_pps: 0.0,
            });
            let media = samples().into_iter().map(|x| Sample {
                t: x.t + 3.0,
                received_pps: 1000.0 * (k + 1) as f64,
                ..x
            });
            s.report.timeline = setup.chain(media).collect();
        }
        let t = ramp_timeline(&steps);
        assert_eq!(t.len(), 10);
        let times: Vec<f64> = t.iter().map(|s| s.t).collect();
        assert_eq!(times, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        assert_eq!((t[4].received_pps, t[5].received_pps), (1000.0, 2000.0));
    }

    #[test]
    fn compare_puts_runs_side_by_side_with_ratios() {
        use crate::load::Target;
        use crate::load::ramp::tests::{run_of, step};
        let with_cpu = |rooms, loss, ns: f64| {
            let mut s = step(rooms, loss, 2000);
            s.report.cpu_ns_per_packet = Some(ns);
            s.report.cpu_cores = Some(ns * s.report.received_pps / 1e9);
            s
        };
        // ours kept up to 8 rooms at 2000 ns, the other fell behind after 2 at 10 000 ns
        let ours = run_of((1..=4).map(|k| with_cpu(2 * k, 0, 2000.0)).collect(), 1);
        let mut theirs = run_of(
            vec![with_cpu(2, 0, 10_000.0), with_cpu(4, 900, 10_000.0)],
            1,
        );
        theirs.target = Target::Janus;
        let t = compare_table(&[ours, theirs], &["switchyard-c200".to_string()]);
        assert!(
            t.lines().next().unwrap().contains("switchyard-c200")
                && t.lines().next().unwrap().contains("Janus"),
            "{t}"
        );
        let line = |label: &str| {
            t.lines()
                .find(|l| l.starts_with(label))
                .unwrap()
                .to_string()
        };
        assert!(
            line("knee, forwarded packets/s").contains("8000") && line("knee").contains("4.00×"),
            "{t}"
        );
        assert!(
            line("CPU ns per forwarded packet").ends_with("5.00×"),
            "{t}"
        );
        assert!(
            line("what ended the ramp").contains("nothing (no knee)"),
            "{t}"
        );
        assert!(line("what ended the ramp").contains("the SFU"), "{t}");
        // 80 % of 8000: the 6-room step; the other had none below 2000
        assert!(line("step at ≤ 80 % of knee").contains("6000"), "{t}");
        assert!(line("step at ≤ 80 % of knee").contains("–"), "{t}");
    }
}
