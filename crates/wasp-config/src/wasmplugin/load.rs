//! Reading resource files and folders: one document, several `---` documents, `kind: List`.
//!
//! Each resource is deserialized on its own, from a copy of the file in which everything else
//! is blanked out (replaced by spaces, line breaks kept): lines, columns and character offsets
//! stay those of the file, so serde-saphyr's locations and the field-path recovery of
//! `locate.rs` work unchanged, and a document's kind can be looked at before choosing the type to
//! read it as.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde_saphyr::granit_parser::{Event, Parser};

use super::resource::{
    Checker, Head, RawResource, RawSecret, RawTrafficExtensionSpec, RawWasmPluginSpec,
};
use super::{Resource, ResourceSet, SecretDoc, Source};
use crate::error::ConfigError;
use crate::yaml_error;

type Result<T> = std::result::Result<T, ConfigError>;

/// Reads WasmPlugin / TrafficExtension resources from files and folders.
///
/// A folder contributes its `*.yaml` and `*.yml` files, sorted by name, not recursively; names
/// starting with `.` are skipped (Kubernetes ConfigMap and Secret volumes keep their data in
/// `..data` folders). A file named explicitly is read whatever its name.
///
/// Every document must be a WasmPlugin or TrafficExtension (`extensions.istio.io/v1alpha1`), a
/// Secret (kept for `imagePullSecret`, otherwise ignored), or a `kind: List` of those; empty
/// documents are skipped. Anything else is an error, as is an invalid resource or a second
/// resource with the same namespace and name: the first error stops the loading.
pub fn load_resources(paths: &[PathBuf]) -> Result<ResourceSet> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let read = |file: &Path| {
        std::fs::read_to_string(file).map_err(|e| {
            ConfigError::new(Some(file), None, "", format!("cannot read the file: {e}"))
        })
    };
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| ConfigError::new(Some(path), None, "", format!("cannot read: {e}")))?;
        if !meta.is_dir() {
            files.push((path.clone(), read(path)?));
            continue;
        }
        let entries = std::fs::read_dir(path).map_err(|e| {
            ConfigError::new(Some(path), None, "", format!("cannot read the folder: {e}"))
        })?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| {
                ConfigError::new(Some(path), None, "", format!("cannot read the folder: {e}"))
            })?;
            let file = entry.path();
            if is_resource_file(&file) && file.is_file() {
                found.push(file);
            }
        }
        found.sort();
        for file in found {
            let text = read(&file)?;
            files.push((file, text));
        }
    }
    parse_resources(&files)
}

/// Whether a folder's entry holds resources: a `*.yaml` or `*.yml` file that is not hidden
/// (Kubernetes' ConfigMap mounts keep their data behind hidden `..data` links).
pub(crate) fn is_resource_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let extension = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    !name.starts_with('.') && matches!(extension.as_deref(), Some("yaml" | "yml"))
}

/// As [`load_resources`], with the files already read: `(name used in errors, text)`.
pub fn parse_resources(files: &[(PathBuf, String)]) -> Result<ResourceSet> {
    let mut reader = Reader::default();
    for (file, text) in files {
        for node in nodes(text, file)? {
            let blanked = blank(text, node.start, node.end);
            let head: Option<Head> =
                serde_saphyr::from_str(&blanked).map_err(|e| yaml_error(&e, &blanked, file))?;
            let Some(head) = head else {
                continue; // an empty document
            };
            if head.kind.as_ref().map(|k| k.value.text()).as_deref() == Some("List") {
                // `items` must be a list (it may be absent).
                #[derive(serde::Deserialize)]
                struct List {
                    #[allow(dead_code)]
                    items: Option<Vec<IgnoredAny>>,
                }
                serde_saphyr::from_str::<List>(&blanked)
                    .map_err(|e| yaml_error(&e, &blanked, file))?;
                for (i, item) in node.items.iter().enumerate() {
                    let blanked = blank(text, item.start, item.end);
                    let head: Option<Head> = serde_saphyr::from_str(&blanked).map_err(|e| {
                        yaml_error(&e, &blanked, file).under(&format!("items[{i}]"))
                    })?;
                    if let Some(head) = head {
                        reader.object(file, &blanked, head, item, &format!("items[{i}]"))?;
                    }
                }
            } else {
                reader.object(file, &blanked, head, &node, "")?;
            }
        }
    }
    Ok(reader.set)
}

#[derive(Default)]
struct Reader {
    set: ResourceSet,
    /// `namespace/name` → index in `set.resources`.
    seen: HashMap<String, usize>,
}

impl Reader {
    /// One object (a document, or an item of a List): `text` is the file with everything else
    /// blanked out.
    fn object(
        &mut self,
        file: &Path,
        text: &str,
        head: Head,
        node: &Node,
        prefix: &str,
    ) -> Result<()> {
        let kind = head.kind.as_ref().map(|k| k.value.text());
        let name = head
            .metadata
            .as_ref()
            .and_then(|m| m.name.as_ref())
            .map(super::resource::Scalar::text);
        let namespace = head
            .metadata
            .as_ref()
            .and_then(|m| m.namespace.as_ref())
            .map_or_else(|| "default".to_string(), super::resource::Scalar::text);
        let label = format!(
            "{} {namespace}/{}",
            kind.as_deref().unwrap_or("resource"),
            name.as_deref().unwrap_or("(no name)")
        );
        let at_start = |message: String| {
            ConfigError::with_position(Some(file), node.line, node.column, prefix, message)
        };
        let checker = Checker {
            file,
            prefix: prefix.to_string(),
            label: label.clone(),
            start: (node.line, node.column),
            warnings: Default::default(),
        };
        let deser_error =
            |e: serde_saphyr::Error| yaml_error(&e, text, file).under(prefix).in_resource(&label);
        let resource = match kind.as_deref() {
            Some("WasmPlugin") => {
                let raw: RawResource<RawWasmPluginSpec> =
                    serde_saphyr::from_str(text).map_err(deser_error)?;
                checker.wasm_plugin(raw)?
            }
            Some("TrafficExtension") => {
                let raw: RawResource<RawTrafficExtensionSpec> =
                    serde_saphyr::from_str(text).map_err(deser_error)?;
                checker.traffic_extension(raw)?
            }
            Some("EnvoyFilter") => {
                let raw: super::envoy_filter::RawEnvoyFilter =
                    serde_saphyr::from_str(text).map_err(deser_error)?;
                let (resources, routes) = checker.envoy_filter(raw)?;
                for resource in resources {
                    self.add(resource, node)?;
                }
                self.set.route_patches.extend(routes);
                self.set.warnings.extend(checker.warnings.take());
                return Ok(());
            }
            Some("Secret") => {
                if let Some(name) = name {
                    self.secret(text, namespace, name, file, node);
                }
                return Ok(());
            }
            Some(other) => {
                let kind_at = head.kind.as_ref().map(|k| k.referenced);
                let path = if prefix.is_empty() {
                    "kind".to_string()
                } else {
                    format!("{prefix}.kind")
                };
                return Err(ConfigError::new(
                    Some(file),
                    kind_at.as_ref(),
                    path,
                    format!(
                        "unsupported kind `{other}`: plugin sources hold WasmPlugin and \
                         TrafficExtension resources (extensions.istio.io/v1alpha1), EnvoyFilters \
                         that insert Lua filters, Secrets, and Lists of them"
                    ),
                ));
            }
            None => {
                return Err(at_start(
                    "not a Kubernetes resource: `kind` is missing".to_string(),
                ));
            }
        };
        self.set.warnings.extend(checker.warnings.take());
        self.add(resource, node)
    }

    fn add(&mut self, resource: Resource, node: &Node) -> Result<()> {
        let key = resource.key();
        if let Some(&first) = self.seen.get(&key) {
            let other = &self.set.resources[first];
            let message = if other.kind == resource.kind {
                format!(
                    "duplicate {} {key} (also at {}:{})",
                    resource.kind,
                    other.source.file.display(),
                    other.source.line
                )
            } else {
                format!(
                    "{} {key} has the namespace and name of {} {key} ({}:{}); wasp names \
                     plugins namespace.name, so they must differ",
                    resource.kind,
                    other.kind,
                    other.source.file.display(),
                    other.source.line
                )
            };
            return Err(ConfigError::with_position(
                Some(&resource.source.file),
                node.line,
                node.column,
                "metadata.name",
                message,
            )
            .in_resource(format!("{} {key}", resource.kind)));
        }
        self.seen.insert(key, self.set.resources.len());
        self.set.resources.push(resource);
        Ok(())
    }

    /// A Secret: kept whatever it holds; whether it can serve as a pull secret is decided when
    /// a plugin names it.
    fn secret(&mut self, text: &str, namespace: String, name: String, file: &Path, node: &Node) {
        let dockerconfigjson = match serde_saphyr::from_str::<RawSecret>(text) {
            Err(e) => Err(format!(
                "cannot be read: {}",
                e.to_string().replace('\n', " ")
            )),
            Ok(secret) => dockerconfigjson(&secret),
        };
        self.set.secrets.push(SecretDoc {
            namespace,
            name,
            dockerconfigjson,
            source: Source {
                file: file.to_path_buf(),
                line: node.line,
            },
        });
    }
}

/// The `.dockerconfigjson` of a `kubernetes.io/dockerconfigjson` Secret (from `data`, base64,
/// or `stringData`, as written).
fn dockerconfigjson(secret: &RawSecret) -> std::result::Result<Vec<u8>, String> {
    const TYPE: &str = "kubernetes.io/dockerconfigjson";
    const KEY: &str = ".dockerconfigjson";
    match secret.secret_type.as_deref() {
        Some(TYPE) => {}
        Some(other) => {
            return Err(format!(
                "is of type {other}; a pull secret must be of type {TYPE}"
            ));
        }
        None => return Err(format!("has no type; a pull secret must be of type {TYPE}")),
    }
    if let Some(text) = secret.string_data.as_ref().and_then(|d| d.get(KEY)) {
        return Ok(text.clone().into_bytes());
    }
    match secret.data.as_ref().and_then(|d| d.get(KEY)) {
        Some(encoded) => {
            base64_decode(encoded).ok_or_else(|| format!("has invalid base64 in data.{KEY}"))
        }
        None => Err(format!("has no {KEY} key")),
    }
}

/// Standard base64, padding optional, whitespace ignored (as Kubernetes writes long values).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    LENIENT.decode(compact).ok()
}

/// A node of the YAML: its character range and where it starts; for a document's root, the
/// items of its top-level `items` list.
#[derive(Debug, Default)]
struct Node {
    start: usize,
    end: usize,
    line: u64,
    column: u64,
    items: Vec<Node>,
}

enum Frame {
    Map {
        expecting_key: bool,
        key: Option<String>,
    },
    Seq {
        items: bool,
    },
}

/// The root node of every document of `text`, with its `items` (for Lists).
fn nodes(text: &str, file: &Path) -> Result<Vec<Node>> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut docs: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut item: Option<Node> = None;
    for event in Parser::new_from_str(text) {
        let (event, span) = match event {
            Ok(found) => found,
            Err(scan) => return Err(syntax_error(text, file, &scan.to_string())),
        };
        let (start, end) = (span.start.index(), span.end.index());
        let here = Node {
            start,
            end,
            line: span.start.line() as u64,
            column: span.start.col() as u64 + 1,
            items: Vec::new(),
        };
        let in_items = |stack: &[Frame]| {
            stack.len() == 2 && matches!(stack.last(), Some(Frame::Seq { items: true }))
        };
        match event {
            Event::Scalar(..) | Event::Alias(_) => {
                let value = match &event {
                    Event::Scalar(v, ..) => Some(v.to_string()),
                    _ => None,
                };
                if stack.is_empty() {
                    docs.push(here);
                } else if in_items(&stack)
                    && let Some(root) = root.as_mut()
                {
                    root.items.push(here);
                }
                finish_node(&mut stack, value);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if stack.is_empty() {
                    root = Some(here);
                } else if in_items(&stack) {
                    item = Some(here);
                }
                let frame = if matches!(event, Event::MappingStart(..)) {
                    Frame::Map {
                        expecting_key: true,
                        key: None,
                    }
                } else {
                    let items = stack.len() == 1
                        && matches!(
                            stack.last(),
                            Some(Frame::Map { expecting_key: false, key: Some(k) }) if k == "items"
                        );
                    Frame::Seq { items }
                };
                stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                if stack.is_empty() {
                    if let Some(mut node) = root.take() {
                        node.end = end;
                        docs.push(node);
                    }
                } else if in_items(&stack)
                    && let Some(mut node) = item.take()
                {
                    node.end = end;
                    if let Some(root) = root.as_mut() {
                        root.items.push(node);
                    }
                }
                finish_node(&mut stack, None);
            }
            _ => {}
        }
    }
    Ok(docs)
}

/// A node ended: advance the enclosing mapping's key/value alternation.
fn finish_node(stack: &mut [Frame], scalar: Option<String>) {
    if let Some(Frame::Map { expecting_key, key }) = stack.last_mut() {
        if *expecting_key {
            *key = scalar;
        }
        *expecting_key = !*expecting_key;
    }
}

/// A YAML syntax error, located by serde-saphyr when it can.
fn syntax_error(text: &str, file: &Path, fallback: &str) -> ConfigError {
    match serde_saphyr::from_multiple::<IgnoredAny>(text) {
        Err(e) => yaml_error(&e, text, file),
        Ok(_) => ConfigError::new(Some(file), None, "", format!("invalid YAML: {fallback}")),
    }
}

/// `text` with every character outside `start..end` (in characters) replaced by a space, line
/// breaks kept.
fn blank(text: &str, start: usize, end: usize) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            if (start..end).contains(&i) || c == '\n' || c == '\r' {
                c
            } else {
                ' '
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode("aGVsbG8").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode("aGVs\nbG8h").as_deref(), Some(&b"hello!"[..]));
        assert_eq!(base64_decode("").as_deref(), Some(&b""[..]));
        assert!(base64_decode("a$b=").is_none());
        assert!(base64_decode("aG=VsbG8").is_none());
        assert!(base64_decode("a").is_none());
    }

    #[test]
    fn documents_and_items() {
        let text = "# c\napiVersion: v1\nitems:\n- a: 1\n  b: [x]\n- {c: 2}\nkind: List\n---\nfoo: 1\n...\n---\n# only a comment\n";
        let docs = nodes(text, Path::new("x.yaml")).unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].line, 2);
        assert_eq!(docs[0].items.len(), 2);
        let item = |n: &Node| {
            text.chars()
                .skip(n.start)
                .take(n.end - n.start)
                .collect::<String>()
        };
        assert_eq!(item(&docs[0].items[0]).trim_end(), "a: 1\n  b: [x]");
        assert_eq!(item(&docs[0].items[1]).trim_end(), "{c: 2}");
        assert_eq!(item(&docs[1]).trim_end(), "foo: 1");
        let blanked = blank(text, docs[1].start, docs[1].end);
        assert_eq!(blanked.lines().count(), text.lines().count());
        assert_eq!(blanked.trim(), "foo: 1");
    }
}
