//! Answer extraction, Math-Verify style: candidate answers found by pattern, tried in priority
//! order (lower first; right-most first within a priority), the first that parses wins.
//!
//! | priority | pattern |
//! |---|---|
//! | 0 | "final answer is X. I hope" |
//! | `latex_boxed_match_priority` (default 0) | the last top-level `\boxed{}`/`\fbox{}` (adjacent boxes joined into a list) |
//! | 50 | "final answer is X" |
//! | 100 | "answer is X", "answer: X" |
//! | 250 | a short response that is entirely an answer (latex target) |
//! | 300 | a math environment `$…$`, `$$…$$`, `\[…\]`, `\(…\)`, or the last number in the text (expr target) |
//!
//! All scans are linear; the response is capped at [`MAX_RESPONSE_BYTES`] (its tail is kept).

use protocol::{ExtractionTarget, MathOptions};

use super::ast::Answer;
use super::parser::{self, ParseError};

/// Longest response scanned; longer responses keep their last this-many bytes.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// An extracted and parsed answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// The answer's source text.
    pub text: String,
    /// The parsed answer.
    pub answer: Answer,
}

/// Why nothing was extracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractError {
    /// No candidate found.
    NoAnswer,
    /// Candidates found, none parsed; the last one's text.
    Unparseable(String),
    /// A candidate exceeded a size or depth limit.
    TooLarge(String),
}

#[derive(Debug, Clone)]
struct Candidate {
    priority: i32,
    position: usize,
    text: String,
    /// Parse as a plain expression (decimal commas allowed) rather than LaTeX.
    plain: bool,
}

/// Extracts the answer from a model response.
pub fn pred(response: &str, o: &MathOptions) -> Result<Extracted, ExtractError> {
    let text = tail(response);
    let text = strip_think(text);
    if o.extraction.contains(&ExtractionTarget::String) && !o.strings.is_empty() {
        return choice(text, o).ok_or(ExtractError::NoAnswer);
    }
    let mut cands = Vec::new();
    let latex = o.extraction.contains(&ExtractionTarget::Latex);
    let expr = o.extraction.contains(&ExtractionTarget::Expr);
    if o.latex_boxed_match_priority >= 0 {
        boxes(text, o.latex_boxed_match_priority, &mut cands);
    }
    if o.require_boxed {
        return first_parsing(cands);
    }
    phrases(text, latex, expr, &mut cands);
    // Every later candidate has priority >= LATE_PRIORITY: when one found so far ranks below
    // that and parses, the costlier scans below cannot change the answer.
    let (early, mut late): (Vec<_>, Vec<_>) =
        cands.into_iter().partition(|c| c.priority < LATE_PRIORITY);
    let mut attempts = Attempts::default();
    if let Some(found) = attempts.first_parsing(early) {
        return Ok(found);
    }
    if latex {
        environments(text, &mut late);
        // A short response that is itself an answer (`\frac{10}{9}`, `x^2 + 1`).
        if is_bare_math(text, o.latex_boxed_match_priority >= 0) {
            late.push(Candidate {
                priority: LATE_PRIORITY,
                position: 0,
                text: text.trim().to_string(),
                plain: false,
            });
        }
    }
    if expr {
        last_number(text, 300, &mut late);
    }
    attempts.first_parsing(late).ok_or(attempts.last_err)
}

/// The lowest priority of the whole-response scans (a bare answer 250, environments and the
/// last number 300), which [`pred`] runs only when no better-ranked candidate parses.
const LATE_PRIORITY: i32 = 250;

/// Extracts the gold answer: a wrapped gold (`$…$`, `\boxed{}`, `\[…\]`) goes through the
/// same extraction; an unwrapped one is parsed whole.
pub fn gold(ground_truth: &str, o: &MathOptions) -> Result<Extracted, ExtractError> {
    let targets = o
        .gold_extraction
        .clone()
        .unwrap_or_else(|| o.extraction.clone());
    let g = ground_truth.trim();
    if g.is_empty() {
        return Err(ExtractError::NoAnswer);
    }
    if targets.contains(&ExtractionTarget::String) && !o.strings.is_empty() {
        let raw = g.trim_matches(|c: char| c == '$' || c.is_whitespace());
        if let Some(c) = o.strings.iter().find(|c| eq_choice(c, raw, o.lowercase)) {
            return Ok(Extracted {
                text: c.clone(),
                answer: Answer::Text(c.to_lowercase()),
            });
        }
    }
    let wrapped = g.contains('$') || next_command(g, 0, &["boxed", "fbox", "[", "("]).is_some();
    if wrapped {
        let opts = MathOptions {
            extraction: targets.clone(),
            require_boxed: false,
            latex_boxed_match_priority: o.latex_boxed_match_priority.max(0),
            ..o.clone()
        };
        if let Ok(e) = pred(g, &opts) {
            return Ok(e);
        }
    }
    let plain = !targets.contains(&ExtractionTarget::Latex);
    first_parsing(vec![Candidate {
        priority: 0,
        position: 0,
        text: g.to_string(),
        plain,
    }])
}

/// Short text with no math delimiters and no prose: letter runs of three or more occur only
/// inside commands (`\frac`, `\begin{pmatrix}`).
fn is_bare_math(text: &str, boxes_allowed: bool) -> bool {
    let t = text.trim();
    if t.is_empty() || t.len() > 400 || t.contains('$') || next_command(t, 0, &["(", "["]).is_some()
    {
        return false;
    }
    if !boxes_allowed && next_command(t, 0, &BOX_COMMANDS).is_some() {
        return false;
    }
    let mut prose = false;
    let mut short_words = 0usize;
    let chars: Vec<char> = t.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            i += 1;
            let start = i;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            if (name == "begin" || name == "end") && chars.get(i) == Some(&'{') {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
            }
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_alphabetic() {
            i += 1;
        }
        if i - start >= 3 {
            prose = true;
        }
        if i - start == 2 {
            short_words += 1;
        }
        if i == start {
            i += 1;
        }
    }
    // "so it is 0.5": two-letter words are prose too when there are several.
    !prose && short_words < 2
}

fn tail(s: &str) -> &str {
    if s.len() <= MAX_RESPONSE_BYTES {
        return s;
    }
    let mut cut = s.len() - MAX_RESPONSE_BYTES;
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    &s[cut..]
}

/// Drops a reasoning block: everything up to the last `</think>`.
fn strip_think(s: &str) -> &str {
    s.rfind("</think>")
        .map_or(s, |i| &s[i + "</think>".len()..])
}

/// Candidates tried in priority order, over one or more batches: the first that parses wins;
/// otherwise the error of the last one tried (a size or depth limit, once met, is kept).
struct Attempts {
    last_err: ExtractError,
}

impl Default for Attempts {
    fn default() -> Self {
        Self {
            last_err: ExtractError::NoAnswer,
        }
    }
}

impl Attempts {
    /// Tries `cands` (lower priority first, right-most first within a priority); every
    /// candidate of a later batch must rank after every candidate of an earlier one.
    fn first_parsing(&mut self, mut cands: Vec<Candidate>) -> Option<Extracted> {
        cands.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then(b.position.cmp(&a.position))
        });
        for c in cands {
            let text = if c.plain {
                plain_to_latex(&c.text)
            } else {
                c.text.clone()
            };
            let trimmed = text.trim().trim_end_matches(['.', ',', ';']).trim();
            if trimmed.is_empty() {
                continue;
            }
            match parser::parse(trimmed) {
                Ok(answer) => {
                    return Some(Extracted {
                        text: c.text.trim().to_string(),
                        answer,
                    });
                }
                Err(ParseError::TooDeep) => self.last_err = ExtractError::TooLarge(c.text),
                Err(ParseError::Invalid(_)) => {
                    if !matches!(self.last_err, ExtractError::TooLarge(_)) {
                        self.last_err = ExtractError::Unparseable(c.text);
                    }
                }
            }
        }
        None
    }
}

fn first_parsing(cands: Vec<Candidate>) -> Result<Extracted, ExtractError> {
    let mut attempts = Attempts::default();
    attempts.first_parsing(cands).ok_or(attempts.last_err)
}

/// Plain-text numbers: a decimal comma (`1000,99`, `0,111`) becomes a point when it cannot be
/// a thousands separator.
fn plain_to_latex(s: &str) -> String {
    let b: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_digit()
                    || b[i] == ',' && b.get(i + 1).is_some_and(char::is_ascii_digit))
            {
                i += 1;
            }
            let run: String = b[start..i].iter().collect();
            let groups: Vec<&str> = run.split(',').collect();
            let thousands = groups.len() > 1
                && (1..=3).contains(&groups[0].len())
                && !(groups[0].starts_with('0'))
                && groups[1..].iter().all(|g| g.len() == 3);
            if groups.len() == 2 && !thousands {
                out.push_str(&format!("{}.{}", groups[0], groups[1]));
            } else {
                out.push_str(&run);
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Top-level boxes; runs of boxes separated only by separators become one list candidate.
fn boxes(text: &str, priority: i32, out: &mut Vec<Candidate>) {
    let mut found: Vec<(usize, usize, &str)> = Vec::new(); // (start, end, content)
    let mut i = 0;
    while let Some((start, cmd_len)) = next_box(text, i) {
        match box_content(text, start + cmd_len) {
            Some((content, end)) => {
                found.push((start, end, content));
                i = end;
            }
            None => i = start + cmd_len,
        }
    }
    join_runs(text, &found, priority, out);
}

/// Turns found `(start, end, content)` spans into candidates, joining runs of spans separated
/// only by separators (`,` `and` `or` `\quad`) into one list; a percent sign right after a
/// span belongs to it.
fn join_runs(text: &str, found: &[(usize, usize, &str)], priority: i32, out: &mut Vec<Candidate>) {
    let mut k = 0;
    while k < found.len() {
        let mut j = k;
        while j + 1 < found.len()
            && j - k < 8
            && is_separator_gap(&text[found[j].1..found[j + 1].0])
        {
            j += 1;
        }
        let contents: Vec<String> = found[k..=j]
            .iter()
            .map(|f| {
                format!(
                    "{}{}",
                    f.2.trim(),
                    if percent_after(&text[f.1..]) {
                        "\\%"
                    } else {
                        ""
                    }
                )
            })
            .filter(|c| !c.is_empty())
            .collect();
        if !contents.is_empty() {
            out.push(Candidate {
                priority,
                position: found[j].0,
                text: contents.join(", "),
                plain: false,
            });
        }
        k = j + 1;
    }
}

/// Does a percent sign (`%`, `\%`, "percent", "pct") follow, past spaces and `$`?
fn percent_after(rest: &str) -> bool {
    let r = rest
        .trim_start_matches(|c: char| c.is_whitespace() || c == '$')
        .as_bytes();
    let starts = |p: &str| r.len() >= p.len() && r[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    starts("%") || starts("\\%") || starts("percent") || starts("pct")
}

fn is_separator_gap(gap: &str) -> bool {
    let g = gap
        .replace("\\(", " ")
        .replace("\\)", " ")
        .replace("\\[", " ")
        .replace("\\]", " ")
        .replace("\\text{and}", " ")
        .replace("\\text{ and }", " ")
        .replace("\\text{or}", " ")
        .replace("\\quad", " ")
        .replace("\\qquad", " ")
        .replace("\\,", " ");
    g.split(|c: char| c.is_whitespace() || matches!(c, ',' | '$' | ';' | '+'))
        .all(|w| w.is_empty() || w == "and" || w == "or")
}

const BOX_COMMANDS: [&str; 2] = ["boxed", "fbox"];

/// The first backslash at or after byte `from` that is followed by one of `names` (`boxed`,
/// `[`): its byte offset and the length of backslash plus name. One pass over the bytes.
fn next_command(text: &str, from: usize, names: &[&str]) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut i = from;
    while let Some(p) = bytes.get(i..)?.iter().position(|&b| b == b'\\') {
        let at = i + p;
        let rest = &bytes[at + 1..];
        if let Some(name) = names.iter().find(|n| rest.starts_with(n.as_bytes())) {
            return Some((at, 1 + name.len()));
        }
        i = at + 1;
    }
    None
}

fn next_box(text: &str, from: usize) -> Option<(usize, usize)> {
    next_command(text, from, &BOX_COMMANDS)
}

/// Brace-matched content after a box command (also `\boxed 5`).
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

/// Math environments with their content: `$$…$$`, `$…$`, `\[…\]`, `\(…\)`.
fn math_spans(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !text.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let (open, close): (&str, &str) = if text[i..].starts_with("$$") {
            ("$$", "$$")
        } else if bytes[i] == b'$' && (i == 0 || bytes[i - 1] != b'\\') {
            ("$", "$")
        } else if text[i..].starts_with("\\[") {
            ("\\[", "\\]")
        } else if text[i..].starts_with("\\(") {
            ("\\(", "\\)")
        } else {
            i += 1;
            continue;
        };
        let body_start = i + open.len();
        let mut j = body_start;
        let mut end = None;
        while j < bytes.len() {
            if text.is_char_boundary(j)
                && text[j..].starts_with(close)
                && (close != "$" || bytes[j - 1] != b'\\')
            {
                end = Some(j);
                break;
            }
            // An inline `$…$` or `\(…\)` does not span lines.
            if bytes[j] == b'\n' && (open == "$" || open == "\\(") {
                break;
            }
            j += 1;
        }
        match end {
            Some(e) => {
                out.push((i, e + close.len(), &text[body_start..e]));
                i = e + close.len();
            }
            None => i = body_start,
        }
    }
    out
}

fn environments(text: &str, out: &mut Vec<Candidate>) {
    join_runs(text, &math_spans(text), 300, out);
}

/// Byte offsets of `needle` (lower-case ASCII) in `lower`, the ASCII-lower-cased text.
fn find_all(lower: &str, needle: &str) -> Vec<usize> {
    lower.match_indices(needle).map(|(i, _)| i).collect()
}

/// "final answer is X", "answer is X", "answer: X": X is the math after the last " is " of
/// the sentence (joined environments, or plain text), or failing that its last number.
fn phrases(text: &str, latex: bool, expr: bool, out: &mut Vec<Candidate>) {
    let mut push = |priority: i32, at: usize, after: &str| {
        let line_end = after.find('\n').unwrap_or(after.len());
        let line = &after[..line_end];
        let (body, hope) = match line.find("I hope") {
            Some(h) => (&line[..h], true),
            None => (line, false),
        };
        let prio = if hope { priority.min(0) } else { priority };
        let body = body.rsplit_once(" is ").map_or(body, |(_, s)| s);
        // Within a phrase: its math environments, then its plain text, then its last number.
        let mut envs = Vec::new();
        if latex {
            environments(body, &mut envs);
        }
        let mut local: Vec<(i32, Candidate)> = envs.into_iter().map(|c| (0, c)).collect();
        if local.is_empty() && (expr || latex) {
            let sentence = body.trim().trim_end_matches('.').trim_matches('"');
            if !sentence.is_empty() && sentence.len() < 200 {
                let plain = expr && !latex_like(sentence);
                local.push((
                    1,
                    Candidate {
                        priority: 0,
                        position: 0,
                        text: sentence.to_string(),
                        plain,
                    },
                ));
            }
        }
        if expr {
            let mut nums = Vec::new();
            last_number(body, 0, &mut nums);
            local.extend(nums.into_iter().map(|c| (2, c)));
        }
        for (rank, mut c) in local {
            c.priority = prio + rank;
            c.position = at;
            out.push(c);
        }
    };
    // Every phrase contains "answer": most responses have none, and need no lower-cased copy.
    if !text
        .as_bytes()
        .windows(6)
        .any(|w| w.eq_ignore_ascii_case(b"answer"))
    {
        return;
    }
    let lower = text.to_ascii_lowercase();
    for pat in ["final answer is", "final answer:"] {
        for i in find_all(&lower, pat) {
            push(50, i, &text[i + pat.len()..]);
        }
    }
    for pat in ["answer is", "answer:"] {
        for i in find_all(&lower, pat) {
            push(100, i, &text[i + pat.len()..]);
        }
    }
}

fn latex_like(s: &str) -> bool {
    s.contains('\\') || s.contains('^') || s.contains('{')
}

/// The last number in the text (with thousands or decimal commas, sign and percent).
fn last_number(text: &str, priority: i32, out: &mut Vec<Candidate>) {
    let spans = math_spans(text);
    let in_math = |pos: usize| spans.iter().any(|&(s, e, _)| s <= pos && pos < e);
    let b: Vec<(usize, char)> = text.char_indices().collect();
    let mut best: Option<(usize, String)> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i].1;
        let starts =
            c.is_ascii_digit() || (c == '.' && b.get(i + 1).is_some_and(|x| x.1.is_ascii_digit()));
        // A digit glued to letters (`AZYUK2A`) is not a number.
        let glued_before = i > 0 && b[i - 1].1.is_alphabetic();
        if !starts || glued_before {
            i += 1;
            continue;
        }
        let start = i;
        let neg = i > 0 && b[i - 1].1 == '-';
        while i < b.len()
            && (b[i].1.is_ascii_digit()
                || (matches!(b[i].1, ',' | '.' | ' ')
                    && b.get(i + 1).is_some_and(|x| x.1.is_ascii_digit())
                    && group_ok(&b, i)))
        {
            i += 1;
        }
        let glued_after = b
            .get(i)
            .is_some_and(|x| x.1.is_ascii_alphabetic() && !is_unit_start(&b, i));
        if glued_after {
            continue;
        }
        let mut s: String = b[start..i]
            .iter()
            .map(|x| x.1)
            .filter(|c| *c != ' ')
            .collect();
        if neg {
            s.insert(0, '-');
        }
        // A fraction `2/3`.
        if b.get(i).is_some_and(|x| x.1 == '/')
            && b.get(i + 1).is_some_and(|x| x.1.is_ascii_digit())
        {
            let d0 = i + 1;
            i = d0;
            while i < b.len() && b[i].1.is_ascii_digit() {
                i += 1;
            }
            s.push('/');
            s.extend(b[d0..i].iter().map(|x| x.1));
        }
        let rest: String = b[i..b.len().min(i + 12)].iter().map(|x| x.1).collect();
        let rest = rest.trim_start();
        if rest.starts_with('%') || rest.starts_with("percent") || rest.starts_with("pct") {
            s.push('%');
        }
        if !in_math(b[start].0) {
            best = Some((b[start].0, s));
        }
    }
    if let Some((pos, s)) = best {
        out.push(Candidate {
            priority,
            position: pos,
            text: s,
            plain: true,
        });
    }
}

/// A space inside a number only as a thousands separator (`1 000`).
fn group_ok(b: &[(usize, char)], i: usize) -> bool {
    if b[i].1 != ' ' {
        return true;
    }
    (1..=3).all(|k| b.get(i + k).is_some_and(|x| x.1.is_ascii_digit()))
        && !b.get(i + 4).is_some_and(|x| x.1.is_ascii_digit())
}

fn is_unit_start(b: &[(usize, char)], i: usize) -> bool {
    let word: String = b[i..]
        .iter()
        .take_while(|x| x.1.is_alphabetic())
        .map(|x| x.1)
        .collect();
    matches!(
        word.as_str(),
        "m" | "cm" | "km" | "mm" | "kg" | "g" | "s" | "h" | "min" | "ml" | "l" | "ft" | "in"
    )
}

/// A multiple-choice letter.
fn choice(text: &str, o: &MathOptions) -> Option<Extracted> {
    let words: Vec<(usize, &str)> = text
        .split(|c: char| !c.is_alphanumeric())
        .scan(0usize, |pos, w| {
            let start = *pos;
            *pos += w.len() + 1;
            Some((start, w))
        })
        .filter(|(_, w)| !w.is_empty())
        .collect();
    let is_choice = |w: &str| {
        o.strings
            .iter()
            .find(|c| eq_choice(c, w, o.lowercase) && (c.len() > 1 || w.len() == 1))
    };
    // "answer is X" / "answer: X" first, then a choice opening the response, then the first.
    let lower = text.to_ascii_lowercase();
    for pat in ["answer is", "answer:"] {
        if let Some(i) = lower.rfind(pat)
            && let Some((_, w)) = words.iter().find(|(p, _)| *p >= i + pat.len())
            && let Some(c) = is_choice(w)
        {
            return Some(Extracted {
                text: c.clone(),
                answer: Answer::Text(c.to_lowercase()),
            });
        }
    }
    let exact_case = |w: &str| o.strings.iter().find(|c| c.as_str() == w);
    words
        .iter()
        .find_map(|(_, w)| exact_case(w))
        .or_else(|| words.first().and_then(|(_, w)| is_choice(w)))
        .map(|c| Extracted {
            text: c.clone(),
            answer: Answer::Text(c.to_lowercase()),
        })
}

fn eq_choice(choice: &str, word: &str, lowercase: bool) -> bool {
    if lowercase {
        choice.eq_ignore_ascii_case(word)
    } else {
        choice == word
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o() -> MathOptions {
        MathOptions {
            require_boxed: false,
            ..MathOptions::default()
        }
    }

    #[test]
    fn priorities() {
        let e = pred("so $x=2$ and finally \\boxed{7}", &o()).unwrap();
        assert_eq!(e.text, "7");
        let e = pred("The final answer is $3$. I hope it is correct.", &o()).unwrap();
        assert_eq!(e.text, "3");
        let e = pred("we get 12 apples and 1,000.5 pears", &o()).unwrap();
        assert_eq!(e.text, "1,000.5");
        let e = pred("\\boxed{1}, \\boxed{2} and \\boxed{3}", &o()).unwrap();
        assert_eq!(e.text, "1, 2, 3");
        assert_eq!(pred("no answer here", &o()), Err(ExtractError::NoAnswer));
        assert_eq!(
            pred("7", &MathOptions::default()),
            Err(ExtractError::NoAnswer)
        );
    }

    #[test]
    fn a_box_ranked_with_or_after_the_late_scans_keeps_its_rank() {
        let text = "so $x=2$ and finally \\boxed{7}";
        // LaTeX only: no last-number candidate (the 7 at 300).
        let at = |p: i32| MathOptions {
            extraction: vec![ExtractionTarget::Latex],
            latex_boxed_match_priority: p,
            ..o()
        };
        // Same rank as the environments (300): right-most first, the box.
        assert_eq!(pred(text, &at(300)).unwrap().text, "7");
        // Ranked after them: the environment.
        assert_eq!(pred(text, &at(301)).unwrap().text, "x=2");
        // Between the bare answer (250) and the environments: the box.
        assert_eq!(pred(text, &at(260)).unwrap().text, "7");
        // An unparseable early candidate does not hide a later one that parses.
        assert_eq!(pred("\\boxed{)(} so $5$", &o()).unwrap().text, "5");
    }

    #[test]
    fn decimal_commas_in_plain_numbers() {
        assert_eq!(plain_to_latex("1000,99"), "1000.99");
        assert_eq!(plain_to_latex("0,111"), "0.111");
        assert_eq!(plain_to_latex("7,425,000"), "7,425,000");
        assert_eq!(plain_to_latex("1,22"), "1.22");
    }
}
