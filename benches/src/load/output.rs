//! Reports for machines and people: a CSV time series, a ramp table and an
//! SVG plot (written by hand: a polyline needs no plotting library).

use super::Sample;
use super::ramp::Step;
use std::fmt::Write;

/// `t,sent_pps,received_pps` rows.
pub fn csv(timeline: &[Sample]) -> String {
    let mut out = String::from("t,sent_pps,received_pps\n");
    for s in timeline {
        let _ = writeln!(out, "{:.1},{:.0},{:.0}", s.t, s.sent_pps, s.received_pps);
    }
    out
}

/// The ramp as a table: one line per step, the knee marked.
pub fn ramp_table(steps: &[Step]) -> String {
    let knee = super::ramp::knee(steps).map(|s| s.rooms);
    let mut out =
        String::from("rooms  clients  forwarded pkt/s  loss %   p50 ms  p99 ms  p99.9 ms\n");
    for s in steps {
        let r = &s.report;
        let _ = writeln!(
            out,
            "{:>5}  {:>7}  {:>15.0}  {:>6.3}  {:>6.2}  {:>6.2}  {:>8.2}{}",
            s.rooms,
            r.clients,
            r.received_pps,
            r.loss() * 100.0,
            r.latency_us[0] as f64 / 1000.0,
            r.latency_us[1] as f64 / 1000.0,
            r.latency_us[2] as f64 / 1000.0,
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

/// An SVG line chart of received packets/s over time.
pub fn svg(timeline: &[Sample], title: &str) -> String {
    let (w, h, pad) = (720.0, 360.0, 48.0);
    let t_max = timeline.iter().map(|s| s.t).fold(1.0, f64::max);
    let y_max = timeline
        .iter()
        .map(|s| s.received_pps.max(s.sent_pps))
        .fold(1.0, f64::max)
        * 1.1;
    let x = |t: f64| pad + (w - 2.0 * pad) * t / t_max;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v / y_max;
    let line = |f: &dyn Fn(&Sample) -> f64| {
        timeline
            .iter()
            .map(|s| format!("{:.1},{:.1}", x(s.t), y(f(s))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{pad}" y="24" font-size="14">{title}</text>
<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="black"/>
<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{b}" stroke="black"/>
<text x="{r}" y="{lb}" text-anchor="end">{t_max:.0} s</text>
<text x="4" y="{pad}">{y_max:.0}</text>
<text x="4" y="{lb}">pkt/s</text>
<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{recv}"/>
<polyline fill="none" stroke="#ff7f0e" stroke-width="1" stroke-dasharray="4 3" points="{sent}"/>
<text x="{r}" y="{pad}" text-anchor="end" fill="#1f77b4">received</text>
<text x="{r}" y="{l2}" text-anchor="end" fill="#ff7f0e">sent</text>
</svg>
"##,
        b = h - pad,
        r = w - pad,
        lb = h - pad + 16.0,
        l2 = pad + 14.0,
        recv = line(&|s| s.received_pps),
        sent = line(&|s| s.sent_pps),
    );
    out
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
            })
            .collect()
    }

    #[test]
    fn csv_and_svg_carry_every_sample() {
        let c = csv(&samples());
        assert_eq!(c.lines().count(), 6);
        assert!(c.contains("3.0,100,300"));
        let s = svg(&samples(), "test");
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<polyline").count(), 2);
    }
}
