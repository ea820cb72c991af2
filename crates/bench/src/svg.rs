//! The results chart, written by hand: horizontal bars grouped by
//! scenario, one per headline metric, showing civitas' advantage over
//! Mosquitto on a log scale (right of 1× = civitas better).

use crate::report::{Row, fmt_num};

const WIDTH: f64 = 960.0;
const LABEL_W: f64 = 360.0;
const RIGHT_PAD: f64 = 70.0;
const BAR_H: f64 = 14.0;
const ROW_H: f64 = 20.0;
const HEADER_H: f64 = 24.0;
const TOP: f64 = 64.0;
/// The axis spans 2^-SPAN .. 2^SPAN.
const SPAN: f64 = 3.0;

/// Metrics worth a bar: efficiency, tail latency, connection cost,
/// memory and unthrottled throughput. Fixed-rate throughput and CPU
/// shares follow from the offered load and would only add noise.
pub fn charted(row: &Row) -> bool {
    let m = row.metric.as_str();
    row.advantage().is_some()
        && !m.ends_with("broker CPU")
        && !m.ends_with("peak RSS")
        && !m.contains("p50")
        && !m.contains("p99.9")
        && (!m.ends_with("delivered msg/s") || m.contains("unthrottled"))
}

/// Headline figures of a scenario only civitas runs: shown as text, as
/// there is no ratio to draw.
fn civitas_only_headline(row: &Row) -> bool {
    let m = row.metric.as_str();
    row.civitas_only
        && row.civitas.is_some()
        && ((m.contains("p99") && !m.contains("p99.9")) || m.ends_with("broker CPU"))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn x_of(advantage: f64) -> f64 {
    let plot = WIDTH - LABEL_W - RIGHT_PAD;
    let l = advantage.log2().clamp(-SPAN, SPAN);
    LABEL_W + (l + SPAN) / (2.0 * SPAN) * plot
}

pub fn chart(title: &str, rows: &[Row]) -> String {
    let mut groups: Vec<(&str, Vec<&Row>)> = Vec::new();
    for r in rows {
        let keep = charted(r) || r.status.is_some() || civitas_only_headline(r);
        if !keep {
            continue;
        }
        match groups.last_mut() {
            Some((s, v)) if *s == r.scenario => v.push(r),
            _ => groups.push((&r.scenario, vec![r])),
        }
    }
    let bars: usize = groups.iter().map(|(_, v)| v.len()).sum();
    let height = TOP + groups.len() as f64 * HEADER_H + bars as f64 * ROW_H + 40.0;
    let mut s = String::new();
    s.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height:.0}\" viewBox=\"0 0 {WIDTH} {height:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    ));
    s.push_str(&format!(
        "<rect width=\"{WIDTH}\" height=\"{height:.0}\" fill=\"#ffffff\"/>\n<text x=\"12\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
        esc(title)
    ));
    s.push_str("<text x=\"12\" y=\"40\" fill=\"#555\">civitas advantage over Mosquitto (log scale): right of 1× civitas is better, left worse. Medians of the repetitions.</text>\n");
    let axis_bottom = height - 30.0;
    for k in -(SPAN as i32)..=(SPAN as i32) {
        let v = 2f64.powi(k);
        let x = x_of(v);
        let (stroke, w) = if k == 0 { ("#333", 1.5) } else { ("#ddd", 1.0) };
        s.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{axis_bottom:.1}\" stroke=\"{stroke}\" stroke-width=\"{w}\"/>\n",
            TOP - 6.0
        ));
        let label = if k >= 0 {
            format!("{}×", v as u32)
        } else {
            format!("1/{}×", (1.0 / v) as u32)
        };
        s.push_str(&format!(
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{label}</text>\n",
            axis_bottom + 16.0
        ));
    }
    let mut y = TOP;
    for (scenario, rows) in &groups {
        s.push_str(&format!(
            "<text x=\"12\" y=\"{:.1}\" font-weight=\"bold\">{}</text>\n",
            y + 16.0,
            esc(scenario)
        ));
        y += HEADER_H;
        for r in rows {
            let label = esc(&r.metric);
            s.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>\n",
                LABEL_W - 8.0,
                y + BAR_H - 2.0
            ));
            match (r.advantage(), &r.status) {
                (Some(a), _) => {
                    let (x0, x1) = (x_of(1.0), x_of(a));
                    let (left, w) = if x1 >= x0 {
                        (x0, x1 - x0)
                    } else {
                        (x1, x0 - x1)
                    };
                    let fill = if a >= 1.0 { "#2e7d32" } else { "#c62828" };
                    s.push_str(&format!(
                        "<rect x=\"{left:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{BAR_H}\" fill=\"{fill}\"><title>{label}: civitas {} / Mosquitto {}</title></rect>\n",
                        w.max(1.0),
                        r.civitas.map_or("—".into(), fmt_num),
                        r.mosquitto.map_or("—".into(), fmt_num),
                    ));
                    let tx = if a >= 1.0 { left + w + 4.0 } else { left - 4.0 };
                    let anchor = if a >= 1.0 { "start" } else { "end" };
                    s.push_str(&format!(
                        "<text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"#333\">{a:.2}×</text>\n",
                        y + BAR_H - 2.0
                    ));
                }
                (None, Some(status)) => {
                    s.push_str(&format!(
                        "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#888\" font-style=\"italic\">{}</text>\n",
                        LABEL_W + 4.0,
                        y + BAR_H - 2.0,
                        esc(status)
                    ));
                }
                (None, None) => {
                    if let Some(v) = r.civitas.filter(|_| civitas_only_headline(r)) {
                        s.push_str(&format!(
                            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\">civitas only: {} {}</text>\n",
                            LABEL_W + 4.0,
                            y + BAR_H - 2.0,
                            fmt_num(v),
                            esc(&r.unit)
                        ));
                    }
                }
            }
            y += ROW_H;
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Better;

    fn row(metric: &str, ratio: f64, better: Better) -> Row {
        Row {
            scenario: "ceiling".into(),
            metric: metric.into(),
            unit: String::new(),
            better: Some(better),
            civitas: Some(ratio),
            mosquitto: Some(1.0),
            ratio: Some(ratio),
            civitas_runs: vec![],
            mosquitto_runs: vec![],
            status: None,
            civitas_only: false,
        }
    }

    #[test]
    fn bars_right_for_better_left_for_worse() {
        assert!(x_of(2.0) > x_of(1.0));
        assert!(x_of(0.5) < x_of(1.0));
        assert_eq!(x_of(1000.0), x_of(8.0));
        let svg = chart(
            "t & <x>",
            &[
                row(
                    "QoS1 100 B unthrottled: msgs in+out per broker CPU-s",
                    2.0,
                    Better::Higher,
                ),
                row("QoS1 100 B at 20k/s: latency p99", 2.0, Better::Lower),
                row("QoS1 100 B at 20k/s: broker CPU", 2.0, Better::Lower),
            ],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("t &amp; &lt;x&gt;"));
        assert!(svg.contains("2.00×") && svg.contains("0.50×"));
        assert!(!svg.contains("20k/s: broker CPU"));
    }

    #[test]
    fn civitas_only_headlines_are_text() {
        let only = |metric: &str, value: f64, unit: &str| Row {
            scenario: "pipeline".into(),
            metric: metric.into(),
            unit: unit.into(),
            better: Some(Better::Lower),
            civitas: Some(value),
            mosquitto: None,
            ratio: None,
            civitas_runs: vec![value],
            mosquitto_runs: vec![],
            status: None,
            civitas_only: true,
        };
        let svg = chart(
            "t",
            &[
                only("publish-to-stored p99", 12.5, "ms"),
                only("publish-to-stored p99.9", 20.0, "ms"),
                only("broker CPU", 0.42, "cores"),
            ],
        );
        assert!(svg.contains("civitas only: 12.5 ms"), "{svg}");
        assert!(svg.contains("civitas only: 0.420 cores"), "{svg}");
        assert!(!svg.contains("20.0 ms"), "{svg}");
    }
}
