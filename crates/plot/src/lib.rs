//! sluice-plot: renders a job's aggregated result curve — typically simulated
//! BER vs Eb/N0 with confidence-interval bars, over the theoretical curve — to
//! a PNG file.
//!
//! It uses plotters' pure-Rust bitmap backend with a font that is compiled into
//! the crate (DejaVu Sans, `assets/`, Bitstream Vera license), so rendering
//! works the same in a Lambda, a slim container or on a laptop: no system fonts,
//! no fontconfig.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

/// The bundled font; see `assets/LICENSE`.
static FONT_TTF: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// Family name the bundled font is registered under (plotters' default family).
const FAMILY: &str = "sans-serif";
/// On a log axis, never span more than this many decades below the largest
/// value: a theory curve heading to 1e-300 would otherwise squash the data.
const MAX_DECADES: f64 = 15.0;

/// One simulated point with its interval (e.g. a 95 % binomial CI).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    /// Abscissa (e.g. Eb/N0 in dB).
    pub x: f64,
    /// Estimate (e.g. BER). On a log axis, points with `y == 0` are skipped.
    pub y: f64,
    /// Lower end of the interval bar (`<= y`; may be 0 on a log axis: the bar
    /// then runs to the bottom of the plot).
    pub y_low: f64,
    /// Upper end of the interval bar (`>= y`).
    pub y_high: f64,
}

/// Everything needed to draw one curve plot.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePlot {
    /// Title above the plot.
    pub title: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description.
    pub y_label: String,
    /// Logarithmic y axis (what BER curves need).
    pub log_y: bool,
    /// Simulated points, drawn as markers with interval bars.
    pub points: Vec<CurvePoint>,
    /// Legend label of the simulated points.
    pub points_label: String,
    /// Optional dense reference curve `(x, y)`, drawn as a line.
    pub theory: Option<Vec<(f64, f64)>>,
    /// Legend label of the reference curve.
    pub theory_label: String,
    /// Image size in pixels `(width, height)`, each within 200..=8000.
    pub size: (u32, u32),
}

impl Default for CurvePlot {
    fn default() -> Self {
        CurvePlot {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            log_y: false,
            points: Vec::new(),
            points_label: "simulated".into(),
            theory: None,
            theory_label: "theory".into(),
            size: (1024, 720),
        }
    }
}

/// Why a plot could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The plot description is unusable (NaN, inverted interval, nothing to draw...).
    #[error("invalid plot: {0}")]
    InvalidInput(String),
    /// The bundled font could not be loaded (a build problem, not a user error).
    #[error("bundled font could not be registered with plotters")]
    Font,
    /// Creating the output directory failed.
    #[error("cannot create output directory: {0}")]
    Io(#[from] std::io::Error),
    /// plotters failed while drawing or encoding the PNG.
    #[error("drawing failed: {0}")]
    Draw(String),
}

fn draw_err<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Registers the bundled font once per process.
fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_TTF).is_ok()
    });
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// Checks `spec` and computes the axis ranges `(x, y)`.
fn ranges(spec: &CurvePlot) -> Result<(Range<f64>, Range<f64>), PlotError> {
    let bad = |m: String| Err(PlotError::InvalidInput(m));
    let (w, h) = spec.size;
    if !(200..=8000).contains(&w) || !(200..=8000).contains(&h) {
        return bad(format!("size {w}×{h} outside 200..=8000 pixels"));
    }
    for (k, p) in spec.points.iter().enumerate() {
        if ![p.x, p.y, p.y_low, p.y_high].iter().all(|v| v.is_finite()) {
            return bad(format!("point {k} has a non-finite value: {p:?}"));
        }
        if !(p.y_low <= p.y && p.y <= p.y_high) {
            return bad(format!("point {k} needs y_low <= y <= y_high: {p:?}"));
        }
        if spec.log_y && p.y_low < 0.0 {
            return bad(format!("point {k} is negative on a log axis: {p:?}"));
        }
    }
    let theory = spec.theory.as_deref().unwrap_or(&[]);
    for (k, &(x, y)) in theory.iter().enumerate() {
        if !x.is_finite() || !y.is_finite() {
            return bad(format!("theory point {k} is not finite: ({x}, {y})"));
        }
        if spec.log_y && y < 0.0 {
            return bad(format!(
                "theory point {k} is negative on a log axis: ({x}, {y})"
            ));
        }
    }

    // Values that will be drawn (log axis: positive ones only).
    let visible = |y: f64| !spec.log_y || y > 0.0;
    let xs = spec
        .points
        .iter()
        .filter(|p| visible(p.y))
        .map(|p| p.x)
        .chain(theory.iter().filter(|t| visible(t.1)).map(|t| t.0));
    let ys = spec
        .points
        .iter()
        .filter(|p| visible(p.y))
        .flat_map(|p| [p.y, p.y_low, p.y_high])
        .chain(theory.iter().map(|t| t.1))
        .filter(|&y| visible(y));
    let (x_min, x_max) = min_max(xs).ok_or_else(|| {
        PlotError::InvalidInput(if spec.log_y {
            "nothing to draw: no point or theory value above zero on the log axis".into()
        } else {
            "nothing to draw: no points and no theory curve".into()
        })
    })?;
    let (y_min, y_max) =
        min_max(ys).ok_or_else(|| PlotError::InvalidInput("nothing to draw".into()))?;

    let pad = if x_max > x_min {
        (x_max - x_min) * 0.03
    } else {
        1.0
    };
    let x = (x_min - pad)..(x_max + pad);
    let y = if spec.log_y {
        let top = 10f64.powf(y_max.log10().ceil());
        let bottom = 10f64.powf(y_min.max(y_max / 10f64.powf(MAX_DECADES)).log10().floor());
        if bottom < top {
            bottom..top
        } else {
            bottom..top * 10.0
        }
    } else {
        let pad = if y_max > y_min {
            (y_max - y_min) * 0.05
        } else {
            1.0
        };
        (y_min - pad)..(y_max + pad)
    };
    Ok((x, y))
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Renders `spec` as a PNG at `path` (parent directories are created).
///
/// Simulated points are red markers with vertical interval bars; the theory
/// curve, if any, is a blue line; a legend names both. On a log y axis, points
/// with `y == 0` are skipped (they have no position), interval bars reaching 0
/// are cut at the bottom of the plot, and the axis spans whole decades.
pub fn render_curve_png(path: &Path, spec: &CurvePlot) -> Result<(), PlotError> {
    let (x_range, y_range) = ranges(spec)?;
    ensure_font()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let root = BitMapBackend::new(path, spec.size).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;

    let y_floor = y_range.start;
    let theory: Vec<(f64, f64)> = spec
        .theory
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .copied()
        .filter(|&(_, y)| !spec.log_y || y >= y_floor)
        .collect();
    let points: Vec<CurvePoint> = spec
        .points
        .iter()
        .filter(|p| !spec.log_y || p.y > 0.0)
        .map(|p| CurvePoint {
            y_low: p.y_low.max(y_floor),
            ..*p
        })
        .collect();

    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(&spec.title, (FAMILY, 28))
        .margin(24)
        .x_label_area_size(56)
        .y_label_area_size(96);

    // The two axis types give different chart types, so the drawing code is
    // shared through a macro rather than a generic function with long bounds.
    macro_rules! draw {
        ($chart:expr, $y_fmt:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(spec.x_label.as_str())
                .y_desc(spec.y_label.as_str())
                .axis_desc_style((FAMILY, 20))
                .label_style((FAMILY, 16))
                .y_label_formatter($y_fmt)
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(draw_err)?;
            let blue = RGBColor(31, 96, 180);
            let red = RGBColor(200, 30, 30);
            if !theory.is_empty() {
                chart
                    .draw_series(LineSeries::new(
                        theory.iter().copied(),
                        blue.stroke_width(2),
                    ))
                    .map_err(draw_err)?
                    .label(spec.theory_label.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 24, y)], blue.stroke_width(2))
                    });
            }
            if !points.is_empty() {
                chart
                    .draw_series(points.iter().map(|p| {
                        ErrorBar::new_vertical(p.x, p.y_low, p.y, p.y_high, red.stroke_width(2), 12)
                    }))
                    .map_err(draw_err)?;
                chart
                    .draw_series(
                        points
                            .iter()
                            .map(|p| Circle::new((p.x, p.y), 5, red.filled())),
                    )
                    .map_err(draw_err)?
                    .label(spec.points_label.as_str())
                    .legend(move |(x, y)| Circle::new((x + 12, y), 5, red.filled()));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font((FAMILY, 18))
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .draw()
                .map_err(draw_err)?;
        }};
    }

    if spec.log_y {
        let chart = builder
            .build_cartesian_2d(x_range, y_range.log_scale())
            .map_err(draw_err)?;
        draw!(chart, &|v: &f64| format!("{v:.0e}"));
    } else {
        let chart = builder
            .build_cartesian_2d(x_range, y_range)
            .map_err(draw_err)?;
        draw!(chart, &|v: &f64| format!("{v}"));
    }
    root.present().map_err(draw_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 0.5·erfc(sqrt(Eb/N0)) via the series-free Abramowitz-Stegun 7.1.26
    /// approximation: plenty for drawing a test curve.
    fn ber_theory(db: f64) -> f64 {
        let x = 10f64.powf(db / 10.0).sqrt();
        let t = 1.0 / (1.0 + 0.327_591_1 * x);
        let poly = t
            * (0.254_829_592
                + t * (-0.284_496_736
                    + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        0.5 * poly * (-x * x).exp()
    }

    fn ber_spec() -> CurvePlot {
        let points = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 11.0, 12.0]
            .iter()
            .map(|&x| {
                let y = if x >= 12.0 { 0.0 } else { ber_theory(x) * 1.02 };
                CurvePoint {
                    x,
                    y,
                    y_low: y * 0.8,
                    y_high: y * 1.25 + 1e-9,
                }
            })
            .collect();
        CurvePlot {
            title: "BPSK over AWGN".into(),
            x_label: "Eb/N0 (dB)".into(),
            y_label: "bit error rate".into(),
            log_y: true,
            points,
            points_label: "simulated (95% CI)".into(),
            theory: Some(
                (0..=240)
                    .map(|k| (k as f64 * 0.05, ber_theory(k as f64 * 0.05)))
                    .collect(),
            ),
            theory_label: "theory 0.5·erfc(√(Eb/N0))".into(),
            ..CurvePlot::default()
        }
    }

    fn is_png(path: &Path) -> bool {
        std::fs::read(path)
            .map(|b| b.len() > 1000 && b.starts_with(b"\x89PNG\r\n\x1a\n"))
            .unwrap_or(false)
    }

    #[test]
    fn renders_log_ber_plot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/ber.png");
        render_curve_png(&path, &ber_spec()).expect("render");
        assert!(is_png(&path));
        // Keep a copy for eyeballing when asked to.
        if let Ok(out) = std::env::var("SLUICE_PLOT_SAMPLE") {
            std::fs::copy(&path, out).expect("copy sample");
        }
    }

    #[test]
    fn renders_linear_plot_without_theory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lin.png");
        let spec = CurvePlot {
            title: "linear".into(),
            points: vec![
                CurvePoint {
                    x: 1.0,
                    y: -1.0,
                    y_low: -2.0,
                    y_high: 0.0,
                },
                CurvePoint {
                    x: 2.0,
                    y: 3.0,
                    y_low: 2.5,
                    y_high: 3.5,
                },
            ],
            ..CurvePlot::default()
        };
        render_curve_png(&path, &spec).expect("render");
        assert!(is_png(&path));
    }

    #[test]
    fn log_ranges_cover_data_in_whole_decades() {
        let (x, y) = ranges(&ber_spec()).expect("ranges");
        assert!(x.start < 0.0 && x.end > 12.0);
        assert_eq!(y.end, 1.0);
        // Theory reaches ~9e-9 at 12 dB; axis goes to the decade below.
        assert!((y.start - 1e-9).abs() < 1e-24, "{y:?}");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.png");
        let mut nan = ber_spec();
        nan.points[0].y = f64::NAN;
        let mut inverted = ber_spec();
        inverted.points[1].y_low = 1.0;
        let mut negative = ber_spec();
        negative.points[1].y_low = -1.0;
        let empty = CurvePlot::default();
        let only_zeros = CurvePlot {
            log_y: true,
            points: vec![CurvePoint {
                x: 1.0,
                y: 0.0,
                y_low: 0.0,
                y_high: 1e-6,
            }],
            ..CurvePlot::default()
        };
        let tiny = CurvePlot {
            size: (10, 10),
            ..ber_spec()
        };
        for spec in [nan, inverted, negative, empty, only_zeros, tiny] {
            match render_curve_png(&path, &spec) {
                Err(PlotError::InvalidInput(_)) => {}
                other => panic!("expected InvalidInput, got {other:?}"),
            }
        }
        assert!(!path.exists());
    }
}
