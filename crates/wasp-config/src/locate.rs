//! Field paths for serde-saphyr's deserialization errors.
//!
//! serde-saphyr reports where a deserialization error is (line, column, character offset) but
//! not in which field. The path is recovered by replaying the document through serde-saphyr's
//! own YAML event parser (`granit_parser`, re-exported by serde-saphyr, so positions agree) and
//! naming the node that starts at the error's offset.

use serde_saphyr::granit_parser::{Event, Parser};

/// Which node to name when several start at the same offset (a block mapping starts where its
/// first key does).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    /// The enclosing collection: for errors about a whole node (missing field, wrong type).
    Outermost,
    /// The innermost node, such as a mapping key: for unknown or duplicate fields.
    Innermost,
    /// The mapping the node is a key of (or the mapping starting there), at the mapping's own
    /// start: for missing fields, which serde-saphyr reports at the last key it read.
    EnclosingMapping,
}

/// The node found at an offset.
#[derive(Debug, PartialEq, Eq)]
pub struct Found {
    pub path: String,
    /// Where the node starts, 1-based (only differs from the offset asked for with
    /// [`Prefer::EnclosingMapping`]).
    pub line: u64,
    pub column: u64,
}

enum Frame {
    Map {
        path: String,
        start: (u64, u64),
        key: Option<String>,
        expecting_key: bool,
    },
    Seq {
        path: String,
        index: usize,
    },
}

/// The field path (`listeners[0].routes[1].match`) of the node at `offset` (in characters):
/// `""` for the document root, `None` if no node starts there.
pub fn path_at(text: &str, offset: u64, prefer: Prefer) -> Option<Found> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut found: Option<Found> = None;
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { break };
        let start = span.start.index() as u64;
        let end = span.end.index() as u64;
        if start > offset && found.is_some() {
            break;
        }
        let here = (span.start.line() as u64, span.start.col() as u64 + 1);
        let mut candidate = |stack: &[Frame], path: String, hit: bool| {
            if !hit || (prefer != Prefer::Innermost && found.is_some()) {
                return;
            }
            let (path, (line, column)) = match (prefer, stack.last()) {
                (
                    Prefer::EnclosingMapping,
                    Some(Frame::Map {
                        path,
                        start,
                        expecting_key: true,
                        ..
                    }),
                ) => (path.clone(), *start),
                _ => (path, here),
            };
            found = Some(Found { path, line, column });
        };
        match event {
            Event::Scalar(value, ..) => {
                let hit = start == offset || (start < offset && offset < end);
                candidate(&stack, node_path(&stack, Some(&value)), hit);
                finish_node(&mut stack, Some(&value));
            }
            Event::Alias(_) => {
                candidate(&stack, node_path(&stack, None), start == offset);
                finish_node(&mut stack, None);
            }
            Event::MappingStart(..) => {
                let path = node_path(&stack, None);
                // A block mapping starts where its first key does: being first, the mapping
                // itself wins unless the innermost node is wanted.
                candidate(&stack, path.clone(), start == offset);
                stack.push(Frame::Map {
                    path,
                    start: here,
                    key: None,
                    expecting_key: true,
                });
            }
            Event::SequenceStart(..) => {
                let path = node_path(&stack, None);
                candidate(&stack, path.clone(), start == offset);
                stack.push(Frame::Seq { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                finish_node(&mut stack, None);
            }
            _ => {}
        }
    }
    found
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// The path of the node that starts now; `scalar` is its text if it is a scalar.
fn node_path(stack: &[Frame], scalar: Option<&str>) -> String {
    match stack.last() {
        None => String::new(),
        Some(Frame::Map {
            path,
            expecting_key: true,
            ..
        }) => join(path, scalar.unwrap_or("?")),
        Some(Frame::Map { path, key, .. }) => join(path, key.as_deref().unwrap_or("?")),
        Some(Frame::Seq { path, index }) => format!("{path}[{index}]"),
    }
}

/// A node ended: advance the enclosing collection.
fn finish_node(stack: &mut [Frame], scalar: Option<&str>) {
    match stack.last_mut() {
        Some(Frame::Map {
            key, expecting_key, ..
        }) => {
            if *expecting_key {
                *key = Some(scalar.unwrap_or("?").to_string());
            }
            *expecting_key = !*expecting_key;
        }
        Some(Frame::Seq { index, .. }) => *index += 1,
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "a:\n  - name: x\n    port: 5\n  - { name: y, m: [1, {k: v}] }\nb: 1\n";

    fn offset_of(needle: &str, nth: usize) -> u64 {
        let byte = DOC.match_indices(needle).nth(nth).unwrap().0;
        DOC[..byte].chars().count() as u64
    }

    #[test]
    fn names_nodes() {
        use Prefer::*;
        let at = |needle, nth, prefer| {
            path_at(DOC, offset_of(needle, nth), prefer).map(|found| found.path)
        };
        assert_eq!(at("a", 0, Outermost).as_deref(), Some(""));
        assert_eq!(at("a", 0, Innermost).as_deref(), Some("a"));
        assert_eq!(at("name", 0, Outermost).as_deref(), Some("a[0]"));
        assert_eq!(at("name", 0, Innermost).as_deref(), Some("a[0].name"));
        assert_eq!(at("5", 0, Outermost).as_deref(), Some("a[0].port"));
        assert_eq!(at("port", 0, Outermost).as_deref(), Some("a[0].port"));
        assert_eq!(at("{ name", 0, Outermost).as_deref(), Some("a[1]"));
        assert_eq!(at("y", 0, Outermost).as_deref(), Some("a[1].name"));
        assert_eq!(at("1,", 0, Outermost).as_deref(), Some("a[1].m[0]"));
        assert_eq!(at("v}", 0, Outermost).as_deref(), Some("a[1].m[1].k"));
        assert_eq!(at("b", 0, Innermost).as_deref(), Some("b"));
        assert_eq!(at("port", 0, EnclosingMapping).as_deref(), Some("a[0]"));
        assert_eq!(at("name", 0, EnclosingMapping).as_deref(), Some("a[0]"));
        assert_eq!(at("y", 0, EnclosingMapping).as_deref(), Some("a[1].name"));
        assert_eq!(
            path_at(DOC, offset_of("port", 0), EnclosingMapping),
            Some(Found {
                path: "a[0]".into(),
                line: 2,
                column: 5
            })
        );
        assert_eq!(path_at(DOC, 10_000, Outermost), None);
        // Broken YAML: nodes up to the syntax error are still named.
        assert_eq!(at_text("a: [", 3), Some("a".to_string()));
    }

    fn at_text(text: &str, offset: u64) -> Option<String> {
        path_at(text, offset, Prefer::Outermost).map(|found| found.path)
    }
}
