//! Loading objects from a directory of YAML (multi-document) and JSON files, for the binary.

use std::path::Path;

use serde_json::Value;

/// Errors reading fixtures.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// A file could not be read.
    #[error("reading {0}: {1}")]
    Io(String, std::io::Error),
    /// A file did not parse.
    #[error("parsing {0}: {1}")]
    Parse(String, String),
}

/// Every object in `dir`'s `*.yaml`, `*.yml` and `*.json` files, in file-name order. A
/// `<Kind>List` (or `v1` `List`) contributes its items.
pub fn load_dir(dir: &Path) -> Result<Vec<Value>, FixtureError> {
    let rd = std::fs::read_dir(dir).map_err(|e| FixtureError::Io(dir.display().to_string(), e))?;
    let mut paths: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let name = p.display().to_string();
        let text = match ext.as_str() {
            "yaml" | "yml" | "json" => {
                std::fs::read_to_string(&p).map_err(|e| FixtureError::Io(name.clone(), e))?
            }
            _ => continue,
        };
        let docs: Vec<Value> = if ext == "json" {
            vec![
                serde_json::from_str(&text)
                    .map_err(|e| FixtureError::Parse(name.clone(), e.to_string()))?,
            ]
        } else {
            serde_saphyr::from_multiple(&text)
                .map_err(|e| FixtureError::Parse(name.clone(), e.to_string()))?
        };
        for d in docs.into_iter().filter(|d| !d.is_null()) {
            match d.get("items").and_then(Value::as_array) {
                Some(items) if d["kind"].as_str().is_some_and(|k| k.ends_with("List")) => {
                    out.extend(items.iter().cloned());
                }
                _ => out.push(d),
            }
        }
    }
    Ok(out)
}
