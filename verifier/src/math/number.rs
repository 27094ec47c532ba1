//! Exact parsing of plain numbers and simple fractions into [`BigRational`].
//!
//! Accepted forms (after removing whitespace): an optional sign, then a decimal
//! (`12`, `-3.5`, `.5`, `1,234,567.25` with strict 3-digit thousands groups), a quotient of
//! two decimals (`3/4`), or `\frac{a}{b}` / `\dfrac{a}{b}` / `\tfrac{a}{b}` of two decimals.
//! Everything else is [`NumberError::Invalid`]. Inputs with more than [`MAX_DIGITS`] digits are
//! [`NumberError::TooLarge`], which bounds the bignum work per call.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};

/// Most digits a number may have before it is refused as too large.
pub const MAX_DIGITS: usize = 1000;

/// Why a string is not a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Not one of the accepted forms.
    #[error("not a plain number or simple fraction")]
    Invalid,
    /// More than [`MAX_DIGITS`] digits.
    #[error("number has more than {MAX_DIGITS} digits")]
    TooLarge,
}

/// Parses `s` as an exact rational.
pub fn parse(s: &str) -> Result<BigRational, NumberError> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.bytes().filter(u8::is_ascii_digit).count() > MAX_DIGITS {
        return Err(NumberError::TooLarge);
    }
    let (negative, body) = split_sign(&compact);
    let value = if let Some(rest) = strip_frac_command(body) {
        let (num, after) = braced(rest)?;
        let (den, after) = braced(after)?;
        if !after.is_empty() {
            return Err(NumberError::Invalid);
        }
        quotient(signed_decimal(num)?, signed_decimal(den)?)?
    } else if let Some((num, den)) = body.split_once('/') {
        quotient(decimal(num)?, signed_decimal(den)?)?
    } else {
        decimal(body)?
    };
    Ok(if negative { -value } else { value })
}

fn split_sign(s: &str) -> (bool, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

fn strip_frac_command(s: &str) -> Option<&str> {
    ["\\frac", "\\dfrac", "\\tfrac"]
        .iter()
        .find_map(|cmd| s.strip_prefix(cmd))
}

/// `{content}rest` → `(content, rest)`, no nesting allowed.
fn braced(s: &str) -> Result<(&str, &str), NumberError> {
    let inner = s.strip_prefix('{').ok_or(NumberError::Invalid)?;
    let close = inner.find('}').ok_or(NumberError::Invalid)?;
    Ok((&inner[..close], &inner[close + 1..]))
}

fn quotient(num: BigRational, den: BigRational) -> Result<BigRational, NumberError> {
    if den.is_zero() {
        Err(NumberError::Invalid)
    } else {
        Ok(num / den)
    }
}

fn signed_decimal(s: &str) -> Result<BigRational, NumberError> {
    let (negative, body) = split_sign(s);
    let v = decimal(body)?;
    Ok(if negative { -v } else { v })
}

/// Unsigned decimal with optional strict thousands groups and fractional part.
fn decimal(s: &str) -> Result<BigRational, NumberError> {
    let (int_part, frac_part) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let int_digits = strip_thousands(int_part)?;
    let frac_digits = frac_part.unwrap_or("");
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(NumberError::Invalid);
    }
    if !frac_digits.bytes().all(|b| b.is_ascii_digit()) || frac_part.is_some_and(str::is_empty) {
        return Err(NumberError::Invalid);
    }
    let all_digits = format!("{int_digits}{frac_digits}");
    let numer: BigInt = all_digits.parse().map_err(|_| NumberError::Invalid)?;
    let exp = u32::try_from(frac_digits.len()).map_err(|_| NumberError::TooLarge)?;
    let denom = num_traits::pow(BigInt::from(10u8), exp as usize);
    Ok(BigRational::new(
        numer,
        if exp == 0 { BigInt::one() } else { denom },
    ))
}

/// `1,234,567` → `1234567`; plain digit runs pass through; malformed groups are invalid.
fn strip_thousands(s: &str) -> Result<String, NumberError> {
    if !s.bytes().all(|b| b.is_ascii_digit() || b == b',') {
        return Err(NumberError::Invalid);
    }
    if !s.contains(',') {
        return Ok(s.to_string());
    }
    let mut groups = s.split(',');
    let first = groups.next().unwrap_or("");
    if first.is_empty() || first.len() > 3 {
        return Err(NumberError::Invalid);
    }
    let mut out = first.to_string();
    for g in groups {
        if g.len() != 3 {
            return Err(NumberError::Invalid);
        }
        out.push_str(g);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> BigRational {
        BigRational::new(n.into(), d.into())
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(parse("12"), Ok(q(12, 1)));
        assert_eq!(parse("-3.50"), Ok(q(-7, 2)));
        assert_eq!(parse(".5"), Ok(q(1, 2)));
        assert_eq!(parse("+0.25"), Ok(q(1, 4)));
        assert_eq!(parse("1,234,567"), Ok(q(1_234_567, 1)));
        assert_eq!(parse("3/4"), Ok(q(3, 4)));
        assert_eq!(parse(r"\frac{6}{-8}"), Ok(q(-3, 4)));
        assert_eq!(parse(r"-\dfrac{1}{3}"), Ok(q(-1, 3)));
        assert_eq!(parse(r"\tfrac { 1 } { 3 }"), Ok(q(1, 3)));
        assert_eq!(parse("0.1"), parse(r"\frac{1}{10}"));
    }

    #[test]
    fn rejected_forms() {
        for s in [
            "",
            "-",
            ".",
            "1.",
            "1,23",
            "12,3456",
            "1/0",
            r"\frac{1}{0}",
            "x",
            "1e5",
            "--1",
            r"\frac{1}{2}3",
            "½",
        ] {
            assert_eq!(parse(s), Err(NumberError::Invalid), "{s:?}");
        }
        assert_eq!(
            parse(&"1".repeat(MAX_DIGITS + 1)),
            Err(NumberError::TooLarge)
        );
    }

    #[test]
    fn exactness_beats_floats() {
        // 2^-99 vs 2^-98 differ; so do neighbouring 20-digit integers.
        assert_ne!(parse("12345678901234567890"), parse("12345678901234567891"));
        assert_ne!(parse("0.0000000000000000000001"), parse("0"));
    }
}
