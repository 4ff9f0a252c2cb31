//! Errors in a wasp.yaml as a whole: each names file:line:column, the field path and what is
//! wrong (unknown, missing and mistyped fields, YAML syntax, unreadable files, no listeners,
//! sizes and workers); the error accessors; no panic on truncated or mangled input.

mod common;

use std::path::Path;

use common::{BASE, Dir};
use wasp_config::{load, parse};

#[test]
fn unknown_top_level_field() {
    let e = Dir::new().error(&format!("{BASE}admins: {{}}\n"));
    assert!(
        e.starts_with("wasp.yaml:10:1: admins: unknown field `admins`, expected one of"),
        "{e}"
    );
}

#[test]
fn unknown_nested_field() {
    let yaml = "\
listeners:
  - name: inbound
    address: 127.0.0.1:8080
    routes:
      - match: { prefix: /, methods: [GET] }
        cluster: backend
clusters:
  - name: backend
    endpoints: [127.0.0.1:9000]
";
    let e = Dir::new().error(yaml);
    assert!(
        e.starts_with(
            "wasp.yaml:5:29: listeners[0].routes[0].match.methods: unknown field `methods`, expected one of"
        ),
        "{e}"
    );
    // In block style, where the mapping starts at its first key.
    let yaml = BASE.replace("    endpoints:", "    endpoint: x\n    endpoints:");
    let e = Dir::new().error(&yaml);
    assert!(
        e.starts_with("wasp.yaml:9:5: clusters[0].endpoint: unknown field `endpoint`"),
        "{e}"
    );
    let yaml = BASE.replace("  - name: backend", "  - nme: backend");
    let e = Dir::new().error(&yaml);
    assert!(
        e.starts_with("wasp.yaml:8:5: clusters[0].nme: unknown field `nme`"),
        "{e}"
    );
}

#[test]
fn missing_and_mistyped_fields() {
    let dir = Dir::new();
    let e = dir.error(&BASE.replace("    address: 127.0.0.1:8080\n", ""));
    assert_eq!(e, "wasp.yaml:2:5: listeners[0]: missing field `address`");
    let e = dir.error(&format!("workers: many\n{BASE}"));
    assert!(e.starts_with("wasp.yaml:1:10: workers: "), "{e}");
    let e = dir.error(&BASE.replace("[127.0.0.1:9000]", "127.0.0.1:9000"));
    assert!(
        e.starts_with("wasp.yaml:9:16: clusters[0].endpoints: "),
        "{e}"
    );
    let e = dir.error(&format!(
        "{BASE}plugins:\n  inline:\n    - name: p\n      url: hello.wasm\n      failStrategy: FAIL_SOMETIMES\n"
    ));
    assert!(
        e.starts_with(
            "wasp.yaml:14:21: plugins.inline[0].failStrategy: unknown variant `FAIL_SOMETIMES`"
        ),
        "{e}"
    );
    let e = dir.error(&BASE.replace(
        "address: 127.0.0.1:8080",
        "address: 127.0.0.1:8080\n    direction: sideways",
    ));
    assert!(
        e.starts_with("wasp.yaml:4:16: listeners[0].direction: unknown variant `sideways`"),
        "{e}"
    );
}

#[test]
fn yaml_syntax_errors() {
    let dir = Dir::new();
    let e = dir.error("listeners: [\n");
    assert!(e.starts_with("wasp.yaml:1:"), "{e}");
    let e = dir.error(&format!("{BASE}listeners: []\n"));
    assert!(e.starts_with("wasp.yaml:10:1: listeners: duplicate"), "{e}");
    let e = dir.error("");
    assert_eq!(e, "wasp.yaml: listeners: at least one listener is required");
    let e = dir.error("- a\n- b\n");
    assert_eq!(e, "wasp.yaml:1:1: expected a mapping (key: value)");
}

#[test]
fn unreadable_config() {
    let e = load(Path::new("/nonexistent/wasp.yaml")).unwrap_err();
    assert_eq!(e.file(), Some(Path::new("/nonexistent/wasp.yaml")));
    assert_eq!(e.line(), None);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/wasp.yaml: cannot read the file: No such file"),
        "{e}"
    );
}

#[test]
fn no_listeners() {
    let dir = Dir::new();
    let e = dir.error("listeners: []\n");
    assert_eq!(
        e,
        "wasp.yaml:1:12: listeners: at least one listener is required"
    );
    let e = dir.error("workers: 1\n");
    assert_eq!(e, "wasp.yaml: listeners: at least one listener is required");
}

#[test]
fn bad_sizes_and_workers() {
    let dir = Dir::new();
    let e = dir.error(&format!("buffer_limit: 1MB\n{BASE}"));
    assert!(
        e.starts_with("wasp.yaml:1:15: buffer_limit: invalid size `1MB`: use binary units"),
        "{e}"
    );
    let e = dir.error(&format!("buffer_limit: 0\n{BASE}"));
    assert_eq!(e, "wasp.yaml:1:15: buffer_limit: must be greater than 0");
    let e = dir.error(&format!("workers: 0\n{BASE}"));
    assert_eq!(e, "wasp.yaml:1:10: workers: must be at least 1");
}

#[test]
fn error_accessors() {
    let dir = Dir::new();
    let file = dir.path().join("wasp.yaml");
    let e = parse(&BASE.replace("cluster: backend", "cluster: nope"), &file).unwrap_err();
    assert_eq!(e.file(), Some(file.as_path()));
    assert_eq!(e.line(), Some(6));
    assert_eq!(e.column(), Some(18));
    assert_eq!(e.path(), "listeners[0].routes[0].cluster");
    assert_eq!(e.message(), "unknown cluster `nope` (clusters: backend)");
}

#[test]
fn never_panics_on_truncated_or_mangled_input() {
    let dir = Dir::new();
    let file = dir.path().join("wasp.yaml");
    let doc = format!(
        "{BASE}    tls: {{ sni: x }}\nplugins:\n  inline:\n    - name: p\n      url: hello.wasm\n      pluginConfig: {{ a: [1, {{ b: c }}] }}\n      env: {{ A: b }}\n"
    );
    assert!(parse(&doc, &file).is_ok());
    let cuts: Vec<usize> = doc.char_indices().map(|(i, _)| i).collect();
    for &cut in &cuts {
        let _ = parse(&doc[..cut], &file);
        let mut mangled = doc.clone();
        mangled.insert_str(cut, ": [{\"'&*!|>-\t");
        let _ = parse(&mangled, &file);
    }
    for text in [
        "\u{feff}listeners: []",
        "&a [*a]",
        "a: &a {b: *a}",
        "listeners: !!binary AAAA",
        "? [complex]\n: key",
        "---\n---\n",
        "listeners:\n  - name: é\n    address: \"\\uD800\"\n",
        &"[".repeat(10_000),
        &"- ".repeat(10_000),
        "listeners:\n  - <<: {name: a}\n    address: 127.0.0.1:1\n",
    ] {
        let _ = parse(text, &file);
    }
}

#[test]
fn plugin_recovery_settings() {
    let dir = Dir::new();
    let loaded = dir
        .load(&format!(
            "{BASE}plugin_recovery: {{ backoff_base: 50ms, park_after: 3, park_for: 2m }}\n"
        ))
        .unwrap();
    let r = loaded.spec.plugin_recovery;
    assert_eq!(r.backoff_base, std::time::Duration::from_millis(50));
    assert_eq!(r.park_after, 3);
    assert_eq!(r.park_for, std::time::Duration::from_secs(120));
    assert_eq!(r.backoff_max, std::time::Duration::from_secs(30));
    let e = dir.error(&format!("{BASE}plugin_recovery: {{ park_after: 0 }}\n"));
    assert!(
        e.contains("plugin_recovery.park_after: must be at least 1"),
        "{e}"
    );
    let e = dir.error(&format!("{BASE}plugin_recovery: {{ backoff_base: 0s }}\n"));
    assert!(
        e.contains("plugin_recovery.backoff_base: must be greater than 0s"),
        "{e}"
    );
    let e = dir.error(&format!(
        "{BASE}plugin_recovery: {{ backoff_base: 2s, backoff_max: 1s }}\n"
    ));
    assert!(
        e.contains("plugin_recovery.backoff_max: must not be less than backoff_base"),
        "{e}"
    );
    let e = dir.error(&format!("{BASE}plugin_recovery: {{ park_for: soon }}\n"));
    assert!(e.contains("plugin_recovery.park_for"), "{e}");
}
