//! Shell commands shown in Markdown: what the doc-command check and the doc-driven tests read.

/// Fence languages whose lines are commands.
const SHELL_LANGS: [&str; 3] = ["sh", "bash", "shell"];

/// A command found in a Markdown file.
#[derive(Debug, Clone)]
pub(crate) struct Shown {
    /// `path:line` of its first line.
    pub(crate) at: String,
    /// Normalised text: continuation lines joined, a trailing comment dropped, runs of
    /// whitespace collapsed.
    pub(crate) text: String,
}

/// Drops a trailing `# comment` (a `#` after whitespace, outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut prev_space) = (false, false, true);
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => return line[..i].trim_end(),
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// Collapses runs of whitespace to one space.
pub(crate) fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The commands of one Markdown file, and fences without a language.
pub(crate) fn commands_in(rel: &str, text: &str, untagged: &mut Vec<String>) -> Vec<Shown> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("```") {
            if fence.is_some() {
                fence = None;
            } else {
                let lang = rest.trim().to_string();
                if lang.is_empty() {
                    untagged.push(format!("{rel}:{}", i + 1));
                }
                fence = Some(lang);
            }
            continue;
        }
        let Some(lang) = &fence else { continue };
        if !SHELL_LANGS.contains(&lang.as_str()) {
            continue;
        }
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        let code = strip_comment(line);
        if let Some(cont) = code.strip_suffix('\\') {
            acc.push_str(cont);
            acc.push(' ');
            pending = Some((start, acc));
            continue;
        }
        acc.push_str(code);
        let text = normalise(&acc);
        if !text.is_empty() {
            out.push(Shown {
                at: format!("{rel}:{start}"),
                text,
            });
        }
    }
    out
}

/// Splits a command line into words, honouring single and double quotes (enough for the
/// argument lists the docs show).
pub(crate) fn words(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in s.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}
