//! Shared helpers of the wasp-config integration tests: a folder holding a wasp.yaml, its
//! module and certificates (the `config_*` tests), and WasmPlugin documents, workloads and
//! declarations (the `wasmplugin_*` tests).

// Each test file uses only some of these.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasp_config::wasmplugin::{
    DEFAULT_ROOT_NAMESPACE, ModuleSource, PluginDecl, ResourceSet, WasmDecl, parse_resources,
};
use wasp_config::{ConfigError, Loaded, Workload, load};

// ----- wasp.yaml -----

pub const MODULE: &[u8] = b"\0asm\x01\0\0\0 any bytes: modules are not compiled here";

/// A folder with a module, certificates (contents don't matter) and room for configs.
pub struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Self {
        let dir = Dir {
            tmp: tempfile::tempdir().unwrap(),
        };
        dir.write("hello.wasm", MODULE);
        dir.write("other.wasm", b"\0asm\x01\0\0\0 other");
        let (cert, key) = certificate();
        dir.write("c.pem", cert.as_bytes());
        dir.write("k.pem", key.as_bytes());
        dir.write("ca.pem", cert.as_bytes());
        dir
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Writes `wasp.yaml` and loads it.
    pub fn load(&self, yaml: &str) -> Result<Loaded, ConfigError> {
        load(&self.write("wasp.yaml", yaml.as_bytes()))
    }

    /// The error for `yaml`, with the folder taken out of paths (`wasp.yaml:3:5: ...`).
    pub fn error(&self, yaml: &str) -> String {
        match self.load(yaml) {
            Ok(loaded) => panic!("expected an error, got {:#?}", loaded.spec),
            Err(e) => {
                let e = e.to_string();
                let folder = format!("{}/", self.path().display());
                e.strip_prefix(&folder).map_or(e.clone(), str::to_string)
            }
        }
    }
}

/// A self-signed certificate and its key, PEM: configuration loading reads TLS files.
pub fn certificate() -> (String, String) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    (key.cert.pem(), key.signing_key.serialize_pem())
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Minimal valid document to which error tests append.
pub const BASE: &str = "\
listeners:
  - name: inbound
    address: 127.0.0.1:8080
    routes:
      - match: { prefix: / }
        cluster: backend
clusters:
  - name: backend
    endpoints: [127.0.0.1:9000]
";

// ----- WasmPlugin resources -----

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wasmplugin")
}

pub fn parse(yaml: &str) -> Result<ResourceSet, ConfigError> {
    parse_resources(&[(PathBuf::from("plugins.yaml"), yaml.to_string())])
}

pub fn error(yaml: &str) -> String {
    match parse(yaml) {
        Ok(set) => panic!("expected an error, got {:#?}", set.resources()),
        Err(e) => e.to_string(),
    }
}

/// A WasmPlugin document `ns/name` with these spec lines (indented by two spaces), and a URL
/// unless the lines give one.
pub fn wp(ns: &str, name: &str, spec: &str) -> String {
    let mut out = format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n"
    );
    if !spec.contains("url:") {
        out.push_str("  url: oci://example.com/p:1\n");
    }
    for line in spec.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

pub fn workload(ns: &str, labels: &[(&str, &str)]) -> Workload {
    Workload {
        namespace: ns.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

pub fn no_env(_: &str) -> Option<String> {
    None
}

pub fn plugins(set: &ResourceSet, w: &Workload) -> Vec<PluginDecl> {
    set.plugins_for(w, DEFAULT_ROOT_NAMESPACE, &no_env)
}

pub fn names(decls: &[PluginDecl]) -> Vec<&str> {
    decls.iter().map(|d| d.name.as_str()).collect()
}

pub fn wasm(decl: &PluginDecl) -> &WasmDecl {
    decl.wasm().expect("a Wasm plugin")
}

pub fn oci_ref(reference: &str) -> Result<ModuleSource, wasp_delivery::UrlError> {
    Ok(ModuleSource::Oci(
        wasp_delivery::OciReference::parse(reference).unwrap(),
    ))
}
