//! A format string, split into literal text and operators.
//!
//! The grammar is Envoy's (`SubstitutionFormatParser::parse` in `substitution_formatter.cc`):
//! `%%` is a literal `%`; any other `%` must start an operator matching
//! `%([A-Z0-9_]+)(\((.*?)\))?(:([0-9]+))?%`, where the argument runs to the first `)` that the
//! rest of the operator can follow and never spans a newline. Everything else is copied as is,
//! without escaping.

use crate::error::FormatError;
use crate::operator::Operator;

/// A piece of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Text copied to the output (with `%%` already turned into `%`).
    Literal(String),
    /// An operator, replaced by its value.
    Operator(Operator),
}

/// Splits `format` into parts; positions in errors are byte offsets into `format`.
pub(crate) fn parse(format: &str) -> Result<Vec<Part>, FormatError> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut offset = 0;
    while let Some(at) = format[offset..].find('%') {
        let position = offset + at;
        literal.push_str(&format[offset..position]);
        let after = &format[position + 1..];
        if after.starts_with('%') {
            literal.push('%');
            offset = position + 2;
            continue;
        }
        let (operator, used) = operator(after, position)?;
        if !literal.is_empty() {
            parts.push(Part::Literal(std::mem::take(&mut literal)));
        }
        parts.push(Part::Operator(operator));
        offset = position + 1 + used;
    }
    literal.push_str(&format[offset..]);
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(parts)
}

/// The operator whose opening `%` is at `position` and whose text follows it in `after`, and
/// how many bytes of `after` it takes (its closing `%` included).
fn operator(after: &str, position: usize) -> Result<(Operator, usize), FormatError> {
    let malformed = || FormatError::Malformed { position };
    let bytes = after.as_bytes();
    let name_length = bytes
        .iter()
        .take_while(|&&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        .count();
    if name_length == 0 {
        return Err(malformed());
    }
    let name = &after[..name_length];
    let (argument, (length, end)) = if bytes.get(name_length) == Some(&b'(') {
        // Envoy's `\((.*?)\)` is lazy: the argument ends at the first `)` after which the
        // operator can end, so `%REQ(a)b)%` has the argument `a)b`. RE2's `.` stops at `\n`.
        let start = name_length + 1;
        let (close, tail) = bytes[start..]
            .iter()
            .take_while(|&&b| b != b'\n')
            .enumerate()
            .filter(|&(_, &b)| b == b')')
            .find_map(|(i, _)| end_of_operator(bytes, start + i + 1).map(|tail| (start + i, tail)))
            .ok_or_else(malformed)?;
        (Some(&after[start..close]), tail)
    } else {
        (
            None,
            end_of_operator(bytes, name_length).ok_or_else(malformed)?,
        )
    };
    let length = match length {
        Some(digits) => Some(digits.parse::<usize>().map_err(|_| malformed())?),
        None => None,
    };
    Ok((Operator::parse(name, argument, length, position)?, end))
}

/// Matches `(:([0-9]+))?%` at `at`: the length's digits, if any, and the offset after the `%`.
fn end_of_operator(bytes: &[u8], at: usize) -> Option<(Option<&str>, usize)> {
    if bytes.get(at) == Some(&b':') {
        let digits = bytes[at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let close = at + 1 + digits;
        if digits > 0 && bytes.get(close) == Some(&b'%') {
            // ASCII digits: valid UTF-8 on their own.
            let digits = std::str::from_utf8(&bytes[at + 1..close]).ok();
            return Some((digits, close + 1));
        }
    }
    (bytes.get(at) == Some(&b'%')).then_some((None, at + 1))
}
