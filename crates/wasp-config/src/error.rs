//! The one error type: where (file, line, column, field path) and what.

use std::path::{Path, PathBuf};

use serde_saphyr::Location;

/// A configuration error.
///
/// Displays as `FILE:LINE:COLUMN: [RESOURCE: ]FIELD.PATH: message` (the resource only for
/// WasmPlugin resource files: `WasmPlugin istio-system/auth`), for example
/// `wasp.yaml:12:9: listeners[0].routes[1].match: exactly one of prefix, path or regex is
/// required`. Parts that are unknown are left out: an error about the file as a whole has no
/// line, an error in the YAML syntax has no field path, and an error in the `quick` command line
/// has no file (its "path" is the option, such as `--plugin`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    file: Option<PathBuf>,
    // u32 keeps the error small (clippy's result_large_err); serde-saphyr counts in u32 too.
    line: Option<u32>,
    column: Option<u32>,
    /// The Kubernetes resource the error is in (`WasmPlugin istio-system/auth`), for errors in
    /// WasmPlugin resource files.
    resource: Option<String>,
    path: String,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(
        file: Option<&Path>,
        location: Option<&Location>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        // Spans lost to serde buffering come back as line 0: treat them as unknown.
        let location = location.filter(|l| l.line() > 0);
        ConfigError {
            file: file.map(Path::to_path_buf),
            line: location.map(|l| narrow(l.line())),
            column: location.map(|l| narrow(l.column())).filter(|c| *c > 0),
            resource: None,
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn with_position(
        file: Option<&Path>,
        line: u64,
        column: u64,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.map(Path::to_path_buf),
            line: Some(narrow(line)),
            column: Some(narrow(column)),
            resource: None,
            path: path.into(),
            message: message.into(),
        }
    }

    /// Names the resource the error is in (`WasmPlugin istio-system/auth`).
    pub(crate) fn in_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Puts `prefix` (such as `items[2]`) in front of the field path.
    pub(crate) fn under(mut self, prefix: &str) -> Self {
        if !prefix.is_empty() {
            self.path = if self.path.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}.{}", self.path)
            };
        }
        self
    }

    /// The configuration file the error is in (`None` for the `quick` command line).
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// 1-based line in the file, when the error comes from a place in the YAML.
    pub fn line(&self) -> Option<u64> {
        self.line.map(u64::from)
    }

    /// 1-based column (in characters), when known.
    pub fn column(&self) -> Option<u64> {
        self.column.map(u64::from)
    }

    /// The resource the error is in, such as `WasmPlugin istio-system/auth` (errors in
    /// WasmPlugin resource files only).
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// The field path, such as `listeners[0].routes[1].match`; empty for the document itself.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if let Some(file) = &self.file {
            out.push_str(&file.display().to_string());
            if let Some(line) = self.line {
                out.push_str(&format!(":{line}"));
                if let Some(column) = self.column {
                    out.push_str(&format!(":{column}"));
                }
            }
            out.push_str(": ");
        }
        if let Some(resource) = &self.resource {
            out.push_str(resource);
            out.push_str(": ");
        }
        if !self.path.is_empty() {
            out.push_str(&self.path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

fn narrow(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Builds errors for one configuration file.
pub(crate) struct Errors<'a> {
    pub file: Option<&'a Path>,
}

impl Errors<'_> {
    pub fn at(
        &self,
        location: &Location,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(self.file, Some(location), path, message)
    }

    pub fn at_opt(
        &self,
        location: Option<&Location>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(self.file, location, path, message)
    }
}

/// The name of `candidates` that `written` is most likely a misspelling of: the same but for
/// case, `_` and `-` (`match_labels` for `matchLabels`), or at most two edits away (one for
/// short names). `None` when nothing is that close.
pub(crate) fn nearest<'a>(written: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let fold = |s: &str| -> Vec<char> {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let written = fold(written);
    let limit = if written.len() <= 4 { 1 } else { 2 };
    candidates
        .iter()
        .map(|c| (edit_distance(&written, &fold(c)), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn near_spellings() {
        let fields = ["matchLabels", "pluginConfig", "url", "sha256"];
        assert_eq!(nearest("match_labels", &fields), Some("matchLabels"));
        assert_eq!(nearest("pluginconfig", &fields), Some("pluginConfig"));
        assert_eq!(nearest("plugnConfig", &fields), Some("pluginConfig"));
        assert_eq!(nearest("uri", &fields), Some("url"));
        assert_eq!(nearest("labels", &fields), None);
        assert_eq!(nearest("somethingElse", &fields), None);
    }
}
