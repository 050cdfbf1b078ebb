//! Line plots on log–log axes rendered to PNG with plotters, one panel per
//! case. The font (DejaVu Sans) is compiled in so that plots look the same on
//! every machine and need no system fonts.

use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::report::{write_atomic, EvalError};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The bytes are the TrueType font shipped with this crate.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// How a curve is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Solid,
    Dashed,
    Dotted,
}

/// One curve.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Index into the palette.
    pub color: usize,
    pub line: LineKind,
}

/// One panel: a title and its curves.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
}

/// The axes of every panel of a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Axes {
    /// Logarithmic x and y (points with a non-positive coordinate are left out).
    #[default]
    LogLog,
    /// Linear x and y (any finite values; learning curves).
    Linear,
    /// Linear x, logarithmic y (curves that span decades or blow up).
    LogY,
}

/// A figure of panels on a grid.
#[derive(Debug, Clone)]
pub struct Figure {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub panels: Vec<Panel>,
    pub columns: usize,
    pub axes: Axes,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Whether a point can be drawn on these axes.
fn drawable(axes: Axes, (x, y): (f64, f64)) -> bool {
    x.is_finite()
        && y.is_finite()
        && match axes {
            Axes::Linear => true,
            Axes::LogY => y > 0.0,
            Axes::LogLog => x > 0.0 && y > 0.0,
        }
}

/// Linear bounds with a 5% margin (a flat curve gets a unit-wide band).
fn linear_bounds(panel: &Panel) -> (f64, f64, f64, f64) {
    let pts: Vec<(f64, f64)> = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|&p| drawable(Axes::Linear, p))
        .collect();
    if pts.is_empty() {
        return (0.0, 1.0, 0.0, 1.0);
    }
    let fold = |f: fn(f64, f64) -> f64, init: f64, get: fn(&(f64, f64)) -> f64| {
        pts.iter().map(get).fold(init, f)
    };
    let (x0, x1) = (
        fold(f64::min, f64::INFINITY, |p| p.0),
        fold(f64::max, f64::NEG_INFINITY, |p| p.0),
    );
    let (y0, y1) = (
        fold(f64::min, f64::INFINITY, |p| p.1),
        fold(f64::max, f64::NEG_INFINITY, |p| p.1),
    );
    let pad = |a: f64, b: f64| {
        if b > a {
            0.05 * (b - a)
        } else {
            0.5 * a.abs().max(1.0)
        }
    };
    let (px, py) = (pad(x0, x1), pad(y0, y1));
    (x0 - px, x1 + px, y0 - py, y1 + py)
}

fn bounds(panel: &Panel) -> (f64, f64, f64, f64) {
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in panel.series.iter().flat_map(|s| s.points.iter()) {
        if x > 0.0 && y > 0.0 && x.is_finite() && y.is_finite() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if !x0.is_finite() {
        return (1.0, 10.0, 1e-3, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 * 10.0;
    }
    if y1 <= y0 {
        y1 = y0 * 10.0;
    }
    (x0, x1 * 1.05, y0 * 0.7, y1 * 1.4)
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    fig: &Figure,
    panel: &Panel,
) -> Result<(), String> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&panel.title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60);
    match fig.axes {
        Axes::LogLog => {
            let (x0, x1, y0, y1) = bounds(panel);
            let chart = builder
                .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
                .map_err(|e| e.to_string())?;
            fill_chart(chart, fig, panel)
        }
        Axes::LogY => {
            let (x0, x1, _, _) = linear_bounds(panel);
            // bounds() needs x > 0: shift x for it, keep only its y range.
            let shifted = Panel {
                title: String::new(),
                series: panel
                    .series
                    .iter()
                    .map(|s| Series {
                        points: s.points.iter().map(|&(x, y)| (x - x0 + 1.0, y)).collect(),
                        ..s.clone()
                    })
                    .collect(),
            };
            let (_, _, y0, y1) = bounds(&shifted);
            let chart = builder
                .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                .map_err(|e| e.to_string())?;
            fill_chart(chart, fig, panel)
        }
        Axes::Linear => {
            let (x0, x1, y0, y1) = linear_bounds(panel);
            let chart = builder
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|e| e.to_string())?;
            fill_chart(chart, fig, panel)
        }
    }
}

/// Mesh, curves and legend of one panel, on either kind of axes.
fn fill_chart<'a, X, Y>(
    mut chart: ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
    fig: &Figure,
    panel: &Panel,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(&fig.x_label)
        .y_desc(&fig.y_label)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())?;
    for s in &panel.series {
        let color = PALETTE[s.color % PALETTE.len()];
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|&p| drawable(fig.axes, p))
            .collect();
        let style = ShapeStyle::from(&color).stroke_width(2);
        let anno = match s.line {
            LineKind::Solid => chart.draw_series(LineSeries::new(pts, style)),
            LineKind::Dashed => chart.draw_series(DashedLineSeries::new(pts, 8, 5, style)),
            LineKind::Dotted => chart.draw_series(DashedLineSeries::new(pts, 2, 4, style)),
        }
        .map_err(|e| e.to_string())?;
        let line = s.line;
        anno.label(s.label.clone()).legend(move |(x, y)| {
            let st = ShapeStyle::from(&color).stroke_width(2);
            match line {
                LineKind::Solid => PathElement::new(vec![(x, y), (x + 22, y)], st),
                _ => PathElement::new(vec![(x, y), (x + 6, y)], st),
            }
        });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

impl Figure {
    /// Renders the figure (each panel `panel_w`×`panel_h` pixels) and writes
    /// the PNG atomically.
    pub fn write_png(&self, path: &Path, panel_w: u32, panel_h: u32) -> Result<(), EvalError> {
        register_font();
        let enc = |reason: String| EvalError::Encode {
            path: path.to_path_buf(),
            reason,
        };
        let cols = self.columns.clamp(1, self.panels.len().max(1));
        let rows = self.panels.len().div_ceil(cols).max(1);
        let title_h = 40;
        let (w, h) = (panel_w * cols as u32, panel_h * rows as u32 + title_h);
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| enc(e.to_string()))?;
            let root = root
                .titled(&self.title, ("sans-serif", 22))
                .map_err(|e| enc(e.to_string()))?;
            let areas = root.split_evenly((rows, cols));
            for (panel, area) in self.panels.iter().zip(areas.iter()) {
                draw_panel(area, self, panel).map_err(enc)?;
            }
            root.present().map_err(|e| enc(e.to_string()))?;
        }
        let mut png_bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut png_bytes, w, h);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().map_err(|e| enc(e.to_string()))?;
            writer
                .write_image_data(&buf)
                .map_err(|e| enc(e.to_string()))?;
        }
        write_atomic(path, &png_bytes)
    }
}

/// Writes square fields (each `side`×`side`, row-major) as a grayscale PNG
/// grid, `columns` fields per row, each field scaled so that ±its largest
/// magnitude maps to black and white (zero is mid-grey), `zoom` pixels per
/// value, one grey pixel between fields. Written atomically.
pub fn write_field_grid(
    path: &Path,
    fields: &[Vec<f64>],
    side: usize,
    columns: usize,
    zoom: usize,
) -> Result<(), EvalError> {
    let cols = columns.clamp(1, fields.len().max(1));
    let rows = fields.len().div_ceil(cols).max(1);
    let cell = side * zoom + 1;
    let (w, h) = (cols * cell + 1, rows * cell + 1);
    let mut img = vec![128u8; w * h];
    for (n, f) in fields.iter().enumerate() {
        let m = f.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(1e-300);
        let (r0, c0) = ((n / cols) * cell + 1, (n % cols) * cell + 1);
        for (k, v) in f.iter().enumerate().take(side * side) {
            let g = (127.5 + 127.5 * v / m).round().clamp(0.0, 255.0) as u8;
            let (r, c) = (k / side, k % side);
            for dr in 0..zoom {
                for dc in 0..zoom {
                    img[(r0 + r * zoom + dr) * w + c0 + c * zoom + dc] = g;
                }
            }
        }
    }
    write_gray_png(path, &img, w, h)
}

/// Images (each `shape.0` × `shape.1`, row-major) as a grayscale PNG grid,
/// `columns` per row: values in `range` map linearly to black…white and are
/// clipped outside it, `zoom` pixels per value, one grey pixel between
/// images. Written atomically.
pub fn write_image_grid(
    path: &Path,
    images: &[Vec<f64>],
    shape: (usize, usize),
    columns: usize,
    zoom: usize,
    range: (f64, f64),
) -> Result<(), EvalError> {
    let (ih, iw) = shape;
    let cols = columns.clamp(1, images.len().max(1));
    let rows = images.len().div_ceil(cols).max(1);
    let (ch, cw) = (ih * zoom + 1, iw * zoom + 1);
    let (w, h) = (cols * cw + 1, rows * ch + 1);
    let mut img = vec![128u8; w * h];
    let span = (range.1 - range.0).max(1e-300);
    for (n, f) in images.iter().enumerate() {
        let (r0, c0) = ((n / cols) * ch + 1, (n % cols) * cw + 1);
        for (k, v) in f.iter().enumerate().take(ih * iw) {
            let g = (255.0 * (v - range.0) / span).round().clamp(0.0, 255.0) as u8;
            let (r, c) = (k / iw, k % iw);
            for dr in 0..zoom {
                for dc in 0..zoom {
                    img[(r0 + r * zoom + dr) * w + c0 + c * zoom + dc] = g;
                }
            }
        }
    }
    write_gray_png(path, &img, w, h)
}

/// Encodes an 8-bit grayscale image (`w` × `h`, row-major) and writes it.
fn write_gray_png(path: &Path, img: &[u8], w: usize, h: usize) -> Result<(), EvalError> {
    let enc = |reason: String| EvalError::Encode {
        path: path.to_path_buf(),
        reason,
    };
    let mut bytes = Vec::new();
    {
        let mut e = png::Encoder::new(&mut bytes, w as u32, h as u32);
        e.set_color(png::ColorType::Grayscale);
        e.set_depth(png::BitDepth::Eight);
        let mut wr = e.write_header().map_err(|e| enc(e.to_string()))?;
        wr.write_image_data(img).map_err(|e| enc(e.to_string()))?;
    }
    write_atomic(path, &bytes)
}
