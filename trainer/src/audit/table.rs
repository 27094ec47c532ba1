//! Plain-text tables for terminal output: a header, aligned columns, long or multi-line cells
//! shortened so one record stays on one line.

/// Longest cell, characters; longer cells end with `…`.
pub const MAX_CELL_CHARS: usize = 60;

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// Renders `rows` under `headers`. Newlines and tabs in cells show as `⏎` and a space.
pub fn render(headers: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| shorten(c)).collect())
        .collect();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
                .max(h.chars().count())
        })
        .collect();
    let line = |values: Vec<&str>| -> String {
        let parts: Vec<String> = values
            .iter()
            .zip(headers)
            .zip(&widths)
            .map(|((v, (_, align)), &w)| {
                let pad = " ".repeat(w.saturating_sub(v.chars().count()));
                match align {
                    Align::Left => format!("{v}{pad}"),
                    Align::Right => format!("{pad}{v}"),
                }
            })
            .collect();
        format!("{}\n", parts.join("  ").trim_end())
    };
    let dashes: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    let mut out = line(headers.iter().map(|(h, _)| *h).collect());
    out.push_str(&line(dashes.iter().map(String::as_str).collect()));
    for r in &cells {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn shorten(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| match c {
            '\n' => '⏎',
            '\t' | '\r' => ' ',
            c => c,
        })
        .collect();
    if flat.chars().count() > MAX_CELL_CHARS {
        let mut t: String = flat.chars().take(MAX_CELL_CHARS - 1).collect();
        t.push('…');
        t
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_shortens() {
        let t = render(
            &[("name", Align::Left), ("n", Align::Right)],
            &[
                vec!["a\nb".into(), "5".into()],
                vec!["x".repeat(100), "12".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], format!("name{}   n", " ".repeat(56)));
        assert!(lines[1].starts_with("----") && lines[1].ends_with("--"));
        assert!(lines[2].starts_with("a⏎b") && lines[2].ends_with(" 5"));
        assert!(lines[3].contains('…') && lines[3].ends_with("12"));
        assert_eq!(lines.len(), 4);
    }
}
