//! `json_format`: a JSON object whose string values may hold operators.
//!
//! As Envoy's `JsonFormatterImpl` (`substitution_formatter.cc`) does it:
//! - keys are written sorted (byte order), at every level, whatever the configured order:
//!   Envoy reads the format into a protobuf `Struct`, whose map has no order, and sorts it so
//!   the output is deterministic (its `sort_properties` option is deprecated for that reason);
//! - a string without `%` is a constant; numbers, booleans, `null`, nested objects and arrays
//!   are copied as configured;
//! - a string that is exactly one operator keeps the operator's type: a number for
//!   `%RESPONSE_CODE%`, `%BYTES_SENT%`, `%DURATION%`, ports…, a string otherwise, `null` when
//!   the value is missing;
//! - a string mixing text and operators is a string, with `-` for a missing value;
//! - the line is one compact object followed by `\n`.
//!
//! Everything but the operators' values is serialized once, when the format is parsed.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::entry::Entry;
use crate::error::FormatError;
use crate::parse::{self, Part};
use crate::value::Value as Rendered;

/// A parsed JSON format: serialized JSON text with holes for the templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonFormat {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// JSON text, written as is.
    Raw(String),
    /// A string value with operators (never empty).
    Template(Vec<Part>),
}

impl JsonFormat {
    pub(crate) fn parse(format: &Map<String, Value>) -> Result<JsonFormat, FormatError> {
        let mut builder = Builder {
            pieces: Vec::new(),
            raw: String::new(),
        };
        builder.object(format, "")?;
        let Builder { mut pieces, raw } = builder;
        pieces.push(Piece::Raw(raw));
        Ok(JsonFormat { pieces })
    }

    /// Appends the JSON line for `entry`, newline included.
    pub(crate) fn render(&self, entry: &Entry<'_>, out: &mut String) {
        for piece in &self.pieces {
            match piece {
                Piece::Raw(raw) => out.push_str(raw),
                Piece::Template(parts) => match parts.as_slice() {
                    [Part::Operator(operator)] => match operator.value(entry) {
                        Rendered::Missing => out.push_str("null"),
                        Rendered::Text(text) => write_string(out, &text),
                        // Writing to a String cannot fail.
                        Rendered::Number(number) => {
                            let _ = write!(out, "{number}");
                        }
                    },
                    parts => {
                        out.push('"');
                        for part in parts {
                            match part {
                                Part::Literal(text) => write_escaped(out, text),
                                Part::Operator(operator) => match operator.value(entry) {
                                    Rendered::Text(text) => write_escaped(out, &text),
                                    // `-` and digits need no escaping.
                                    value => value.write_text(out),
                                },
                            }
                        }
                        out.push('"');
                    }
                },
            }
        }
        out.push('\n');
    }
}

struct Builder {
    pieces: Vec<Piece>,
    /// JSON text since the last template.
    raw: String,
}

impl Builder {
    fn object(&mut self, object: &Map<String, Value>, path: &str) -> Result<(), FormatError> {
        // Sorted here whatever order serde_json keeps (it depends on its preserve_order
        // feature, which another crate of the build may turn on).
        let mut fields: Vec<_> = object.iter().collect();
        fields.sort_unstable_by_key(|(key, _)| *key);
        self.raw.push('{');
        for (i, (key, value)) in fields.into_iter().enumerate() {
            if i > 0 {
                self.raw.push(',');
            }
            write_string(&mut self.raw, key);
            self.raw.push(':');
            self.value(value, &join(path, key))?;
        }
        self.raw.push('}');
        Ok(())
    }

    fn value(&mut self, value: &Value, path: &str) -> Result<(), FormatError> {
        match value {
            Value::String(template) if template.contains('%') => {
                let parts = parse::parse(template).map_err(|error| FormatError::Json {
                    path: path.to_owned(),
                    error: Box::new(error),
                })?;
                self.pieces.push(Piece::Raw(std::mem::take(&mut self.raw)));
                self.pieces.push(Piece::Template(parts));
            }
            Value::String(constant) => write_string(&mut self.raw, constant),
            Value::Object(object) => self.object(object, path)?,
            Value::Array(values) => {
                self.raw.push('[');
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        self.raw.push(',');
                    }
                    self.value(value, &join(path, &i.to_string()))?;
                }
                self.raw.push(']');
            }
            // Numbers, booleans and null: serde_json's compact text.
            scalar => self.raw.push_str(&scalar.to_string()),
        }
        Ok(())
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends `text` as a quoted JSON string.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    write_escaped(out, text);
    out.push('"');
}

/// Appends `text` escaped for a JSON string, byte for byte as serde_json escapes it (`"`, `\`
/// and control characters; the rest, non-ASCII included, as is). Done here rather than through
/// serde_json so that a line is written into one buffer without a string per value.
fn write_escaped(out: &mut String, text: &str) {
    let mut start = 0;
    for (i, c) in text.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\x08' => "\\b",
            '\x0c' => "\\f",
            c if c < ' ' => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escape.is_empty() {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push_str(escape);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&text[start..]);
}
