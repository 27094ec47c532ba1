//! Recursive-descent parser from [`Tok`]ens to an [`Answer`].
//!
//! Bounded: nesting deeper than [`MAX_DEPTH`] is [`ParseError::TooDeep`] (no stack overflow),
//! and the lexer caps the token count. Nothing is ever evaluated here.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::One;

use super::ast::{Answer, Constant, Expr, Func, Num, RelOp};
use super::lexer::{Tok, lex};

/// Deepest nesting: of groups (brackets, braces, command arguments), signs and exponents;
/// each level is one, however many grammar rules it passes through.
pub const MAX_DEPTH: usize = 400;

/// Largest exponent a numeric literal may carry (`1e400` is refused).
pub const MAX_LITERAL_EXPONENT: i64 = 10_000;

/// Why an answer did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not valid in the answer language.
    Invalid(String),
    /// Nested deeper than [`MAX_DEPTH`], or too many tokens.
    TooDeep,
}

type PResult<T> = Result<T, ParseError>;

fn invalid<T>(msg: impl Into<String>) -> PResult<T> {
    Err(ParseError::Invalid(msg.into()))
}

/// Parses a whole answer.
pub fn parse(src: &str) -> PResult<Answer> {
    let toks = lex(src).map_err(|e| match e {
        super::lexer::LexError::TooLong => ParseError::TooDeep,
        super::lexer::LexError::Unexpected(c) => {
            ParseError::Invalid(format!("unexpected character {c:?}"))
        }
    })?;
    let toks = drop_unit_groups(toks);
    if nesting_bound(&toks) <= SHALLOW {
        return parse_tokens(toks, 0);
    }
    // Deep input: parse on a thread whose stack holds MAX_DEPTH levels of recursion whatever
    // the caller's stack (tokio's blocking threads and Rust's spawned ones have 2 MiB).
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("math-parse-deep".into())
            .stack_size(DEEP_STACK_BYTES)
            .spawn_scoped(scope, move || parse_tokens(toks, 0))
            .map_or(Err(ParseError::TooDeep), |h| {
                h.join().unwrap_or(Err(ParseError::TooDeep))
            })
    })
}

/// Inputs whose [`nesting_bound`] is at most this parse on the caller's stack.
const SHALLOW: usize = 48;

/// Stack for parsing deeper input: [`MAX_DEPTH`] levels of groups, each a handful of
/// recursive calls, with room to spare in unoptimised builds. Reserved, not committed.
const DEEP_STACK_BYTES: usize = 256 << 20;

/// An upper bound on the parser's recursion in nesting levels: the deepest bracket nesting
/// plus every token that may open a level without a bracket (`^`, a sign, a command).
fn nesting_bound(toks: &[Tok]) -> usize {
    let mut open = 0usize;
    let mut deepest = 0usize;
    let mut unbracketed = 0usize;
    for t in toks {
        match t {
            Tok::LBrace | Tok::LParen | Tok::LBrack => {
                open += 1;
                deepest = deepest.max(open);
            }
            Tok::RBrace | Tok::RParen | Tok::RBrack => open = open.saturating_sub(1),
            Tok::Op('^' | '-' | '+') | Tok::Cmd(_) | Tok::Pipe => unbracketed += 1,
            _ => {}
        }
    }
    deepest + unbracketed
}

/// Removes units written as text and their powers after a value: `5\text{ cm}^2`,
/// `5\,\mathrm{cm}^{2}`, `9.8\,\mathrm{m/s^2}` are 5, 5 and 9.8 (the power belongs to the
/// unit, not to the number).
fn drop_unit_groups(toks: Vec<Tok>) -> Vec<Tok> {
    if !toks.iter().any(|t| matches!(t, Tok::Text(..))) {
        return toks;
    }
    let mut keep = vec![true; toks.len()];
    let mut kept_any = false;
    let mut i = 0;
    while i < toks.len() {
        if let Tok::Text(_, t) = &toks[i]
            && kept_any
            && is_unit_expression(t)
        {
            let start = i;
            i += 1;
            // Its power: `^2`, `^{2}`, `^{-1}`.
            if toks.get(i) == Some(&Tok::Op('^')) {
                match (
                    toks.get(i + 1),
                    toks.get(i + 2),
                    toks.get(i + 3),
                    toks.get(i + 4),
                ) {
                    (Some(Tok::Num(_)), ..) => i += 2,
                    (Some(Tok::LBrace), Some(Tok::Num(_)), Some(Tok::RBrace), _) => i += 4,
                    (
                        Some(Tok::LBrace),
                        Some(Tok::Op('-')),
                        Some(Tok::Num(_)),
                        Some(Tok::RBrace),
                    ) => i += 5,
                    _ => {}
                }
            }
            keep[start..i].fill(false);
            continue;
        }
        kept_any = true;
        i += 1;
    }
    toks.into_iter()
        .zip(keep)
        .filter_map(|(t, k)| k.then_some(t))
        .collect()
}

/// Unit words combined with `/`, `*`, `\cdot`, spaces and powers (`m/s^2`, `kg~m^{2}`).
fn is_unit_expression(t: &str) -> bool {
    let mut plain = String::with_capacity(t.len());
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '^' => {
                // Drop the power: `^2`, `^{-1}`.
                if chars.peek() == Some(&'{') {
                    for d in chars.by_ref() {
                        if d == '}' {
                            break;
                        }
                    }
                } else {
                    if chars.peek() == Some(&'-') {
                        chars.next();
                    }
                    while chars.peek().is_some_and(char::is_ascii_digit) {
                        chars.next();
                    }
                }
            }
            '/' | '*' | '~' | '{' | '}' | '.' => plain.push(' '),
            '\\' => {
                // `\cdot`, `\,`, `\ `: separators.
                let name: String =
                    std::iter::from_fn(|| chars.next_if(char::is_ascii_alphabetic)).collect();
                if name.is_empty() {
                    chars.next();
                } else if name != "cdot" && name != "times" {
                    return false;
                }
                plain.push(' ');
            }
            c => plain.push(c),
        }
    }
    is_unit_text(&plain)
}

/// Most nested `\pm` signs expanded (each doubles the work).
const MAX_PM_EXPANSIONS: usize = 3;

fn parse_tokens(toks: Vec<Tok>, expansions: usize) -> PResult<Answer> {
    // A `\pm` inside a group (`\frac{-1 \pm \sqrt{13}}{4}`): parse the `+` and the `-` readings
    // and keep both values.
    if let Some(at) = nested_pm(&toks) {
        if expansions >= MAX_PM_EXPANSIONS {
            return Err(ParseError::TooDeep);
        }
        let with = |op: char| {
            let mut t = toks.clone();
            t[at] = Tok::Op(op);
            parse_tokens(t, expansions + 1)
        };
        return Ok(combine_readings(with('+')?, with('-')?));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        brackets: 0,
    };
    p.skip_noise();
    if p.at_end() {
        return invalid("empty answer");
    }
    let a = p.list(&[])?;
    p.skip_noise();
    if !p.at_end() {
        return invalid(format!("unexpected {:?}", p.peek()));
    }
    Ok(a)
}

/// Position of the first `\pm`/`\mp` inside braces or brackets.
fn nested_pm(toks: &[Tok]) -> Option<usize> {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::LBrace | Tok::LParen | Tok::LBrack => depth += 1,
            Tok::RBrace | Tok::RParen | Tok::RBrack => depth -= 1,
            Tok::Cmd(c) if (c == "pm" || c == "mp") && depth > 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// The `+` and `-` readings of one answer: equal parts stay single, differing parts both
/// count (`x = 1/2, x = (-1 ± √13)/4` lists three roots).
fn combine_readings(a: Answer, b: Answer) -> Answer {
    if a == b {
        return a;
    }
    match (a, b) {
        (Answer::List(x), Answer::List(y)) if x.len() == y.len() => Answer::List(
            x.into_iter()
                .zip(y)
                .flat_map(|(p, q)| if p == q { vec![p] } else { vec![p, q] })
                .collect(),
        ),
        (a, b) => Answer::Set(vec![a, b]),
    }
}

/// Words that separate list items.
const SEPARATOR_WORDS: [&str; 2] = ["and", "or"];
/// Words meaning "percent".
const PERCENT_WORDS: [&str; 3] = ["percent", "pct", "percentage"];
/// Unit and filler words dropped after a value (never single letters: those are variables).
/// Is `w` a unit word, in any ASCII case?
fn is_unit_word(w: &str) -> bool {
    UNIT_WORDS.iter().any(|u| u.eq_ignore_ascii_case(w))
}

const UNIT_WORDS: [&str; 64] = [
    "cm",
    "mm",
    "km",
    "m",
    "kg",
    "mg",
    "g",
    "lb",
    "lbs",
    "oz",
    "ft",
    "feet",
    "foot",
    "inch",
    "inches",
    "in",
    "yd",
    "yards",
    "yard",
    "mi",
    "miles",
    "mile",
    "meters",
    "meter",
    "metres",
    "metre",
    "centimeters",
    "centimeter",
    "kilometers",
    "kilometer",
    "millimeters",
    "grams",
    "gram",
    "kilograms",
    "seconds",
    "second",
    "sec",
    "s",
    "minutes",
    "minute",
    "mins",
    "hours",
    "hour",
    "hrs",
    "hr",
    "days",
    "day",
    "weeks",
    "years",
    "year",
    "units",
    "unit",
    "degrees",
    "degree",
    "dollars",
    "dollar",
    "cents",
    "cent",
    "liters",
    "liter",
    "ml",
    "mph",
    "sq",
    "square",
];

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    /// Open `(`/`[` around the current position: inside them `830,450` is two items.
    brackets: usize,
}

fn num_expr(v: BigRational, is_float: bool) -> Expr {
    Expr::Num(Num { value: v, is_float })
}

fn int(n: i64) -> Expr {
    num_expr(BigRational::from_integer(n.into()), false)
}

fn func_named(name: &str) -> Option<Func> {
    Some(match name {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" | "tg" => Func::Tan,
        "cot" | "ctg" => Func::Cot,
        "sec" => Func::Sec,
        "csc" | "cosec" => Func::Csc,
        "arcsin" | "asin" => Func::Asin,
        "arccos" | "acos" => Func::Acos,
        "arctan" | "atan" => Func::Atan,
        "sinh" => Func::Sinh,
        "cosh" => Func::Cosh,
        "tanh" => Func::Tanh,
        "ln" => Func::Ln,
        "log" | "lg" => Func::Log,
        "exp" => Func::Exp,
        "sqrt" => Func::Sqrt,
        "abs" => Func::Abs,
        "floor" => Func::Floor,
        "ceil" => Func::Ceil,
        "gcd" => Func::Gcd,
        "lcm" => Func::Lcm,
        "min" => Func::Min,
        "max" => Func::Max,
        "binom" | "dbinom" | "tbinom" | "choose" => Func::Binom,
        _ => return None,
    })
}

fn greek(name: &str) -> bool {
    matches!(
        name,
        "alpha"
            | "beta"
            | "gamma"
            | "delta"
            | "epsilon"
            | "varepsilon"
            | "zeta"
            | "eta"
            | "theta"
            | "vartheta"
            | "iota"
            | "kappa"
            | "lambda"
            | "mu"
            | "nu"
            | "xi"
            | "rho"
            | "sigma"
            | "tau"
            | "upsilon"
            | "phi"
            | "varphi"
            | "chi"
            | "psi"
            | "omega"
            | "Gamma"
            | "Delta"
            | "Theta"
            | "Lambda"
            | "Xi"
            | "Sigma"
            | "Phi"
            | "Psi"
            | "Omega"
    )
}

fn relop(tok: &Tok) -> Option<RelOp> {
    Some(match tok {
        Tok::Op('=') => RelOp::Eq,
        Tok::Op('<') => RelOp::Lt,
        Tok::Op('>') => RelOp::Gt,
        Tok::Cmd(c) => return relop_cmd(c),
        _ => return None,
    })
}

/// The relation a command names (`le`, `approx`), if any.
fn relop_cmd(c: &str) -> Option<RelOp> {
    Some(match c {
        "le" | "leq" | "leqslant" => RelOp::Le,
        "ge" | "geq" | "geqslant" => RelOp::Ge,
        "lt" => RelOp::Lt,
        "gt" => RelOp::Gt,
        "ne" | "neq" => RelOp::Ne,
        "approx" | "simeq" | "sim" | "cong" => RelOp::Approx,
        "eq" => RelOp::Eq,
        _ => return None,
    })
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Tok) -> PResult<()> {
        if self.eat(t) {
            Ok(())
        } else {
            invalid(format!("expected {t:?}, found {:?}", self.peek()))
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(ParseError::TooDeep)
        } else {
            Ok(())
        }
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn is_cmd(&self, name: &str) -> bool {
        matches!(self.peek(), Some(Tok::Cmd(c)) if c == name)
    }

    /// Skips unit words, empty `\text{}` and filler around values.
    fn skip_noise(&mut self) {
        loop {
            match self.peek() {
                Some(Tok::Word(w)) if is_unit_word(w) => self.pos += 1,
                Some(Tok::Text(_, t)) if is_unit_text(t) => self.pos += 1,
                _ => return,
            }
            // `\mbox{ cm}^2`: the unit's power goes with it.
            if self.peek() == Some(&Tok::Op('^')) && matches!(self.peek_at(1), Some(Tok::Num(_))) {
                self.pos += 2;
            }
        }
    }

    fn at_separator(&self) -> bool {
        match self.peek() {
            Some(Tok::Comma | Tok::Semicolon) => true,
            Some(Tok::Word(w)) => SEPARATOR_WORDS.contains(&w.as_str()),
            Some(Tok::Text(_, t)) => SEPARATOR_WORDS.contains(&t.trim()),
            Some(Tok::Cmd(c)) => c == "quad" || c == "qquad",
            _ => false,
        }
    }

    /// `item (sep item)*`; one item is returned as itself, several as a [`Answer::List`].
    fn list(&mut self, closers: &[Tok]) -> PResult<Answer> {
        let first = self.relation()?;
        self.skip_noise();
        if !self.at_separator() {
            return Ok(first);
        }
        let mut items = vec![first];
        loop {
            self.skip_noise();
            if !self.at_separator() {
                break;
            }
            while self.at_separator() {
                self.pos += 1;
            }
            self.skip_noise();
            if self.at_end() || self.peek().is_some_and(|t| closers.contains(t)) {
                break;
            }
            items.push(self.relation()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Answer::List(items)
        })
    }

    fn relation(&mut self) -> PResult<Answer> {
        let first = self.union()?;
        if self.is_cmd("in") {
            self.pos += 1;
            let set = self.union()?;
            return match first {
                Answer::Expr(e) => Ok(Answer::Member(e, Box::new(set))),
                _ => invalid("left of \\in must be an expression"),
            };
        }
        if self.peek().and_then(relop).is_none() {
            return Ok(first);
        }
        let mut terms = vec![first];
        let mut ops = Vec::new();
        while let Some(op) = self.peek().and_then(relop) {
            self.pos += 1;
            // `<=`, `>=`, `!=`, `==` written with two characters.
            let op = match (op, self.peek()) {
                (RelOp::Lt, Some(Tok::Op('='))) | (RelOp::Le, Some(Tok::Op('='))) => {
                    self.pos += 1;
                    RelOp::Le
                }
                (RelOp::Gt, Some(Tok::Op('='))) => {
                    self.pos += 1;
                    RelOp::Ge
                }
                (RelOp::Eq, Some(Tok::Op('='))) => {
                    self.pos += 1;
                    RelOp::Eq
                }
                (op, _) => op,
            };
            ops.push(op);
            terms.push(self.union()?);
        }
        if ops.is_empty() {
            return Ok(terms.remove(0));
        }
        if terms.iter().any(|t| !matches!(t, Answer::Expr(_))) {
            // `(p, q) = (3, 2)`, `x = \pm 2`, `S = \{1, 2\}`: an assignment of a structure; the
            // right side is the answer.
            if ops.iter().all(|o| *o == RelOp::Eq) {
                return terms
                    .pop()
                    .ok_or_else(|| ParseError::Invalid("empty relation".into()));
            }
            return invalid("inequalities need scalar operands");
        }
        let exprs = terms
            .into_iter()
            .filter_map(|t| {
                if let Answer::Expr(e) = t {
                    Some(e)
                } else {
                    None
                }
            })
            .collect();
        Ok(Answer::Relation { terms: exprs, ops })
    }

    fn union(&mut self) -> PResult<Answer> {
        let first = self.additive()?;
        if !self.is_cmd("cup") {
            return Ok(first);
        }
        let mut parts = vec![first];
        while self.is_cmd("cup") {
            self.pos += 1;
            parts.push(self.additive()?);
        }
        Ok(Answer::Union(parts))
    }

    /// Sums; `a \pm b` yields the set `{a + b, a − b}`.
    fn additive(&mut self) -> PResult<Answer> {
        let mut pm = false;
        let mut terms: Vec<Expr> = Vec::new();
        let mut pm_terms: Vec<Expr> = Vec::new();
        let lead_pm = self.is_cmd("pm") || self.is_cmd("mp");
        if lead_pm {
            self.pos += 1;
            pm = true;
            pm_terms.push(self.multiplicative_expr()?);
        } else {
            let first = self.multiplicative()?;
            match first {
                Answer::Expr(e) => terms.push(e),
                other => {
                    // Matrices add element-wise; other structures stand alone.
                    if let Answer::Matrix(m) = other {
                        return self.matrix_sum(m);
                    }
                    return Ok(other);
                }
            }
        }
        loop {
            match self.peek() {
                Some(Tok::Op('+')) => {
                    self.pos += 1;
                    let t = self.multiplicative_expr()?;
                    if pm { pm_terms.push(t) } else { terms.push(t) }
                }
                Some(Tok::Op('-')) => {
                    self.pos += 1;
                    let t = Expr::Neg(Box::new(self.multiplicative_expr()?));
                    if pm { pm_terms.push(t) } else { terms.push(t) }
                }
                Some(Tok::Cmd(c)) if c == "pm" || c == "mp" => {
                    self.pos += 1;
                    pm = true;
                    pm_terms.push(self.multiplicative_expr()?);
                }
                _ => break,
            }
        }
        let sum = |mut v: Vec<Expr>| {
            if v.len() == 1 {
                v.remove(0)
            } else {
                Expr::Add(v)
            }
        };
        if !pm {
            return Ok(Answer::Expr(sum(terms)));
        }
        let delta = sum(pm_terms);
        if terms.is_empty() {
            return Ok(Answer::Set(vec![
                Answer::Expr(delta.clone()),
                Answer::Expr(Expr::Neg(Box::new(delta))),
            ]));
        }
        let base = sum(terms);
        Ok(Answer::Set(vec![
            Answer::Expr(Expr::Add(vec![base.clone(), delta.clone()])),
            Answer::Expr(Expr::Add(vec![base, Expr::Neg(Box::new(delta))])),
        ]))
    }

    fn matrix_sum(&mut self, mut m: Vec<Vec<Expr>>) -> PResult<Answer> {
        while let Some(Tok::Op(c @ ('+' | '-'))) = self.peek().cloned() {
            self.pos += 1;
            let Answer::Matrix(other) = self.multiplicative()? else {
                return invalid("matrix plus non-matrix");
            };
            if other.len() != m.len() || other.iter().zip(&m).any(|(a, b)| a.len() != b.len()) {
                return invalid("matrix shapes differ");
            }
            for (row, orow) in m.iter_mut().zip(other) {
                for (x, y) in row.iter_mut().zip(orow) {
                    let y = if c == '-' { Expr::Neg(Box::new(y)) } else { y };
                    *x = Expr::Add(vec![x.clone(), y]);
                }
            }
        }
        Ok(Answer::Matrix(m))
    }

    fn multiplicative_expr(&mut self) -> PResult<Expr> {
        match self.multiplicative()? {
            Answer::Expr(e) => Ok(e),
            _ => invalid("expected an expression"),
        }
    }

    fn starts_operand(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_) | Tok::Letter(_) | Tok::LParen | Tok::LBrace | Tok::LBrack) => true,
            Some(Tok::Word(w)) => {
                let w = w.as_str();
                !SEPARATOR_WORDS.contains(&w) && !PERCENT_WORDS.contains(&w) && !is_unit_word(w)
            }
            // Text right after a value is a unit annotation (`0.06 \text{ yuan}`), not a factor.
            Some(Tok::Text(cmd, _)) => cmd.starts_with("math") || cmd == "operatorname",
            Some(Tok::Cmd(c)) => {
                relop_cmd(c).is_none()
                    && !matches!(
                        c.as_str(),
                        "cdot"
                            | "times"
                            | "div"
                            | "pm"
                            | "mp"
                            | "cup"
                            | "cap"
                            | "in"
                            | "mod"
                            | "bmod"
                            | "pmod"
                            | "choose"
                            | "rfloor"
                            | "rceil"
                            | "rvert"
                            | "urcorner"
                            | "lrcorner"
                            | "}"
                            | "end"
                            | "quad"
                            | "qquad"
                            | "to"
                            | "rightarrow"
                            | "Rightarrow"
                            | "implies"
                            | "setminus"
                            | "|"
                            | "vert"
                    )
            }
            _ => false,
        }
    }

    fn multiplicative(&mut self) -> PResult<Answer> {
        let mut acc = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op('*')) => '*',
                Some(Tok::Op('/')) => '/',
                Some(Tok::Cmd(c)) if c == "cdot" || c == "times" || c == "ast" => '*',
                Some(Tok::Cmd(c)) if c == "div" => '/',
                Some(Tok::Cmd(c)) if c == "mod" || c == "bmod" => '%',
                Some(Tok::Cmd(c)) if c == "choose" => 'C',
                Some(Tok::Cmd(c)) if c == "pmod" => {
                    self.pos += 1;
                    let m = self.group_arg()?;
                    acc = Answer::Expr(Expr::Call(Func::Mod, vec![expr_of(acc)?, m]));
                    continue;
                }
                _ if self.starts_operand() => 'i',
                _ => break,
            };
            if op != 'i' {
                self.pos += 1;
            }
            let rhs = self.unary()?;
            acc = match (acc, rhs, op) {
                (Answer::Matrix(a), Answer::Matrix(b), '*' | 'i') => Answer::Matrix(mat_mul(a, b)?),
                (Answer::Expr(a), Answer::Matrix(b), '*' | 'i') => Answer::Matrix(
                    b.into_iter()
                        .map(|r| {
                            r.into_iter()
                                .map(|x| Expr::Mul(vec![a.clone(), x]))
                                .collect()
                        })
                        .collect(),
                ),
                (Answer::Expr(a), Answer::Expr(b), _) => Answer::Expr(match op {
                    '/' => Expr::Div(Box::new(a), Box::new(b)),
                    '%' => Expr::Call(Func::Mod, vec![a, b]),
                    'C' => Expr::Call(Func::Binom, vec![a, b]),
                    _ => mul(a, b),
                }),
                (a, b, 'i') => {
                    // A structure followed by more: only text-like trailers are dropped.
                    return invalid(format!("cannot combine {a:?} and {b:?}"));
                }
                _ => return invalid("operator on a non-expression"),
            };
        }
        Ok(acc)
    }

    fn unary(&mut self) -> PResult<Answer> {
        // A sign opens a level (`- - - 1` recurses); anything else is counted where it nests.
        let r = match self.peek() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                self.enter()?;
                let operand = self.unary()?;
                self.leave();
                match operand {
                    Answer::Expr(e) => Answer::Expr(Expr::Neg(Box::new(e))),
                    Answer::Matrix(m) => Answer::Matrix(
                        m.into_iter()
                            .map(|r| r.into_iter().map(|x| Expr::Neg(Box::new(x))).collect())
                            .collect(),
                    ),
                    _ => return invalid("negated structure"),
                }
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.enter()?;
                let operand = self.unary()?;
                self.leave();
                operand
            }
            _ => self.power()?,
        };
        Ok(r)
    }

    fn power(&mut self) -> PResult<Answer> {
        let base = self.postfix()?;
        if self.eat(&Tok::Op('^')) {
            let exp = self.exponent()?;
            let Answer::Expr(b) = base else {
                return invalid("power of a structure");
            };
            let mut r = Expr::Pow(Box::new(b), Box::new(exp));
            r = self.postfix_ops(r)?;
            return Ok(Answer::Expr(r));
        }
        Ok(base)
    }

    /// The exponent after `^`: a braced group, or one signed atom (`2^-1`, `x^2`, `e^{i\pi}`).
    fn exponent(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = if self.eat(&Tok::Op('-')) {
            Expr::Neg(Box::new(self.exponent()?))
        } else if self.peek() == Some(&Tok::LBrace) {
            self.group_arg()?
        } else if let Some(Tok::Num(n)) = self.peek().cloned() {
            // `10^32` is 10^{32} (latex2sympy's reading, not TeX's 10^{3}2).
            self.pos += 1;
            number(&n)?
        } else {
            match self.power()? {
                Answer::Expr(e) => e,
                _ => return invalid("structured exponent"),
            }
        };
        self.leave();
        Ok(r)
    }

    fn postfix(&mut self) -> PResult<Answer> {
        let p = self.primary()?;
        match p {
            Answer::Expr(e) => Ok(Answer::Expr(self.postfix_ops(e)?)),
            other => Ok(other),
        }
    }

    fn postfix_ops(&mut self, mut e: Expr) -> PResult<Expr> {
        loop {
            match self.peek() {
                Some(Tok::Text(cmd, t))
                    if !cmd.starts_with("math")
                        && cmd != "operatorname"
                        && !SEPARATOR_WORDS.contains(&t.trim())
                        && !PERCENT_WORDS.contains(&t.trim())
                        && t.trim() != "%"
                        && parse(t).is_err_or_words() =>
                {
                    self.pos += 1;
                }
                Some(Tok::Bang) => {
                    self.pos += 1;
                    e = Expr::Call(Func::Factorial, vec![e]);
                }
                Some(Tok::Percent) => {
                    self.pos += 1;
                    e = Expr::Div(Box::new(e), Box::new(int(100)));
                }
                Some(Tok::Word(w)) if PERCENT_WORDS.contains(&w.as_str()) => {
                    self.pos += 1;
                    e = Expr::Div(Box::new(e), Box::new(int(100)));
                }
                Some(Tok::Text(_, t)) if PERCENT_WORDS.contains(&t.trim()) || t.trim() == "%" => {
                    self.pos += 1;
                    e = Expr::Div(Box::new(e), Box::new(int(100)));
                }
                _ => return Ok(e),
            }
        }
    }

    /// A braced group `{…}` or a single token argument (`\frac12`, `\sqrt3`).
    fn group_arg(&mut self) -> PResult<Expr> {
        // Not a level of its own: its callers (a command's primary, an exponent) count it.
        let r = if self.eat(&Tok::LBrace) {
            let a = self.list(&[Tok::RBrace])?;
            self.expect(&Tok::RBrace)?;
            expr_of(a)?
        } else {
            match self.bump() {
                Some(Tok::Num(n)) => {
                    if n.len() > 1 && n.chars().all(|c| c.is_ascii_digit()) {
                        self.pos -= 1;
                        self.toks[self.pos] = Tok::Num(n[1..].to_string());
                        number(&n[..1])?
                    } else {
                        number(&n)?
                    }
                }
                Some(Tok::Letter(c)) => Expr::Sym(c.to_string()),
                Some(Tok::Cmd(_)) => {
                    // A command argument (`\frac\pi2`): parse it as a primary.
                    self.pos -= 1;
                    expr_of(self.primary()?)?
                }
                other => return invalid(format!("expected an argument, found {other:?}")),
            }
        };
        Ok(r)
    }

    /// `(a, b, …)` argument list after a function name, or one braced/bare argument.
    fn call_args(&mut self) -> PResult<Vec<Expr>> {
        if self.eat(&Tok::LParen) {
            self.brackets += 1;
            let a = self.list(&[Tok::RParen]);
            self.brackets -= 1;
            let a = a?;
            self.expect(&Tok::RParen)?;
            return match a {
                Answer::List(items) => items.into_iter().map(expr_of).collect(),
                other => Ok(vec![expr_of(other)?]),
            };
        }
        if self.peek() == Some(&Tok::LBrace) {
            return Ok(vec![self.group_arg()?]);
        }
        // `\sin x`, `\sin 2x`: one multiplicative term without further operators.
        Ok(vec![expr_of(self.power()?)?])
    }

    fn primary(&mut self) -> PResult<Answer> {
        self.enter()?;
        let tok = self
            .bump()
            .ok_or_else(|| ParseError::Invalid("unexpected end".into()))?;
        let r = match tok {
            Tok::Num(n) if self.brackets > 0 && n.contains(',') => {
                // `\gcd(830,450)`: a comma list, not a thousands-grouped number.
                let (first, rest) = n.split_once(',').unwrap_or((&n, ""));
                self.toks
                    .splice(self.pos..self.pos, [Tok::Comma, Tok::Num(rest.to_string())]);
                Answer::Expr(number(first)?)
            }
            Tok::Num(n)
                if matches!(self.peek(), Some(Tok::Colon))
                    && matches!(self.peek_at(1), Some(Tok::Num(_))) =>
            {
                // A time or ratio `12:00`, `3:4`: compared as written.
                self.pos += 1;
                let Some(Tok::Num(m)) = self.bump() else {
                    return invalid("ratio");
                };
                Answer::Text(format!("{n}:{m}"))
            }
            Tok::Num(n) => {
                let mut e = number(&n)?;
                // A subscripted number is a base (`1112_3`): keep the digits, drop the base.
                if self.eat(&Tok::Op('_')) {
                    let _ = self.group_arg()?;
                }
                // Mixed number: `3\frac{1}{2}` = 3 + 1/2 (integers only).
                if let Expr::Num(Num {
                    is_float: false, ..
                }) = e
                    && matches!(self.peek(), Some(Tok::Cmd(c)) if c == "frac" || c == "dfrac" || c == "tfrac")
                {
                    let save = self.pos;
                    self.pos += 1;
                    let a = self.group_arg()?;
                    let b = self.group_arg()?;
                    if is_int_literal(&a) && is_int_literal(&b) {
                        e = Expr::Add(vec![e, Expr::Div(Box::new(a), Box::new(b))]);
                    } else {
                        self.pos = save;
                    }
                }
                Answer::Expr(e)
            }
            Tok::Letter(c) => Answer::Expr(self.symbol(c.to_string())?),
            Tok::Word(w) => self.word(w)?,
            Tok::Text(cmd, content) => self.text(&cmd, &content)?,
            Tok::LParen => {
                self.brackets += 1;
                let r = self.bracketed(false);
                self.brackets -= 1;
                r?
            }
            Tok::LBrack => {
                self.brackets += 1;
                let r = self.bracketed(true);
                self.brackets -= 1;
                r?
            }
            Tok::LBrace => {
                if self.eat(&Tok::RBrace) {
                    self.leave();
                    return invalid("empty group");
                }
                let a = self.list(&[Tok::RBrace])?;
                self.expect(&Tok::RBrace)?;
                a
            }
            Tok::Pipe => {
                let inner = self.list(&[Tok::Pipe])?;
                self.expect(&Tok::Pipe)?;
                Answer::Expr(Expr::Call(Func::Abs, vec![expr_of(inner)?]))
            }
            Tok::Cmd(c) => self.command(&c)?,
            other => {
                self.leave();
                return invalid(format!("unexpected {other:?}"));
            }
        };
        self.leave();
        Ok(r)
    }

    /// A variable, with subscripts and primes; `f(x)` applies an undefined function.
    fn symbol(&mut self, mut name: String) -> PResult<Expr> {
        if self.eat(&Tok::Op('_')) {
            let sub = match self.bump() {
                Some(Tok::LBrace) => {
                    let start = self.pos;
                    let mut depth = 1;
                    while let Some(t) = self.bump() {
                        match t {
                            Tok::LBrace => depth += 1,
                            Tok::RBrace => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    format!("{:?}", &self.toks[start..self.pos.saturating_sub(1)])
                }
                Some(t) => format!("{t:?}"),
                None => return invalid("dangling subscript"),
            };
            name = format!("{name}_{sub}");
        }
        while self.eat(&Tok::Prime) {
            name.push('\'');
        }
        let is_function_name = matches!(
            name.as_str(),
            "f" | "g" | "h" | "F" | "G" | "H" | "P" | "Q" | "W"
        ) || name.ends_with('\'');
        if is_function_name && self.peek() == Some(&Tok::LParen) {
            let args = self.call_args()?;
            return Ok(Expr::Apply(name, args));
        }
        Ok(match name.as_str() {
            "e" => Expr::Const(Constant::E),
            "i" => Expr::Const(Constant::I),
            _ => Expr::Sym(name),
        })
    }

    fn word(&mut self, w: String) -> PResult<Answer> {
        if let Some(f) = func_named(&w) {
            return self.function(f);
        }
        if w == "pi" {
            return Ok(Answer::Expr(Expr::Const(Constant::Pi)));
        }
        if w == "inf" || w == "infty" || w == "infinity" || w == "oo" {
            return Ok(Answer::Expr(Expr::Const(Constant::Infinity)));
        }
        // `xy` is x·y (Math-Verify's reading of letter runs).
        let mut factors: Vec<Expr> = w
            .chars()
            .map(|c| match c {
                'e' => Expr::Const(Constant::E),
                'i' => Expr::Const(Constant::I),
                c => Expr::Sym(c.to_string()),
            })
            .collect();
        Ok(Answer::Expr(if factors.len() == 1 {
            factors.remove(0)
        } else {
            Expr::Mul(factors)
        }))
    }

    fn text(&mut self, cmd: &str, content: &str) -> PResult<Answer> {
        let t = content.trim();
        if cmd == "operatorname" {
            if let Some(f) = func_named(t) {
                return self.function(f);
            }
            return Ok(Answer::Expr(Expr::Sym(t.to_string())));
        }
        if t.is_empty() {
            return invalid("empty text");
        }
        // Mathematics inside text (`\text{13}`, `\mathrm{e}`, `\text{(C)}`).
        if let Ok(a) = parse(t)
            && (!matches!(a, Answer::Expr(Expr::Mul(_))) || cmd.starts_with("math"))
        {
            return Ok(a);
        }
        Ok(Answer::Text(normalise_words(t)))
    }

    /// `(…)`, `[…]`, and mixed `[a, b)`, `(a, b]`: grouping, tuple or interval.
    fn bracketed(&mut self, open_square: bool) -> PResult<Answer> {
        let inner = self.list(&[Tok::RParen, Tok::RBrack])?;
        let close_square = match self.bump() {
            Some(Tok::RBrack) => true,
            Some(Tok::RParen) => false,
            other => return invalid(format!("unclosed bracket, found {other:?}")),
        };
        match inner {
            Answer::List(items) if items.len() == 2 && (open_square || close_square) => {
                let mut it = items.into_iter();
                let (lo, hi) = (
                    expr_of(it.next().unwrap_or(Answer::Text(String::new())))?,
                    expr_of(it.next().unwrap_or(Answer::Text(String::new())))?,
                );
                Ok(Answer::Interval {
                    lo,
                    hi,
                    lo_closed: open_square,
                    hi_closed: close_square,
                })
            }
            Answer::List(items) => Ok(Answer::Tuple(items)),
            single => Ok(single),
        }
    }

    fn function(&mut self, f: Func) -> PResult<Answer> {
        // `\log_2 x`, `\sin^2 x`.
        let mut base = None;
        if f == Func::Log && self.eat(&Tok::Op('_')) {
            base = Some(self.group_arg()?);
        }
        let mut power = None;
        if self.eat(&Tok::Op('^')) {
            power = Some(self.exponent()?);
        }
        let mut args = self.call_args()?;
        if let Some(b) = base {
            args.push(b);
        }
        let arity_ok = match f {
            Func::Gcd | Func::Lcm | Func::Min | Func::Max => !args.is_empty(),
            Func::Log | Func::Sqrt => args.len() == 1 || args.len() == 2,
            Func::Binom | Func::Mod => args.len() == 2,
            _ => args.len() == 1,
        };
        if !arity_ok {
            return invalid(format!("{f:?} with {} arguments", args.len()));
        }
        let call = Expr::Call(f, args);
        Ok(Answer::Expr(match power {
            // `\sin^{-1}` is the inverse function.
            Some(Expr::Neg(one)) if matches!(*one, Expr::Num(ref n) if n.value.is_one()) => {
                match call {
                    Expr::Call(Func::Sin, a) => Expr::Call(Func::Asin, a),
                    Expr::Call(Func::Cos, a) => Expr::Call(Func::Acos, a),
                    Expr::Call(Func::Tan, a) => Expr::Call(Func::Atan, a),
                    other => Expr::Pow(Box::new(other), Box::new(Expr::Neg(one))),
                }
            }
            Some(p) => Expr::Pow(Box::new(call), Box::new(p)),
            None => call,
        }))
    }

    fn delimited(&mut self, close: &[&str], f: Func) -> PResult<Answer> {
        let inner = self.list(&[])?;
        match self.bump() {
            Some(Tok::Cmd(c)) if close.contains(&c.as_str()) => {}
            other => return invalid(format!("expected {close:?}, found {other:?}")),
        }
        Ok(Answer::Expr(Expr::Call(f, vec![expr_of(inner)?])))
    }

    fn command(&mut self, c: &str) -> PResult<Answer> {
        if let Some(f) = func_named(c) {
            if matches!(f, Func::Binom) {
                let a = self.group_arg()?;
                let b = self.group_arg()?;
                return Ok(Answer::Expr(Expr::Call(Func::Binom, vec![a, b])));
            }
            if f == Func::Sqrt {
                let mut index = None;
                if self.eat(&Tok::LBrack) {
                    let a = self.list(&[Tok::RBrack])?;
                    self.expect(&Tok::RBrack)?;
                    index = Some(expr_of(a)?);
                }
                let x = self.group_arg()?;
                let mut args = vec![x];
                args.extend(index);
                return Ok(Answer::Expr(Expr::Call(Func::Sqrt, args)));
            }
            return self.function(f);
        }
        if greek(c) {
            return Ok(Answer::Expr(self.symbol(c.to_string())?));
        }
        Ok(match c {
            "frac" | "dfrac" | "tfrac" | "cfrac" => {
                let a = self.group_arg()?;
                let b = self.group_arg()?;
                Answer::Expr(Expr::Div(Box::new(a), Box::new(b)))
            }
            "pi" => Answer::Expr(Expr::Const(Constant::Pi)),
            "infty" | "infinity" => Answer::Expr(Expr::Const(Constant::Infinity)),
            "exponentialE" => Answer::Expr(Expr::Const(Constant::E)),
            "imath" => Answer::Expr(Expr::Const(Constant::I)),
            "emptyset" | "varnothing" => Answer::Set(vec![]),
            "lfloor" | "llcorner" => self.delimited(&["rfloor", "lrcorner"], Func::Floor)?,
            "lceil" | "ulcorner" => self.delimited(&["rceil", "urcorner"], Func::Ceil)?,
            "lvert" | "vert" | "|" => self.delimited(&["rvert", "vert", "|"], Func::Abs)?,
            "boxed" | "fbox" => Answer::Expr(self.group_arg()?),
            "{" => {
                if matches!(self.peek(), Some(Tok::Cmd(c)) if c == "}") {
                    self.pos += 1;
                    return Ok(Answer::Set(vec![]));
                }
                let inner = self.list(&[Tok::Cmd("}".into())])?;
                self.expect(&Tok::Cmd("}".into()))?;
                match inner {
                    Answer::List(items) => Answer::Set(items),
                    one => Answer::Set(vec![one]),
                }
            }
            "mathbb" => {
                let arg = self.bump();
                let name = match arg {
                    Some(Tok::LBrace) => {
                        let n = self.bump();
                        self.expect(&Tok::RBrace)?;
                        n
                    }
                    other => other,
                };
                match name {
                    Some(Tok::Letter('R')) => Answer::Interval {
                        lo: Expr::Neg(Box::new(Expr::Const(Constant::Infinity))),
                        hi: Expr::Const(Constant::Infinity),
                        lo_closed: false,
                        hi_closed: false,
                    },
                    other => return invalid(format!("unsupported set \\mathbb{{{other:?}}}")),
                }
            }
            "begin" => self.environment()?,
            "sum" => self.finite_sum()?,
            "overline" => {
                let e = self.group_arg()?;
                Answer::Expr(e)
            }
            "ddot" | "dot" | "hat" | "bar" | "vec" | "tilde" | "widehat" | "overrightarrow" => {
                let e = self.group_arg()?;
                match e {
                    Expr::Sym(s) => Answer::Expr(Expr::Sym(format!("{c}:{s}"))),
                    other => Answer::Expr(other),
                }
            }
            other => Answer::Expr(self.symbol(format!("\\{other}"))?),
        })
    }

    /// `\sum_{k=a}^{b} body` with integer bounds, expanded term by term (at most
    /// [`MAX_SUM_TERMS`] terms); symbolic or infinite bounds are not supported.
    fn finite_sum(&mut self) -> PResult<Answer> {
        let start = self.pos;
        match self.finite_sum_terms() {
            Ok(a) => Ok(a),
            Err(ParseError::TooDeep) => Err(ParseError::TooDeep),
            // Symbolic bounds (`\sum_{k=0}^{n-1}`): an opaque symbol, compared as written.
            Err(ParseError::Invalid(_)) => {
                self.pos = start;
                Ok(Answer::Expr(self.symbol("\\sum".into())?))
            }
        }
    }

    fn finite_sum_terms(&mut self) -> PResult<Answer> {
        self.expect(&Tok::Op('_'))?;
        self.expect(&Tok::LBrace)?;
        let var = match self.bump() {
            Some(Tok::Letter(c)) => c.to_string(),
            other => return invalid(format!("sum index {other:?}")),
        };
        self.expect(&Tok::Op('='))?;
        let lo = self.relation()?;
        self.expect(&Tok::RBrace)?;
        self.expect(&Tok::Op('^'))?;
        let hi = self.exponent()?;
        let body = expr_of(self.power()?)?;
        let bound = |a: &Expr| -> PResult<i64> {
            let mut b = super::eval::Budget::new(10_000);
            match super::eval::exact(a, &mut b) {
                Ok(Some(v)) if v.is_integer() => {
                    v.to_integer().try_into().map_err(|_| ParseError::TooDeep)
                }
                Err(_) => Err(ParseError::TooDeep),
                _ => invalid("sum bounds must be integers"),
            }
        };
        let (lo, hi) = (bound(&expr_of(lo)?)?, bound(&hi)?);
        if hi < lo {
            return Ok(Answer::Expr(int(0)));
        }
        if hi - lo >= MAX_SUM_TERMS {
            return Err(ParseError::TooDeep);
        }
        Ok(Answer::Expr(Expr::Add(
            (lo..=hi)
                .map(|k| substitute(&body, &var, &int(k)))
                .collect(),
        )))
    }

    /// `\begin{pmatrix} … \end{pmatrix}` (also bmatrix, vmatrix-free kinds, array).
    fn environment(&mut self) -> PResult<Answer> {
        self.expect(&Tok::LBrace)?;
        let name = match self.bump() {
            Some(Tok::Word(w)) => w,
            other => return invalid(format!("environment name {other:?}")),
        };
        self.expect(&Tok::RBrace)?;
        if !matches!(
            name.as_str(),
            "pmatrix" | "bmatrix" | "Bmatrix" | "matrix" | "smallmatrix" | "array"
        ) {
            return invalid(format!("unsupported environment {name}"));
        }
        if name == "array" && self.eat(&Tok::LBrace) {
            while !matches!(self.bump(), Some(Tok::RBrace) | None) {}
        }
        let mut rows: Vec<Vec<Expr>> = vec![vec![]];
        loop {
            if matches!(self.peek(), Some(Tok::Cmd(c)) if c == "end") {
                self.pos += 1;
                self.expect(&Tok::LBrace)?;
                let _ = self.bump();
                self.expect(&Tok::RBrace)?;
                break;
            }
            if self.at_end() {
                return invalid("unclosed environment");
            }
            if self.eat(&Tok::RowSep) {
                rows.push(vec![]);
                continue;
            }
            if self.eat(&Tok::Amp) {
                continue;
            }
            let cell = self.relation()?;
            let cell = expr_of(cell)?;
            if let Some(r) = rows.last_mut() {
                r.push(cell);
            }
        }
        if rows.last().is_some_and(Vec::is_empty) {
            rows.pop();
        }
        let width = rows.first().map_or(0, Vec::len);
        if rows.is_empty() || width == 0 || rows.iter().any(|r| r.len() != width) {
            return invalid("ragged matrix");
        }
        Ok(Answer::Matrix(rows))
    }
}

/// Most terms a `\sum` expands to.
pub const MAX_SUM_TERMS: i64 = 10_000;

/// `e` with every `Sym(name)` replaced by `value`.
fn substitute(e: &Expr, name: &str, value: &Expr) -> Expr {
    let s = |x: &Expr| substitute(x, name, value);
    match e {
        Expr::Sym(n) if n == name => value.clone(),
        Expr::Num(_) | Expr::Const(_) | Expr::Sym(_) => e.clone(),
        Expr::Neg(a) => Expr::Neg(Box::new(s(a))),
        Expr::Add(xs) => Expr::Add(xs.iter().map(s).collect()),
        Expr::Mul(xs) => Expr::Mul(xs.iter().map(s).collect()),
        Expr::Div(a, b) => Expr::Div(Box::new(s(a)), Box::new(s(b))),
        Expr::Pow(a, b) => Expr::Pow(Box::new(s(a)), Box::new(s(b))),
        Expr::Call(f, xs) => Expr::Call(*f, xs.iter().map(s).collect()),
        Expr::Apply(f, xs) => Expr::Apply(f.clone(), xs.iter().map(s).collect()),
    }
}

fn mul(a: Expr, b: Expr) -> Expr {
    match a {
        Expr::Mul(mut v) => {
            v.push(b);
            Expr::Mul(v)
        }
        a => Expr::Mul(vec![a, b]),
    }
}

fn mat_mul(a: Vec<Vec<Expr>>, b: Vec<Vec<Expr>>) -> PResult<Vec<Vec<Expr>>> {
    let (n, k, m) = (a.len(), b.len(), b.first().map_or(0, Vec::len));
    if a.iter().any(|r| r.len() != k) || n == 0 || m == 0 {
        return invalid("matrix shapes do not multiply");
    }
    Ok((0..n)
        .map(|i| {
            (0..m)
                .map(|j| {
                    Expr::Add(
                        (0..k)
                            .map(|t| Expr::Mul(vec![a[i][t].clone(), b[t][j].clone()]))
                            .collect(),
                    )
                })
                .collect()
        })
        .collect())
}

fn expr_of(a: Answer) -> PResult<Expr> {
    match a {
        Answer::Expr(e) => Ok(e),
        other => invalid(format!("expected a scalar, found {other:?}")),
    }
}

fn is_int_literal(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Num(Num {
            is_float: false,
            ..
        })
    )
}

fn is_unit_text(t: &str) -> bool {
    let t = t.trim().trim_start_matches('(').trim_end_matches(')');
    !t.is_empty()
        && t.split_whitespace().all(|w| {
            let w = w.trim_end_matches(['.', ',']).to_ascii_lowercase();
            UNIT_WORDS.contains(&w.as_str()) || w == "per" || w == "each"
        })
}

trait WordsCheck {
    fn is_err_or_words(&self) -> bool;
}

impl WordsCheck for PResult<Answer> {
    /// Text that is no number: words (`yuan`, `apples`) or nothing parseable.
    fn is_err_or_words(&self) -> bool {
        !matches!(self, Ok(Answer::Expr(Expr::Num(_))))
    }
}

/// Lower-case words without punctuation, single-spaced.
pub fn normalise_words(t: &str) -> String {
    t.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A repeating decimal `<int>.<frac>` followed by `rep` repeating (the lexer's `0.1r6` for
/// `0.1\overline{6}`), as the exact rational it denotes: 1/6. Not a float: it is exact.
fn repeating(fixed: &str, rep: &str) -> PResult<Expr> {
    let (int_part, frac_part) = fixed.split_once('.').unwrap_or((fixed, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if rep.is_empty() || !all_digits(int_part) || !all_digits(frac_part) || !all_digits(rep) {
        return invalid(format!("bad repeating decimal {fixed}({rep})"));
    }
    let ten = BigInt::from(10u8);
    let big = |t: &str| -> BigInt { t.parse().unwrap_or_default() };
    let frac_scale = num_traits::pow(ten.clone(), frac_part.len());
    // x = int.frac + rep / (10^|frac| · (10^|rep| − 1))
    let head = BigRational::new(big(&format!("{int_part}{frac_part}")), frac_scale.clone());
    let period = num_traits::pow(ten, rep.len()) - BigInt::one();
    let tail = BigRational::new(big(rep), frac_scale * period);
    Ok(num_expr(head + tail, false))
}

/// A numeric literal (`12`, `0.5`, `.5`, `1e20`, `2.5e-3`) as an exact rational.
pub fn number(s: &str) -> PResult<Expr> {
    // The common case, a plain integer of at most 18 digits, without the string work below.
    if (1..=18).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = s.parse::<u64>()
    {
        return Ok(num_expr(BigRational::from_integer(BigInt::from(n)), false));
    }
    let cleaned: String = s.chars().filter(|c| *c != ',').collect();
    let s = cleaned.as_str();
    if let Some((fixed, rep)) = s.split_once('r') {
        return repeating(fixed, rep);
    }
    let (mant, exp) = match s.split_once('e') {
        Some((m, e)) => (
            m,
            e.parse::<i64>()
                .map_err(|_| ParseError::Invalid(format!("bad exponent {e}")))?,
        ),
        None => (s, 0),
    };
    if exp.abs() > MAX_LITERAL_EXPONENT {
        return Err(ParseError::TooDeep);
    }
    let (int_part, frac_part) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = format!("{int_part}{frac_part}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return invalid(format!("bad number {s}"));
    }
    let n: BigInt = digits
        .parse()
        .map_err(|_| ParseError::Invalid(format!("bad number {s}")))?;
    let scale = exp - frac_part.len() as i64;
    let ten = BigInt::from(10u8);
    let value = if scale >= 0 {
        BigRational::from_integer(n * num_traits::pow(ten, scale as usize))
    } else {
        BigRational::new(n, num_traits::pow(ten, (-scale) as usize))
    };
    Ok(num_expr(value, s.contains('.') || s.contains('e')))
}
