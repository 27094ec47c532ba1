//! [`Image`]: an in-memory RGB image written out as PNG, and [`Canvas`]: the plotters backend
//! that draws on one, with its own text rendering from the embedded glyphs (so no system font
//! is needed).

use std::path::Path;

use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendTextStyle, DrawingBackend, DrawingErrorKind, FontTransform,
};

use super::PlotError;
use super::glyphs::{CELL_H, CELL_W, GLYPHS};

/// An RGB8 image, white to start with.
#[derive(Debug, Clone)]
pub struct Image {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

/// Canvas drawing never fails; plotters' interface needs an error type all the same.
#[derive(Debug, thiserror::Error)]
#[error("canvas error")]
pub struct CanvasError;

/// plotters' view of an [`Image`] while it draws.
#[derive(Debug)]
pub struct Canvas<'a>(pub &'a mut Image);

impl Image {
    /// A white `width` × `height` image, pixels.
    pub fn new(width: u32, height: u32) -> Self {
        Image {
            width,
            height,
            pixels: vec![255; width as usize * height as usize * 3],
        }
    }

    /// The RGB value at `(x, y)`.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Writes the canvas as an 8-bit RGB PNG.
    pub fn save_png(&self, path: &Path) -> Result<(), PlotError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut enc = png::Encoder::new(file, self.width, self.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&self.pixels)?;
        w.finish()?;
        Ok(())
    }

    /// Blends `color` at `(x, y)` with opacity `alpha` (0..=1); outside the canvas is ignored.
    fn blend(&mut self, x: i32, y: i32, color: BackendColor, alpha: f64) {
        if x < 0 || y < 0 || x >= self.width as i32 || y >= self.height as i32 || alpha <= 0.0 {
            return;
        }
        let a = (alpha * color.alpha).clamp(0.0, 1.0);
        let i = (y as usize * self.width as usize + x as usize) * 3;
        let (r, g, b) = color.rgb;
        for (k, c) in [r, g, b].into_iter().enumerate() {
            let old = f64::from(self.pixels[i + k]);
            self.pixels[i + k] = (old + (f64::from(c) - old) * a).round() as u8;
        }
    }
}

/// Glyph scale for a requested font size (the glyphs are 12 px): 1 up to 18 px, then 2, ….
fn scale_for(size: f64) -> i32 {
    ((size / 12.0).round() as i32).max(1)
}

/// Text extent, pixels, before rotation.
fn text_extent(text: &str, size: f64) -> (u32, u32) {
    let s = scale_for(size) as u32;
    (
        text.chars().count() as u32 * CELL_W as u32 * s,
        CELL_H as u32 * s,
    )
}

impl DrawingBackend for Canvas<'_> {
    type ErrorType = CanvasError;

    fn get_size(&self) -> (u32, u32) {
        (self.0.width, self.0.height)
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<CanvasError>> {
        Ok(())
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<CanvasError>> {
        Ok(())
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<CanvasError>> {
        self.0.blend(point.0, point.1, color, 1.0);
        Ok(())
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), DrawingErrorKind<CanvasError>> {
        let (w, h) = text_extent(text, style.size());
        Ok(match style.transform() {
            FontTransform::Rotate90 | FontTransform::Rotate270 => (h, w),
            _ => (w, h),
        })
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<CanvasError>> {
        let s = scale_for(style.size());
        let (w, h) = text_extent(text, style.size());
        let (w, h) = (w as i32, h as i32);
        let anchor = style.anchor();
        // Top-left of the unrotated text box, relative to the anchor point.
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Center => -w / 2,
            HPos::Right => -w,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -h / 2,
            VPos::Bottom => -h,
        };
        let transform = style.transform();
        let color = style.color();
        for (ci, ch) in text.chars().enumerate() {
            let code = ch as usize;
            let glyph = if (32..=126).contains(&code) {
                GLYPHS[code - 32]
            } else {
                GLYPHS[usize::from(b'?') - 32]
            };
            for (pi, cov) in glyph.bytes().enumerate() {
                let cov = f64::from((cov as char).to_digit(16).unwrap_or(0)) / 15.0;
                if cov == 0.0 {
                    continue;
                }
                let gx = (ci * CELL_W + pi % CELL_W) as i32 * s;
                let gy = (pi / CELL_W) as i32 * s;
                for sy in 0..s {
                    for sx in 0..s {
                        // Offset in the unrotated box, then rotated about the anchor.
                        let (x, y) = (dx + gx + sx, dy + gy + sy);
                        let (x, y) = match transform {
                            FontTransform::Rotate90 => (-y, x),
                            FontTransform::Rotate180 => (-x, -y),
                            FontTransform::Rotate270 => (y, -x),
                            _ => (x, y),
                        };
                        self.0.blend(pos.0 + x, pos.1 + y, color, cov);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters_backend::text_anchor::Pos;

    struct Style(FontTransform);

    impl BackendTextStyle for Style {
        type FontError = CanvasError;
        fn size(&self) -> f64 {
            12.0
        }
        fn family(&self) -> plotters_backend::FontFamily<'_> {
            plotters_backend::FontFamily::SansSerif
        }
        fn color(&self) -> BackendColor {
            BackendColor {
                alpha: 1.0,
                rgb: (0, 0, 0),
            }
        }
        fn anchor(&self) -> Pos {
            Pos::new(HPos::Left, VPos::Top)
        }
        fn transform(&self) -> FontTransform {
            self.0.clone()
        }
        fn layout_box(&self, text: &str) -> Result<((i32, i32), (i32, i32)), CanvasError> {
            let (w, h) = text_extent(text, 12.0);
            Ok(((0, 0), (w as i32, h as i32)))
        }
        fn draw<E, DrawFunc: FnMut(i32, i32, BackendColor) -> Result<(), E>>(
            &self,
            _: &str,
            _: BackendCoord,
            _: DrawFunc,
        ) -> Result<Result<(), E>, CanvasError> {
            Ok(Ok(()))
        }
    }

    fn dark(c: &Image, x0: u32, y0: u32, x1: u32, y1: u32) -> usize {
        let mut n = 0;
        for y in y0..y1 {
            for x in x0..x1 {
                if c.pixel(x, y)[0] < 128 {
                    n += 1;
                }
            }
        }
        n
    }

    #[test]
    fn text_is_drawn_inside_its_estimated_box_and_rotates() {
        let mut c = Image::new(200, 200);
        let style = Style(FontTransform::None);
        let (w, h) = Canvas(&mut c).estimate_text_size("Ag0", &style).unwrap();
        assert_eq!((w, h), (3 * CELL_W as u32, CELL_H as u32));
        Canvas(&mut c).draw_text("Ag0", &style, (10, 10)).unwrap();
        let inside = dark(&c, 10, 10, 10 + w, 10 + h);
        assert!(inside > 20, "{inside} dark pixels");
        assert_eq!(dark(&c, 0, 0, 200, 200), inside, "ink outside the box");

        // Rotated by 270° (plotters' y-axis label, read bottom to top): the box stands upright,
        // its bottom row on the anchor's row.
        let mut r = Image::new(200, 200);
        Canvas(&mut r)
            .draw_text("Ag0", &Style(FontTransform::Rotate270), (100, 100))
            .unwrap();
        assert_eq!(dark(&r, 100, 101 - w, 100 + h, 101), inside);
    }

    #[test]
    fn png_round_trips_its_size_and_pixels() {
        let mut c = Image::new(31, 17);
        Canvas(&mut c)
            .draw_pixel(
                (3, 4),
                BackendColor {
                    alpha: 1.0,
                    rgb: (200, 10, 30),
                },
            )
            .unwrap();
        let path = std::env::temp_dir().join(format!("canvas-{}.png", std::process::id()));
        c.save_png(&path).unwrap();
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (31, 17));
        let i = (4 * 31 + 3) * 3;
        assert_eq!(&buf[i..i + 3], &[200, 10, 30]);
        std::fs::remove_file(path).unwrap();
    }
}
