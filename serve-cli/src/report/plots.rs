//! The report's figures, drawn with plotters' SVG backend into strings that the page inlines.

use anyhow::{anyhow, Result};
use plotters::prelude::*;

/// Figure size in pixels.
const SIZE: (u32, u32) = (560, 320);

/// Series colours, in order (colour-blind safe, Okabe–Ito).
const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a figure: {e}")
}

/// One named line of a line chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// How a line chart's x axis is drawn.
#[derive(Clone, Copy, PartialEq)]
pub enum XAxis {
    /// Whole numbers only (epochs, K).
    Integer,
    /// A logarithmic axis (queries/s).
    Log,
}

/// A line chart of `series` (at least one point in all), axes labelled `x` and `y`.
pub fn lines(title: &str, x: &str, y: &str, series: &[Series], axis: XAxis) -> Result<String> {
    let pts = || series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(a, b) in pts() {
        x0 = x0.min(a);
        x1 = x1.max(a);
        y0 = y0.min(b);
        y1 = y1.max(b);
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    // The legend goes in the corner the lines leave free: top right when they fall.
    let falls = series
        .iter()
        .filter_map(|s| Some((s.points.first()?.1, s.points.last()?.1)))
        .map(|(a, b)| b - a)
        .sum::<f64>()
        < 0.0;
    let legend = if falls {
        SeriesLabelPosition::UpperRight
    } else {
        SeriesLabelPosition::LowerRight
    };
    let pad = ((y1 - y0) * 0.08).max(1e-3);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56);
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                let span = (x1 - x0).round() as usize + 1;
                chart
                    .configure_mesh()
                    .x_labels(if axis == XAxis::Integer {
                        span.min(11)
                    } else {
                        8
                    })
                    .x_label_formatter(&|v: &f64| {
                        if axis == XAxis::Log || (v - v.round()).abs() < 1e-6 {
                            format!("{v:.0}")
                        } else {
                            String::new()
                        }
                    })
                    .x_desc(x)
                    .y_desc(y)
                    .light_line_style(RGBColor(235, 235, 235))
                    .draw()
                    .map_err(err)?;
                for (i, s) in series.iter().enumerate() {
                    let c = COLOURS[i % COLOURS.len()];
                    chart
                        .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
                        .map_err(err)?
                        .label(s.name.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
                    if s.points.len() <= 12 {
                        chart
                            .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                            .map_err(err)?;
                    }
                }
                chart
                    .configure_series_labels()
                    .position(legend)
                    .background_style(WHITE.mix(0.85))
                    .border_style(RGBColor(180, 180, 180))
                    .draw()
                    .map_err(err)?;
            }};
        }
        if axis == XAxis::Log {
            draw!(builder
                .build_cartesian_2d((x0.max(1e-9)..x1).log_scale(), y0..y1)
                .map_err(err)?);
        } else {
            draw!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?);
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A histogram of positive `counts` in powers-of-two bins (1, 2–3, 4–7, …, each labelled with its
/// lower bound): how many users (or items) have that many interactions.
pub fn log_histogram(title: &str, what: &str, counts: &[u32]) -> Result<String> {
    let bins = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| 31 - c.leading_zeros())
        .max()
        .map_or(1, |b| b as usize + 1);
    let mut height = vec![0u32; bins];
    for &c in counts.iter().filter(|&&c| c > 0) {
        height[(31 - c.leading_zeros()) as usize] += 1;
    }
    let top = height.iter().copied().max().unwrap_or(1).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d((0u32..bins as u32).into_segmented(), 0u32..top + top / 10 + 1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_desc(format!("interactions per {what} (log₂ bins: 1, 2–3, 4–7, …)"))
            .y_desc(format!("{what}s"))
            .x_labels(bins.min(16))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(b) | SegmentValue::Exact(b) => (1u64 << b).to_string(),
                SegmentValue::Last => String::new(),
            })
            .draw()
            .map_err(err)?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(COLOURS[0].filled())
                    .margin(2)
                    .data(height.iter().enumerate().map(|(b, &h)| (b as u32, h))),
            )
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
