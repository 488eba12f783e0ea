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

/// Runs against several SFUs side by side, the first against each other as
/// ratios (how many times better the first is).
pub fn compare_table(runs: &[RampRun]) -> String {
    let summaries: Vec<Option<Summary<'_>>> = runs.iter().map(RampRun::summary).collect();
    let mut out = String::new();
    let head: Vec<String> = runs.iter().map(|r| format!("{:?}", r.target)).collect();
    let _ = write!(out, "{:<34}", "");
    for h in &head {
        let _ = write!(out, "{h:>18}");
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
                    let _ = write!(out, "{:>18.*}", decimals, v);
                }
                None => {
                    let _ = write!(out, "{:>18}", "–");
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
        let _ = write!(out, "{what:>18}");
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
    let (top, panel, gap) = (36.0, 220.0, 56.0);
    let h = top + 2.0 * panel + gap + 28.0;
    let t_max = timeline.iter().map(|s| s.t).fold(1.0, f64::max);
    let x = |t: f64| pad + (w - 2.0 * pad) * t / t_max;
    // one panel: its polylines scaled to the largest value shown in it
    let chart = |y0: f64, unit: &str, series: &[Series<'_>]| {
        let max = series
            .iter()
            .flat_map(|(_, _, f)| timeline.iter().map(f))
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.1;
        let y = |v: f64| y0 + panel - panel * v / max;
        let (b, r) = (y0 + panel, w - pad);
        let mut out = format!(
            "<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n\
             <line x1=\"{pad}\" y1=\"{y0}\" x2=\"{pad}\" y2=\"{b}\" stroke=\"black\"/>\n\
             <text x=\"4\" y=\"{ty}\">{max:.prec$}</text>\n<text x=\"4\" y=\"{b}\">{unit}</text>\n",
            ty = y0 + 10.0,
            prec = if max < 10.0 { 2 } else { 0 },
        );
        for (k, (name, colour, f)) in series.iter().enumerate() {
            let points: Vec<String> = timeline
                .iter()
                .map(|s| format!("{:.1},{:.1}", x(s.t), y(f(s))))
                .collect();
            let _ = writeln!(
                out,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"{sw}\" points=\"{p}\"/>\n\
                 <text x=\"{r}\" y=\"{ly}\" text-anchor=\"end\" fill=\"{colour}\">{name}</text>",
                sw = if k == 0 { 2 } else { 1 },
                p = points.join(" "),
                ly = y0 + 12.0 + 14.0 * k as f64,
            );
        }
        out
    };
    let rates = chart(
        top,
        "pkt/s",
        &[
            ("received", "#1f77b4", &|s: &Sample| s.received_pps),
            ("sent", "#ff7f0e", &|s: &Sample| s.sent_pps),
        ],
    );
    let quality = chart(
        top + panel + gap,
        "ms, pkt/s",
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
        let t = compare_table(&[ours, theirs]);
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
