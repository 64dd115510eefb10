//! `cohort bench plot`: the history of a benchmark's ratios across runs,
//! drawn from its JSON Lines file as an SVG with plotters. One panel per
//! group of ratios (those that share a scale); x is the run (its line in
//! the file, labelled with its date), y the ratio; a target is a dashed
//! line.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::record::{Record, Target};

const WIDTH: u32 = 960;
const PANEL_HEIGHT: u32 = 340;
const FONT: &str = "sans-serif";

/// The groups of ratios in `records`, each with its ratio names, in the
/// order they first appear.
pub fn groups(records: &[Record]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = vec![];
    for r in records.iter().flat_map(|r| &r.ratios) {
        let i = match out.iter().position(|(g, _)| *g == r.group) {
            Some(i) => i,
            None => {
                out.push((r.group.clone(), vec![]));
                out.len() - 1
            }
        };
        if !out[i].1.contains(&r.name) {
            out[i].1.push(r.name.clone());
        }
    }
    out
}

/// The points of ratio `name`: (run number from 1, value).
pub fn points(records: &[Record], name: &str) -> Vec<(i32, f64)> {
    records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i as i32 + 1, r.ratio(name)?.value?)))
        .collect()
}

/// The distinct targets of ratios `names` (the latest run's).
fn targets(records: &[Record], names: &[String]) -> Vec<Target> {
    let mut out: Vec<Target> = vec![];
    for name in names {
        let t = records
            .iter()
            .rev()
            .find_map(|r| r.ratio(name)?.target.clone());
        if let Some(t) = t.filter(|t| !out.contains(t)) {
            out.push(t);
        }
    }
    out
}

/// A y range holding every value and target, with some room.
pub fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.1).max(hi.abs() * 0.05).max(1e-3);
    ((lo - pad).max(0.0), hi + pad)
}

/// The x label of run `x` (from 1): `#x MM-DD HH:MM`.
fn run_label(records: &[Record], x: i32) -> String {
    let Some(r) = usize::try_from(x - 1).ok().and_then(|i| records.get(i)) else {
        return String::new();
    };
    let when = r.date.get(5..16).unwrap_or("").replace('T', " ");
    format!("#{x} {when}")
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("plotting: {e:?}")
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    records: &[Record],
    group: &str,
    names: &[String],
) -> Result<(), String> {
    let n = records.len() as i32;
    let targets = targets(records, names);
    let values = names
        .iter()
        .flat_map(|name| points(records, name))
        .map(|(_, v)| v)
        .chain(targets.iter().map(|t| t.limit));
    let (lo, hi) = y_range(values);
    let mut chart = ChartBuilder::on(area)
        .caption(group, (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0..n + 1, lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels((n + 2).min(10) as usize)
        .x_label_formatter(&|x| run_label(records, *x))
        .y_label_formatter(&|y| format!("{y:.2}"))
        .x_desc("run")
        .y_desc("ratio")
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    for t in &targets {
        let style = BLACK.mix(0.6).stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0, t.limit), (n + 1, t.limit)],
                6,
                4,
                style,
            ))
            .map_err(err)?
            .label(format!("target {} {}", t.op, t.limit))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    for (k, name) in names.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let pts = points(records, name);
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 13))
        .draw()
        .map_err(err)
}

/// Draws `records` (one benchmark's runs, oldest first) into the SVG file
/// `path`.
pub fn draw(records: &[Record], title: &str, path: &Path) -> Result<(), String> {
    let groups = groups(records);
    if groups.is_empty() {
        return Err(format!("{title}: no ratios to plot"));
    }
    let height = PANEL_HEIGHT * groups.len() as u32 + 40;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, (FONT, 20)).map_err(err)?;
    for (area, (group, names)) in root.split_evenly((groups.len(), 1)).iter().zip(&groups) {
        panel(area, records, group, names)?;
    }
    root.present().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::super::record::{Meta, Ratio, Record};
    use super::*;

    fn run(date: &str, ping: f64, tput: Option<f64>) -> Record {
        let meta = Meta {
            date: date.into(),
            kernel: "k".into(),
            commit: None,
            dirty: None,
            host: "h".into(),
            host_load: None,
        };
        let mut r = Record::new("kmsg", meta, [0, 1]);
        r.ratios.push(Ratio::new(
            "round trip / TCP",
            "rtt ping",
            "a / b",
            ping,
            1.0,
            Some(Target::at_most(1.2)),
        ));
        r.ratios.push(Ratio::new(
            "round trip / TCP",
            "rtt hreq",
            "a / b",
            ping * 1.1,
            1.0,
            Some(Target::at_most(1.2)),
        ));
        if let Some(t) = tput {
            r.ratios.push(Ratio::new(
                "throughput / TCP",
                "throughput",
                "a / b",
                t,
                1.0,
                Some(Target::at_least(0.8)),
            ));
        }
        r
    }

    #[test]
    fn groups_points_and_ranges() {
        let runs = vec![
            run("2026-11-23T10:02:03Z", 1.1, None),
            run("2026-11-23T11:00:00Z", 1.3, Some(0.9)),
        ];
        let g = groups(&runs);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].1, vec!["rtt ping".to_string(), "rtt hreq".to_string()]);
        assert_eq!(g[1].1, vec!["throughput".to_string()]);
        assert_eq!(points(&runs, "throughput"), vec![(2, 0.9)]);
        assert_eq!(points(&runs, "rtt ping"), vec![(1, 1.1), (2, 1.3)]);
        assert_eq!(targets(&runs, &g[0].1), vec![Target::at_most(1.2)]);
        assert_eq!(run_label(&runs, 2), "#2 11-23 11:00");
        assert_eq!(run_label(&runs, 0), "");
        assert_eq!(run_label(&runs, 3), "");
        let (lo, hi) = y_range([1.0, 2.0].into_iter());
        assert!((0.0..1.0).contains(&lo) && hi > 2.0);
        assert_eq!(y_range(std::iter::empty()), (0.0, 1.0));
        let (lo, hi) = y_range([5.0].into_iter());
        assert!(lo < 5.0 && hi > 5.0);
    }

    #[test]
    fn draws_an_svg() {
        let runs = vec![
            run("2026-11-23T10:02:03Z", 1.1, Some(0.85)),
            run("2026-11-23T11:00:00Z", 1.3, Some(0.9)),
        ];
        let path = std::env::temp_dir().join(format!("cohort-plot-{}.svg", std::process::id()));
        draw(&runs, "cohort bench kmsg", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        for text in [
            "cohort bench kmsg",
            "rtt hreq",
            "throughput / TCP",
            "target &lt;= 1.2",
            "#2 11-23 11:00",
        ] {
            assert!(svg.contains(text), "no {text:?} in the SVG");
        }
        assert!(draw(&[], "empty", &path).is_err());
    }
}
