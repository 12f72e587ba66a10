//! Small SVG charts drawn by hand: no fonts, scripts or network needed, so a report opens
//! anywhere (an email attachment, a file share, a browser without internet).

use std::fmt::Write;

const W: f64 = 420.0;
const H: f64 = 300.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 44.0;
pub const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart's x axis, by its label and what it counts: a continuous quantity (rates,
/// thresholds) or whole things (runs), whose ticks fall on whole numbers only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis<'a> {
    Continuous(&'a str),
    Whole(&'a str),
}

impl<'a> XAxis<'a> {
    fn label(self) -> &'a str {
        match self {
            XAxis::Continuous(label) | XAxis::Whole(label) => label,
        }
    }

    fn ticks(self) -> Ticks {
        match self {
            XAxis::Continuous(_) => Ticks::Continuous,
            XAxis::Whole(_) => Ticks::Whole,
        }
    }
}

/// Where [`axes`] puts the x tick labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ticks {
    Continuous,
    Whole,
}

pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

fn nice(v: f64) -> String {
    if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The `<svg>` element's opening: size, accessible title, white background, title line.
fn open(out: &mut String, id: &str, title: &str, height: f64, title_x: f64) {
    let _ = write!(
        out,
        "<svg id=\"{id}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {height}\" width=\"{W}\" height=\"{height}\" role=\"img\" aria-label=\"{t}\">\
         <title>{t}</title><rect width=\"{W}\" height=\"{height}\" fill=\"#fff\"/>\
         <text x=\"{title_x}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">{t}</text>",
        t = escape(title),
    );
}

fn frame(out: &mut String, id: &str, title: &str, x_label: &str, y_label: &str) {
    let cx = LEFT + (W - LEFT - RIGHT) / 2.0;
    open(out, id, title, H, cx);
    let _ = write!(
        out,
        "<text x=\"{cx}\" y=\"{xl}\" text-anchor=\"middle\" font-size=\"11\">{x}</text>\
         <text x=\"12\" y=\"{cy}\" text-anchor=\"middle\" font-size=\"11\" transform=\"rotate(-90 12 {cy})\">{y}</text>",
        cy = TOP + (H - TOP - BOTTOM) / 2.0,
        xl = H - 6.0,
        x = escape(x_label),
        y = escape(y_label),
    );
}

/// Axis lines, five gridlines with their y values, and x values under them when `x` is given
/// (bar charts label their bars instead).
fn axes(out: &mut String, x: Option<((f64, f64), Ticks)>, y: (f64, f64)) {
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, H - BOTTOM, TOP);
    let _ = write!(
        out,
        "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#333\"/><line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#333\"/>"
    );
    if let Some((range, Ticks::Whole)) = x {
        for tick in whole_ticks(range) {
            let _ = write!(
                out,
                "<text x=\"{:.2}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\">{tick}</text>",
                scale(tick as f64, range, x0, x1),
                y0 + 14.0,
            );
        }
    }
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        let (px, py) = (x0 + f * (x1 - x0), y0 - f * (y0 - y1));
        if let Some((x, Ticks::Continuous)) = x {
            let _ = write!(
                out,
                "<text x=\"{px}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\">{}</text>",
                y0 + 14.0,
                nice(x.0 + f * (x.1 - x.0)),
            );
        }
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\">{}</text>\
             <line x1=\"{x0}\" y1=\"{py}\" x2=\"{x1}\" y2=\"{py}\" stroke=\"#eee\"/>",
            x0 - 4.0,
            py + 3.0,
            nice(y.0 + f * (y.1 - y.0)),
        );
    }
}

/// Whole numbers within `range`, at most six, evenly stepped: run 1.75 is not a run.
fn whole_ticks(range: (f64, f64)) -> Vec<i64> {
    let (first, last) = (range.0.ceil() as i64, range.1.floor() as i64);
    if last < first {
        return Vec::new();
    }
    let step = ((last - first) as u64).div_ceil(5).max(1);
    (first..=last).step_by(step as usize).collect()
}

fn scale(v: f64, range: (f64, f64), from: f64, to: f64) -> f64 {
    let span = if range.1 > range.0 { range.1 - range.0 } else { 1.0 };
    from + (v - range.0) / span * (to - from)
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        let pad = if lo.abs() > 1e-12 { lo.abs() * 0.05 } else { 1.0 };
        return (lo - pad, hi + pad);
    }
    (lo, hi)
}

fn legend(out: &mut String, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        let y = TOP + 8.0 + i as f64 * 14.0;
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"10\">{}</text>",
            W - RIGHT - 120.0,
            y - 8.0,
            COLORS[i % COLORS.len()],
            W - RIGHT - 106.0,
            y + 1.0,
            escape(name)
        );
    }
}

/// Lines through each series' points; `x`/`y` ranges fixed when given, else from the data.
/// `diagonal` draws y = x (ROC chance line, perfect calibration).
pub fn lines(
    id: &str,
    title: &str,
    x_axis: XAxis,
    y_label: &str,
    series: &[Series],
    fixed: Option<((f64, f64), (f64, f64))>,
    diagonal: bool,
) -> String {
    let mut out = String::new();
    frame(&mut out, id, title, x_axis.label(), y_label);
    let (x, y) = fixed.unwrap_or_else(|| {
        (
            bounds(series.iter().flat_map(|s| s.points.iter().map(|p| p.0))),
            bounds(series.iter().flat_map(|s| s.points.iter().map(|p| p.1))),
        )
    });
    axes(&mut out, Some((x, x_axis.ticks())), y);
    let px = |v: f64| scale(v, x, LEFT, W - RIGHT);
    let py = |v: f64| scale(v, y, H - BOTTOM, TOP);
    if diagonal {
        let _ = write!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>",
            px(x.0.max(y.0)),
            py(x.0.max(y.0)),
            px(x.1.min(y.1)),
            py(x.1.min(y.1))
        );
    }
    for (i, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .points
            .iter()
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .map(|(a, b)| format!("{:.2},{:.2}", px(*a), py(*b)))
            .collect();
        let color = COLORS[i % COLORS.len()];
        let _ = write!(
            out,
            "<polyline class=\"series\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
        if s.points.len() <= 40 {
            for p in &points {
                if let Some((a, b)) = p.split_once(',') {
                    let _ = write!(out, "<circle cx=\"{a}\" cy=\"{b}\" r=\"2.5\" fill=\"{color}\"/>");
                }
            }
        }
    }
    if series.len() > 1 {
        legend(&mut out, &series.iter().map(|s| s.name).collect::<Vec<_>>());
    }
    out.push_str("</svg>");
    out
}

/// Points with the y = x line: predicted against actual.
pub fn scatter(id: &str, title: &str, x_label: &str, y_label: &str, points: &[(f64, f64)]) -> String {
    let mut out = String::new();
    frame(&mut out, id, title, x_label, y_label);
    let range = bounds(points.iter().flat_map(|p| [p.0, p.1]));
    axes(&mut out, Some((range, Ticks::Continuous)), range);
    let px = |v: f64| scale(v, range, LEFT, W - RIGHT);
    let py = |v: f64| scale(v, range, H - BOTTOM, TOP);
    let _ = write!(
        out,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>",
        px(range.0),
        py(range.0),
        px(range.1),
        py(range.1)
    );
    for (a, b) in points.iter().filter(|(a, b)| a.is_finite() && b.is_finite()) {
        let _ = write!(
            out,
            "<circle class=\"point\" cx=\"{:.2}\" cy=\"{:.2}\" r=\"3\" fill=\"{}\" fill-opacity=\"0.6\"/>",
            px(*a),
            py(*b),
            COLORS[0]
        );
    }
    out.push_str("</svg>");
    out
}

/// Grouped vertical bars: one group per label, one bar per series.
pub fn bars(id: &str, title: &str, y_label: &str, labels: &[String], series: &[(&str, Vec<f64>)]) -> String {
    let mut out = String::new();
    frame(&mut out, id, title, "", y_label);
    let top = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0, f64::max)
        .max(1e-12);
    axes(&mut out, None, (0.0, top));
    let slot = (W - LEFT - RIGHT) / labels.len().max(1) as f64;
    let width = (slot * 0.8) / series.len().max(1) as f64;
    for (s, (_, values)) in series.iter().enumerate() {
        for (i, v) in values.iter().enumerate() {
            let height = (v / top).clamp(0.0, 1.0) * (H - TOP - BOTTOM);
            let _ = write!(
                out,
                "<rect class=\"bar\" x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\"><title>{}: {}</title></rect>",
                LEFT + i as f64 * slot + slot * 0.1 + s as f64 * width,
                H - BOTTOM - height,
                width,
                height,
                COLORS[s % COLORS.len()],
                escape(&labels[i]),
                nice(*v)
            );
        }
    }
    let every = (labels.len() / 10).max(1);
    for (i, label) in labels.iter().enumerate().step_by(every) {
        let _ = write!(
            out,
            "<text x=\"{:.2}\" y=\"{}\" text-anchor=\"middle\" font-size=\"9\">{}</text>",
            LEFT + (i as f64 + 0.5) * slot,
            H - BOTTOM + 12.0,
            escape(&label.chars().take(10).collect::<String>())
        );
    }
    if series.len() > 1 {
        legend(&mut out, &series.iter().map(|(n, _)| *n).collect::<Vec<_>>());
    }
    out.push_str("</svg>");
    out
}

/// Horizontal bars, largest first: feature importance.
pub fn ranking(id: &str, title: &str, items: &[(String, f64)]) -> String {
    let mut out = String::new();
    let rows = items.len().max(1) as f64;
    open(&mut out, id, title, TOP + rows * 20.0 + 10.0, W / 2.0);
    let top = items.iter().map(|i| i.1).fold(0.0, f64::max).max(1e-12);
    let label_width = 170.0;
    for (i, (name, value)) in items.iter().enumerate() {
        let y = TOP + i as f64 * 20.0;
        let width = (value / top).clamp(0.0, 1.0) * (W - label_width - 60.0);
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\">{}</text>\
             <rect class=\"bar\" x=\"{label_width}\" y=\"{y}\" width=\"{width:.2}\" height=\"14\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\">{}</text>",
            label_width - 4.0,
            y + 11.0,
            escape(&name.chars().take(30).collect::<String>()),
            COLORS[0],
            label_width + width + 4.0,
            y + 11.0,
            nice(*value)
        );
    }
    out.push_str("</svg>");
    out
}

/// Estimates with their intervals, one row each (a forest plot), against a dashed line at
/// `reference` (0 for differences): a row whose bar misses the line differs from it.
pub fn intervals(id: &str, title: &str, rows: &[(String, f64, f64, f64)], reference: f64) -> String {
    let mut out = String::new();
    let height = TOP + rows.len().max(1) as f64 * 22.0 + 24.0;
    open(&mut out, id, title, height, W / 2.0);
    let label_width = 200.0;
    let (x0, x1) = (label_width + 6.0, W - RIGHT - 10.0);
    let range = bounds(
        rows.iter()
            .flat_map(|(_, estimate, low, high)| [*estimate, *low, *high])
            .chain([reference]),
    );
    let x = |v: f64| scale(v, range, x0, x1);
    let bottom = TOP + rows.len() as f64 * 22.0;
    let _ = write!(
        out,
        "<line x1=\"{r:.2}\" y1=\"{TOP}\" x2=\"{r:.2}\" y2=\"{bottom}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\
         <text x=\"{x0}\" y=\"{t}\" font-size=\"10\">{lo}</text><text x=\"{x1}\" y=\"{t}\" font-size=\"10\" text-anchor=\"end\">{hi}</text>",
        r = x(reference),
        t = bottom + 14.0,
        lo = nice(range.0),
        hi = nice(range.1),
    );
    for (i, (name, estimate, low, high)) in rows.iter().enumerate() {
        let y = TOP + i as f64 * 22.0 + 11.0;
        let misses = *low > reference || *high < reference;
        let color = if misses { COLORS[2] } else { COLORS[0] };
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\">{}</text>\
             <line x1=\"{:.2}\" y1=\"{y}\" x2=\"{:.2}\" y2=\"{y}\" stroke=\"{color}\" stroke-width=\"2\"/>\
             <circle cx=\"{:.2}\" cy=\"{y}\" r=\"3.5\" fill=\"{color}\"><title>{}: {} [{}, {}]</title></circle>",
            label_width,
            y + 3.0,
            escape(&name.chars().take(40).collect::<String>()),
            x(*low),
            x(*high),
            x(*estimate),
            escape(name),
            nice(*estimate),
            nice(*low),
            nice(*high)
        );
    }
    out.push_str("</svg>");
    out
}

/// A 2×2 confusion matrix, cells shaded by count.
pub fn confusion(id: &str, tp: f64, fp: f64, tn: f64, fn_: f64) -> String {
    let mut out = String::new();
    frame(&mut out, id, "Confusion matrix", "predicted", "actual");
    let top = [tp, fp, tn, fn_].into_iter().fold(1.0, f64::max);
    let cells = [(0, 0, tn, "TN"), (1, 0, fp, "FP"), (0, 1, fn_, "FN"), (1, 1, tp, "TP")];
    let (cw, ch) = ((W - LEFT - RIGHT) / 2.0, (H - TOP - BOTTOM) / 2.0);
    for (col, row, value, name) in cells {
        let (x, y) = (LEFT + col as f64 * cw, TOP + row as f64 * ch);
        let shade = 0.15 + 0.75 * value / top;
        let _ = write!(
            out,
            "<rect class=\"cell\" x=\"{x}\" y=\"{y}\" width=\"{cw}\" height=\"{ch}\" fill=\"{}\" fill-opacity=\"{shade:.2}\" stroke=\"#fff\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"14\">{name} {}</text>",
            COLORS[0],
            x + cw / 2.0,
            y + ch / 2.0,
            nice(value)
        );
    }
    for (i, label) in ["negative", "positive"].iter().enumerate() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\">{label}</text>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\">{label}</text>",
            LEFT + (i as f64 + 0.5) * cw,
            H - BOTTOM + 14.0,
            LEFT - 4.0,
            TOP + (i as f64 + 0.5) * ch
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The x tick labels of a chart (10-point text under the x axis).
    fn x_ticks(svg: &str) -> Vec<String> {
        let under_axis = format!("y=\"{}\"", H - BOTTOM + 14.0);
        svg.split("<text")
            .filter(|t| t.contains(&under_axis))
            .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text")?.0.to_string()))
            .collect()
    }

    #[test]
    fn runs_are_ticked_on_whole_numbers_and_rates_on_fractions() {
        let runs = Series {
            name: "auc",
            points: vec![(1.0, 0.9), (2.0, 0.91), (3.0, 0.9), (4.0, 0.92)],
        };
        let chart = lines("t", "auc over runs", XAxis::Whole("run"), "auc", &[runs], None, false);
        assert_eq!(x_ticks(&chart), ["1", "2", "3", "4"]);
        assert_eq!(whole_ticks((3.0, 40.0)), [3, 11, 19, 27, 35]);
        assert_eq!(whole_ticks((1.0, 6.0)), [1, 2, 3, 4, 5, 6]);
        assert_eq!(whole_ticks((5.0, 5.0)), [5]);
        let roc = Series {
            name: "model",
            points: vec![(0.0, 0.0), (1.0, 1.0)],
        };
        let chart = lines(
            "r",
            "roc",
            XAxis::Continuous("fpr"),
            "tpr",
            &[roc],
            Some(((0.0, 1.0), (0.0, 1.0))),
            true,
        );
        assert_eq!(x_ticks(&chart), ["0", "0.25", "0.50", "0.75", "1"]);
    }
}
