//! The two chart kinds: line panels (one series per run) and scatter panels (estimate against
//! measurement, with the y = x line).

use plotters::prelude::*;

use super::PlotError;
use super::canvas::{Canvas, Image};

/// One named series of `(x, y)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
    /// An interval around the line, `(x, low, high)`, drawn as a translucent band in the
    /// series' colour (empty: none). Line charts only.
    pub band: Vec<(f64, f64, f64)>,
}

/// One chart: a title, axis labels and its series.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Caption above the chart.
    pub title: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description.
    pub y_label: String,
    /// The data.
    pub series: Vec<Series>,
}

/// Series colours, in order (then repeated).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

fn draw_err<E: std::fmt::Debug>(e: E) -> PlotError {
    PlotError::Draw(format!("{e:?}"))
}

/// The finite points' bounding box, padded by 5 % (a flat range gets ±0.5).
fn bounds<'a>(points: impl Iterator<Item = &'a (f64, f64)>) -> Option<((f64, f64), (f64, f64))> {
    let mut b: Option<((f64, f64), (f64, f64))> = None;
    for &(x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        b = Some(match b {
            None => ((x, x), (y, y)),
            Some(((x0, x1), (y0, y1))) => ((x0.min(x), x1.max(x)), (y0.min(y), y1.max(y))),
        });
    }
    let pad = |(lo, hi): (f64, f64)| {
        let d = hi - lo;
        if d <= f64::EPSILON * hi.abs().max(1.0) {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo - 0.05 * d, hi + 0.05 * d)
        }
    };
    b.map(|(x, y)| (pad(x), pad(y)))
}

/// A tick label with three significant digits; scientific notation for very small or large
/// magnitudes, so that ticks of a 1e-6-wide range stay distinct. `span` is the axis' width: a
/// tick within 1e-9 of it of zero is zero (tick positions carry rounding error, e.g. -1.39e-17).
fn tick_label(x: f64, span: f64) -> String {
    let a = x.abs();
    if a == 0.0 || a < 1e-9 * span.abs() {
        "0".into()
    } else if !(1e-2..1e4).contains(&a) {
        format!("{x:.2e}")
    } else {
        let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
        format!("{x:.decimals$}")
    }
}

/// Panels side by side as lines, each with a legend of its series.
pub fn draw_curves(panels: &[Panel], size: (u32, u32)) -> Result<Image, PlotError> {
    draw(panels, size, false)
}

/// Panels side by side as scatter plots, each with the y = x line.
pub fn draw_scatter(panels: &[Panel], size: (u32, u32)) -> Result<Image, PlotError> {
    draw(panels, size, true)
}

fn draw(panels: &[Panel], size: (u32, u32), scatter: bool) -> Result<Image, PlotError> {
    if panels.is_empty() {
        return Err(PlotError::NoData("no panels".into()));
    }
    let mut image = Image::new(size.0, size.1);
    {
        let root = Canvas(&mut image).into_drawing_area();
        let areas = root.split_evenly((1, panels.len()));
        for (panel, area) in panels.iter().zip(areas.iter()) {
            let band_ends: Vec<(f64, f64)> = panel
                .series
                .iter()
                .flat_map(|s| s.band.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]))
                .collect();
            let Some(((x0, x1), (y0, y1))) = bounds(
                panel
                    .series
                    .iter()
                    .flat_map(|s| s.points.iter())
                    .chain(band_ends.iter()),
            ) else {
                return Err(PlotError::NoData(format!("panel {:?}", panel.title)));
            };
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.title, ("sans-serif", 14))
                .margin(12)
                .x_label_area_size(46)
                .y_label_area_size(64)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(draw_err)?;
            // Curves are against the step: whole numbers.
            let step_label = |x: &f64| format!("{x:.0}");
            let x_value_label = |x: &f64| tick_label(*x, x1 - x0);
            let y_value_label = |y: &f64| tick_label(*y, y1 - y0);
            chart
                .configure_mesh()
                .x_label_formatter(if scatter { &x_value_label } else { &step_label })
                .y_label_formatter(&y_value_label)
                .x_desc(panel.x_label.as_str())
                .y_desc(panel.y_label.as_str())
                .x_labels(6)
                .y_labels(6)
                .label_style(("sans-serif", 12))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(draw_err)?;
            if scatter {
                let (lo, hi) = (x0.max(y0), x1.min(y1));
                if lo < hi {
                    chart
                        .draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.mix(0.4)))
                        .map_err(draw_err)?;
                }
            }
            for (i, s) in panel.series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                let band: Vec<&(f64, f64, f64)> = s
                    .band
                    .iter()
                    .filter(|(x, lo, hi)| x.is_finite() && lo.is_finite() && hi.is_finite())
                    .collect();
                if !scatter && band.len() > 1 {
                    let outline: Vec<(f64, f64)> = band
                        .iter()
                        .map(|&&(x, _, hi)| (x, hi))
                        .chain(band.iter().rev().map(|&&(x, lo, _)| (x, lo)))
                        .collect();
                    chart
                        .draw_series(std::iter::once(Polygon::new(
                            outline,
                            color.mix(0.18).filled(),
                        )))
                        .map_err(draw_err)?;
                }
                let pts = s
                    .points
                    .iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite());
                let drawn = if scatter {
                    chart.draw_series(pts.map(|p| Circle::new(p, 2, color.mix(0.5).filled())))
                } else {
                    chart.draw_series(LineSeries::new(pts, color.stroke_width(2)))
                }
                .map_err(draw_err)?;
                drawn.label(s.label.as_str()).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
            }
            if panel.series.len() > 1 || !scatter {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK.mix(0.3))
                    .label_font(("sans-serif", 12))
                    .position(SeriesLabelPosition::UpperRight)
                    .draw()
                    .map_err(draw_err)?;
            }
        }
        root.present().map_err(draw_err)?;
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_pad_and_skip_non_finite_points() {
        let pts = [(0.0, 1.0), (10.0, 3.0), (f64::NAN, 100.0)];
        let ((x0, x1), (y0, y1)) = bounds(pts.iter()).unwrap();
        assert_eq!((x0, x1), (-0.5, 10.5));
        assert!((y0 - 0.9).abs() < 1e-12 && (y1 - 3.1).abs() < 1e-12);
        assert_eq!(bounds([(2.0, 2.0)].iter()), Some(((1.5, 2.5), (1.5, 2.5))));
        assert_eq!(bounds([(f64::NAN, 1.0)].iter()), None);
    }

    #[test]
    fn tick_labels_keep_three_significant_digits() {
        assert_eq!(tick_label(0.0, 1.0), "0");
        assert_eq!(tick_label(0.2346, 1.0), "0.235");
        assert_eq!(tick_label(12.5, 1.0), "12.5");
        assert_eq!(tick_label(-1234.0, 1.0), "-1234");
        assert_eq!(tick_label(-0.0003, 1.0), "-3.00e-4");
        assert_eq!(tick_label(2.5e7, 1.0), "2.50e7");
        // Rounding error at a zero tick, on a 0.2-wide and on a 2e-5-wide axis.
        assert_eq!(tick_label(-1.39e-17, 0.2), "0");
        assert_eq!(tick_label(-1.69e-21, 2e-5), "0");
        assert_eq!(tick_label(1.0e-7, 2e-5), "1.00e-7");
    }

    #[test]
    fn a_panel_without_points_is_an_error() {
        let empty = Panel {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series {
                label: "s".into(),
                points: vec![],
                band: vec![],
            }],
        };
        assert!(matches!(
            draw_scatter(&[empty], (300, 200)),
            Err(PlotError::NoData(_))
        ));
    }
}
