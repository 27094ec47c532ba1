//! Tokens of the answer language, from LaTeX or plain math text.
//!
//! The lexer is a single linear pass with a token cap ([`MAX_TOKENS`]). It folds what never
//! matters for a value: spacing commands, `\left`/`\right`, `\displaystyle`, degree marks,
//! `\$`, and maps Unicode forms (`√ ∞ π ≤ ½ −`, full-width digits) to their LaTeX spelling.
//! Text-like commands (`\text{…}`, `\mathrm{…}`, `\operatorname{…}`) keep their raw content.

/// Most tokens one answer may have.
pub const MAX_TOKENS: usize = 20_000;

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A number literal, digits only (thousands separators removed), maybe with `.` and an
    /// exponent `e±N`.
    Num(String),
    /// A single letter (a variable name or part of one).
    Letter(char),
    /// A run of two or more ASCII letters outside a command (`and`, `cm`, `sin`).
    Word(String),
    /// A backslash command without the backslash (`frac`, `pi`, `le`, `{`, `}`, `|`).
    Cmd(String),
    /// `\text{…}`-like command and its raw content.
    Text(String, String),
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBrack,
    /// `]`
    RBrack,
    /// `|`
    Pipe,
    /// `&` (matrix column separator)
    Amp,
    /// `\\` (matrix row separator)
    RowSep,
    /// `,`
    Comma,
    /// `;`
    Semicolon,
    /// `:`
    Colon,
    /// `%`, `\%`
    Percent,
    /// `!`
    Bang,
    /// `'` (prime)
    Prime,
    /// `+ - * / ^ _ = < >`
    Op(char),
}

/// Lexing failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexError {
    /// More than [`MAX_TOKENS`] tokens.
    TooLong,
    /// A character with no meaning here.
    Unexpected(char),
}

const TEXT_COMMANDS: [&str; 12] = [
    "text",
    "textbf",
    "textit",
    "textrm",
    "mbox",
    "mathrm",
    "mathbf",
    "mathit",
    "mathsf",
    "mathtt",
    "operatorname",
    "textnormal",
];

/// Commands dropped entirely (spacing, sizing, styling without content).
const DROPPED: [&str; 22] = [
    "left",
    "right",
    "mleft",
    "mright",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "big",
    "Big",
    "displaystyle",
    "textstyle",
    "!",
    ",",
    ";",
    ":",
    " ",
    "quad",
    "qquad",
    "$",
    "circ",
    "limits",
];

/// Lexes `src` into tokens.
pub fn lex(src: &str) -> Result<Vec<Tok>, LexError> {
    let mut chars: Vec<char> = Vec::with_capacity(src.len());
    for c in src.chars() {
        push_unicode_form(c, &mut chars);
    }
    // Room for a typical answer's tokens up front; long inputs grow as usual.
    let mut out = Vec::with_capacity(chars.len().min(64));
    let mut i = 0;
    while i < chars.len() {
        if out.len() > MAX_TOKENS {
            return Err(LexError::TooLong);
        }
        let c = chars[i];
        match c {
            c if c.is_whitespace() || c == '~' => i += 1,
            '0'..='9' | '.' if c != '.' || chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                let (num, next) = number(&chars, i);
                out.push(Tok::Num(num));
                i = next;
            }
            '\\' => {
                let (tok, next) = command(&chars, i);
                if let Some(t) = tok {
                    out.push(t);
                }
                i = next;
            }
            'a'..='z' | 'A'..='Z' => {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_alphabetic() {
                    i += 1;
                }
                if i - start == 1 {
                    out.push(Tok::Letter(c));
                } else {
                    out.push(Tok::Word(chars[start..i].iter().collect()));
                }
            }
            c if c.is_alphabetic() => {
                out.push(Tok::Letter(c));
                i += 1;
            }
            _ => {
                i += 1;
                out.push(match c {
                    '{' => Tok::LBrace,
                    '}' => Tok::RBrace,
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBrack,
                    ']' => Tok::RBrack,
                    '|' => Tok::Pipe,
                    '&' => Tok::Amp,
                    ',' => Tok::Comma,
                    ';' => Tok::Semicolon,
                    ':' => Tok::Colon,
                    '%' => Tok::Percent,
                    '!' if chars.get(i) == Some(&'=') => {
                        i += 1;
                        Tok::Cmd("ne".into())
                    }
                    '!' => Tok::Bang,
                    '\'' => Tok::Prime,
                    '+' | '-' | '*' | '/' | '^' | '_' | '=' | '<' | '>' => Tok::Op(c),
                    '$' => continue,
                    '.' => continue, // a full stop ending a sentence
                    other => return Err(LexError::Unexpected(other)),
                });
            }
        }
    }
    if out.len() > MAX_TOKENS {
        return Err(LexError::TooLong);
    }
    Ok(drop_degree_marks(out))
}

/// Removes the `^` left behind by a dropped `\circ` (`90^\circ`, `90^{\circ}`).
fn drop_degree_marks(toks: Vec<Tok>) -> Vec<Tok> {
    if !toks.contains(&Tok::Op('^')) {
        return toks;
    }
    let mut keep = vec![true; toks.len()];
    let mut i = 0;
    while i < toks.len() {
        if toks[i] == Tok::Op('^') {
            if toks.get(i + 1) == Some(&Tok::LBrace) && toks.get(i + 2) == Some(&Tok::RBrace) {
                keep[i..i + 3].fill(false);
                i += 3;
                continue;
            }
            let operand_follows = matches!(
                toks.get(i + 1),
                Some(
                    Tok::Num(_)
                        | Tok::Letter(_)
                        | Tok::Cmd(_)
                        | Tok::LBrace
                        | Tok::LParen
                        | Tok::Op('-')
                        | Tok::Word(_)
                )
            );
            if !operand_follows {
                keep[i] = false;
                i += 1;
                continue;
            }
        }
        i += 1;
    }
    toks.into_iter()
        .zip(keep)
        .filter_map(|(t, k)| k.then_some(t))
        .collect()
}

/// Appends `c` to `out` in its LaTeX spelling (Unicode forms → LaTeX, ASCII as it is).
fn push_unicode_form(c: char, out: &mut Vec<char>) {
    if c.is_ascii() {
        out.push(c);
        return;
    }
    let s: &str = match c {
        '−' | '–' | '—' | '‐' => "-",
        '×' => "\\times ",
        '÷' => "\\div ",
        '·' | '⋅' | '∙' => "\\cdot ",
        '√' => "\\sqrt ",
        '∞' => "\\infty ",
        'π' => "\\pi ",
        '≤' | '⩽' => "\\le ",
        '≥' | '⩾' => "\\ge ",
        '≠' => "\\ne ",
        '≈' => "\\approx ",
        '∈' => "\\in ",
        '∪' => "\\cup ",
        '∩' => "\\cap ",
        '∅' => "\\emptyset ",
        '½' => "(1/2)",
        '⅓' => "(1/3)",
        '⅔' => "(2/3)",
        '¼' => "(1/4)",
        '¾' => "(3/4)",
        '⅕' => "(1/5)",
        '⅛' => "(1/8)",
        '²' => "^2",
        '³' => "^3",
        '°' => "",
        '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{00ad}' => "",
        '\u{00a0}' | '\u{2009}' | '\u{202f}' | '\u{3000}' => " ",
        c if ('\u{ff01}'..='\u{ff5e}').contains(&c) => {
            out.push(char::from_u32(c as u32 - 0xfee0).unwrap_or(c));
            return;
        }
        c => {
            out.push(c);
            return;
        }
    };
    out.extend(s.chars());
}

/// A number starting at `i`: digits with strict thousands groups (`1,234`, `14{,}916`,
/// `11,\!111`), a fraction part and an exponent (`1E20`, `2.5e-3`).
fn number(chars: &[char], mut i: usize) -> (String, usize) {
    let mut s = String::new();
    let digits = |chars: &[char], mut i: usize, s: &mut String| {
        while i < chars.len() && chars[i].is_ascii_digit() {
            s.push(chars[i]);
            i += 1;
        }
        i
    };
    let int_start = i;
    i = digits(chars, i, &mut s);
    let first_group = i - int_start;
    if (1..=3).contains(&first_group) {
        loop {
            let sep_len = thousands_separator(chars, i);
            if sep_len == 0 {
                break;
            }
            let g = i + sep_len;
            let three = (g..g + 3).all(|k| chars.get(k).is_some_and(char::is_ascii_digit));
            let fourth = chars.get(g + 3).is_some_and(char::is_ascii_digit);
            if !three || fourth {
                break;
            }
            // A plain comma is kept (`1,000`): inside an argument list it separates items.
            if sep_len == 1 && chars[i] == ',' {
                s.push(',');
            }
            s.extend(&chars[g..g + 3]);
            i = g + 3;
        }
    }
    if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
        s.push('.');
        i = digits(chars, i + 1, &mut s);
        if let Some((rep, next)) = repetend(chars, i, false) {
            s.push('r');
            s.push_str(&rep);
            return (s, next);
        }
    } else if chars.get(i) == Some(&'.')
        && let Some((rep, next)) = repetend(chars, i + 1, true)
    {
        // `0.\overline{3}`, `0.(3)`: a repeating part right after the point.
        s.push_str(".r");
        s.push_str(&rep);
        return (s, next);
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        let sign = matches!(chars.get(i + 1), Some('+' | '-'));
        let d = i + 1 + usize::from(sign);
        if chars.get(d).is_some_and(char::is_ascii_digit) {
            s.push('e');
            if chars[i + 1] == '-' {
                s.push('-');
            }
            i = digits(chars, d, &mut s);
        }
    }
    (s, i)
}

/// Most digits in a repeating part.
const MAX_REPETEND: usize = 64;

/// A repeating part at `i`: `\overline{142857}`, `\overline 3`, `\dot{3}`, `\dot 3`,
/// `\bar{3}`, or (only right after the point, `after_point`) `(3)`. Returns its digits and the
/// index after it. A number ending in one is written `<int>.<frac>r<digits>` (see
/// `parser::number`).
fn repetend(chars: &[char], i: usize, after_point: bool) -> Option<(String, usize)> {
    let run = |from: usize| {
        let n = chars[from.min(chars.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        (1..=MAX_REPETEND)
            .contains(&n)
            .then(|| (chars[from..from + n].iter().collect::<String>(), from + n))
    };
    if after_point && chars.get(i) == Some(&'(') {
        let (d, end) = run(i + 1)?;
        return (chars.get(end) == Some(&')')).then_some((d, end + 1));
    }
    if chars.get(i) != Some(&'\\') {
        return None;
    }
    let name_end = i
        + 1
        + chars[i + 1..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
    let name: String = chars[i + 1..name_end].iter().collect();
    if !matches!(name.as_str(), "overline" | "dot" | "bar") {
        return None;
    }
    let mut j = name_end;
    while chars.get(j) == Some(&' ') {
        j += 1;
    }
    if chars.get(j) == Some(&'{') {
        let (d, end) = run(j + 1)?;
        return (chars.get(end) == Some(&'}')).then_some((d, end + 1));
    }
    // An unbraced argument is one digit.
    chars
        .get(j)
        .filter(|c| c.is_ascii_digit())
        .map(|c| (c.to_string(), j + 1))
}

/// Length of a thousands separator at `i` (`,` with no space after, `{,}`, `,\!`, `\,`,
/// `\;`, `\:`, `\ `, `\thinspace`, one space or `~`), or 0. The caller accepts it only
/// between a group of 1–3 digits and one of exactly 3.
fn thousands_separator(chars: &[char], i: usize) -> usize {
    let at = |k: usize, c: char| chars.get(i + k) == Some(&c);
    if at(0, '{') && at(1, ',') && at(2, '}') {
        3
    } else if at(0, ',') && at(1, '\\') && at(2, '!') {
        let mut n = 3;
        while chars.get(i + n) == Some(&' ') {
            n += 1;
        }
        n
    } else if at(0, ',') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
        1
    } else if at(0, '\\') && (at(1, ',') || at(1, ';') || at(1, ':') || at(1, ' ')) {
        // `1\,000`, `1\;000`: spacing commands as thousands separators.
        2
    } else if chars[i..].starts_with(&['\\', 't', 'h', 'i', 'n', 's', 'p', 'a', 'c', 'e']) {
        let mut n = 10;
        while chars.get(i + n) == Some(&' ') {
            n += 1;
        }
        n
    } else if (at(0, ' ') || at(0, '~')) && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
        // `1 000`: a single space between digit groups.
        1
    } else {
        0
    }
}

/// A command at `i` (a backslash): returns its token (None for dropped ones) and the next index.
fn command(chars: &[char], i: usize) -> (Option<Tok>, usize) {
    let next = chars.get(i + 1).copied();
    match next {
        None => (None, i + 1),
        Some('\\') => {
            // `\\le` written with a doubled backslash means `\le`; otherwise a row break.
            if chars.get(i + 2).is_some_and(|c| c.is_ascii_alphabetic()) {
                command(chars, i + 1)
            } else {
                (Some(Tok::RowSep), i + 2)
            }
        }
        Some(c) if c.is_ascii_alphabetic() => {
            let mut j = i + 1;
            while j < chars.len() && chars[j].is_ascii_alphabetic() {
                j += 1;
            }
            let name: String = chars[i + 1..j].iter().collect();
            if DROPPED.contains(&name.as_str()) {
                // `\left.` / `\right.` are invisible delimiters.
                let skip_dot = (name == "left" || name == "right") && chars.get(j) == Some(&'.');
                return (None, j + usize::from(skip_dot));
            }
            if TEXT_COMMANDS.contains(&name.as_str()) {
                let mut k = j;
                while chars.get(k) == Some(&' ') {
                    k += 1;
                }
                if chars.get(k) == Some(&'{') {
                    let mut depth = 0usize;
                    let mut content = String::new();
                    let mut m = k;
                    while m < chars.len() {
                        match chars[m] {
                            '{' => {
                                depth += 1;
                                if depth > 1 {
                                    content.push('{');
                                }
                            }
                            '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    return (Some(Tok::Text(name, content)), m + 1);
                                }
                                content.push('}');
                            }
                            c => content.push(c),
                        }
                        m += 1;
                    }
                    return (Some(Tok::Text(name, content)), m);
                }
            }
            match name.as_str() {
                "lgroup" | "lparen" => (Some(Tok::LParen), j),
                "rgroup" | "rparen" => (Some(Tok::RParen), j),
                _ => (Some(Tok::Cmd(name)), j),
            }
        }
        Some('%') => (Some(Tok::Percent), i + 2),
        Some(c) if DROPPED.contains(&c.to_string().as_str()) => (None, i + 2),
        Some(c) => (Some(Tok::Cmd(c.to_string())), i + 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_separators() {
        assert_eq!(lex("14{,}916").unwrap(), vec![Tok::Num("14916".into())]);
        assert_eq!(
            lex("11,\\! 111,\\! 100").unwrap(),
            vec![Tok::Num("11111100".into())]
        );
        assert_eq!(lex("1,000.5").unwrap(), vec![Tok::Num("1,000.5".into())]);
        assert_eq!(
            lex("x != 3").unwrap(),
            vec![
                Tok::Letter('x'),
                Tok::Cmd("ne".into()),
                Tok::Num("3".into())
            ]
        );
        assert_eq!(
            lex("32, 349").unwrap(),
            vec![Tok::Num("32".into()), Tok::Comma, Tok::Num("349".into())]
        );
        assert_eq!(
            lex("1,2").unwrap(),
            vec![Tok::Num("1".into()), Tok::Comma, Tok::Num("2".into())]
        );
        assert_eq!(lex("1E20").unwrap(), vec![Tok::Num("1e20".into())]);
        assert_eq!(
            lex("2e").unwrap(),
            vec![Tok::Num("2".into()), Tok::Letter('e')]
        );
        assert_eq!(lex(".5").unwrap(), vec![Tok::Num(".5".into())]);
    }

    #[test]
    fn commands_text_and_unicode() {
        assert_eq!(
            lex("\\left( x \\right)").unwrap(),
            vec![Tok::LParen, Tok::Letter('x'), Tok::RParen]
        );
        assert_eq!(
            lex("\\text{ cm}").unwrap(),
            vec![Tok::Text("text".into(), " cm".into())]
        );
        assert_eq!(lex("\\\\le").unwrap(), vec![Tok::Cmd("le".into())]);
        assert_eq!(
            lex("1 \\\\ 2").unwrap(),
            vec![Tok::Num("1".into()), Tok::RowSep, Tok::Num("2".into())]
        );
        assert_eq!(
            lex("√2").unwrap(),
            vec![Tok::Cmd("sqrt".into()), Tok::Num("2".into())]
        );
        assert_eq!(lex("１２").unwrap(), vec![Tok::Num("12".into())]);
        assert_eq!(
            lex("5\\%").unwrap(),
            vec![Tok::Num("5".into()), Tok::Percent]
        );
        assert_eq!(lex("90^\\circ").unwrap(), vec![Tok::Num("90".into())]);
        assert_eq!(
            lex("90^{\\circ}+1").unwrap(),
            vec![Tok::Num("90".into()), Tok::Op('+'), Tok::Num("1".into())]
        );
    }
}
