//! Answer extraction: the content of the last top-level `\boxed{…}` / `\fbox{…}`.
//!
//! Braces are matched by a linear scan (escaped `\{`/`\}` are not structural), so nested
//! braces such as `\boxed{\frac{1}{2}}` are kept whole and an unclosed box yields nothing.
//! A box whose whole content is another box is unwrapped.

const BOX_COMMANDS: [&str; 2] = ["\\boxed", "\\fbox"];

/// The answer in a model response: the last top-level box; without one, the whole trimmed
/// response when `require_boxed` is false, else `None`.
pub fn answer(response: &str, require_boxed: bool) -> Option<&str> {
    match last_boxed(response) {
        Some(a) => Some(a),
        None if !require_boxed => {
            Some(strip_math_delimiters(response.trim())).filter(|s| !s.is_empty())
        }
        None => None,
    }
}

/// The answer in a ground truth: the last box if there is one, else the whole string without
/// surrounding `$…$`.
pub fn gold(ground_truth: &str) -> &str {
    last_boxed(ground_truth).unwrap_or_else(|| strip_math_delimiters(ground_truth.trim()))
}

fn strip_math_delimiters(s: &str) -> &str {
    for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if s.len() >= open.len() + close.len() && s.starts_with(open) && s.ends_with(close) {
            return s[open.len()..s.len() - close.len()].trim();
        }
    }
    s
}

/// Content of the last top-level, properly closed box, unwrapping boxes nested as the whole
/// content. `None` if there is no closed box.
pub fn last_boxed(text: &str) -> Option<&str> {
    let mut found = None;
    let mut i = 0;
    while let Some((start, cmd_len)) = next_box(text, i) {
        match box_content(text, start + cmd_len) {
            Some((content, end)) => {
                found = Some(content);
                i = end;
            }
            None => i = start + cmd_len,
        }
    }
    let mut inner = found?.trim();
    while let Some(next) = last_boxed_whole(inner) {
        inner = next;
    }
    Some(inner)
}

/// If `s` is exactly one box, its content.
fn last_boxed_whole(s: &str) -> Option<&str> {
    let (start, cmd_len) = next_box(s, 0)?;
    if start != 0 {
        return None;
    }
    let (content, end) = box_content(s, cmd_len)?;
    (end == s.len()).then(|| content.trim())
}

/// Position and length of the next box command at or after `from`.
fn next_box(text: &str, from: usize) -> Option<(usize, usize)> {
    BOX_COMMANDS
        .iter()
        .filter_map(|cmd| text.get(from..)?.find(cmd).map(|p| (from + p, cmd.len())))
        .min_by_key(|&(p, _)| p)
}

/// Given the byte offset just after a box command, the brace-matched content and the offset
/// after the closing brace. Also accepts the brace-less form `\boxed 5` (up to whitespace or `$`).
fn box_content(text: &str, after_cmd: usize) -> Option<(&str, usize)> {
    let rest = &text[after_cmd..];
    let trimmed = rest.trim_start();
    let offset = after_cmd + (rest.len() - trimmed.len());
    if let Some(body) = trimmed.strip_prefix('{') {
        let mut depth = 1usize;
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            match c {
                '\\' => escaped = true,
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some((&body[..i], offset + 1 + i + 1));
                    }
                }
                _ => {}
            }
        }
        None
    } else if rest.starts_with(' ') {
        let end = trimmed
            .find(|c: char| c.is_whitespace() || c == '$')
            .unwrap_or(trimmed.len());
        (end > 0).then(|| (&trimmed[..end], offset + end))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_top_level_box() {
        assert_eq!(last_boxed(r"\boxed{1} then \boxed{2}"), Some("2"));
        assert_eq!(last_boxed(r"\boxed{\frac{1}{2}}"), Some(r"\frac{1}{2}"));
        assert_eq!(last_boxed(r"\boxed{\boxed{3}}"), Some("3"));
        assert_eq!(last_boxed(r"\fbox{4}"), Some("4"));
        assert_eq!(last_boxed(r"\boxed 5$"), Some("5"));
        assert_eq!(last_boxed(r"\boxed{\{1,2\}}"), Some(r"\{1,2\}"));
        assert_eq!(last_boxed(r"\boxed{1} \boxed{2"), Some("1"));
        assert_eq!(last_boxed(r"\boxed{"), None);
        assert_eq!(last_boxed(r"\boxedx"), None);
        assert_eq!(last_boxed("no box"), None);
        assert_eq!(last_boxed("é\\boxed{é}é"), Some("é"));
    }

    #[test]
    fn gold_unwraps() {
        assert_eq!(gold("$3$"), "3");
        assert_eq!(gold(r"\boxed{3}"), "3");
        assert_eq!(gold(r" \frac{1}{2} "), r"\frac{1}{2}");
    }
}
