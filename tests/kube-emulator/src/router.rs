//! Request paths and query strings: which kind, namespace, object and subresource a path names,
//! following the layout in the API concepts page (`/api/v1/...` for the core group,
//! `/apis/GROUP/VERSION/...` otherwise; `namespaces/NS/RESOURCE[/NAME[/SUBRESOURCE]]`, and
//! `RESOURCE` alone for a collection across all namespaces).

use std::collections::HashMap;

use crate::kinds;

/// What a resource path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A collection: one namespace's, or (None) all namespaces'.
    Collection {
        /// Index in [`kinds::KINDS`].
        kind: usize,
        /// The namespace, or None for all namespaces.
        namespace: Option<String>,
    },
    /// One object, or one of its subresources.
    Object {
        /// Index in [`kinds::KINDS`].
        kind: usize,
        /// The namespace.
        namespace: String,
        /// The object name.
        name: String,
        /// `status`, when the path ends in `/status`.
        subresource: Option<String>,
    },
}

/// Parses a resource path; None if it names no registered resource.
pub fn parse(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let found = |plural: &str| kinds::find(group, version, plural);
    match rest {
        ["namespaces", ns, plural] => Some(Target::Collection {
            kind: found(plural)?,
            namespace: Some(ns.to_string()),
        }),
        ["namespaces", ns, plural, name] => Some(Target::Object {
            kind: found(plural)?,
            namespace: ns.to_string(),
            name: name.to_string(),
            subresource: None,
        }),
        ["namespaces", ns, plural, name, sub] => Some(Target::Object {
            kind: found(plural)?,
            namespace: ns.to_string(),
            name: name.to_string(),
            subresource: Some(sub.to_string()),
        }),
        [plural] => Some(Target::Collection {
            kind: found(plural)?,
            namespace: None,
        }),
        _ => None,
    }
}

/// Percent-decodes a query component (`+` is a space, as in form encoding).
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(())
                {
                    Ok(x) => {
                        out.push(x);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query parameters (last one wins).
pub fn query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// A boolean query parameter as the apiserver's decoder reads it (`1`, `true`).
pub fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name)
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True" | "TRUE" | "t" | "T"))
}
