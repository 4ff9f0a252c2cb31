//! Plugins per route and per host in a wasp.yaml: `virtual_hosts` with Envoy's domain rules,
//! `plugins:` settings on routes and hosts (off, another configuration, another Lua script),
//! each error at its field.

mod common;

use std::sync::Arc;

use common::Dir;
use wasp_config::spec::PluginSetting;

const CONFIG: &str = r#"listeners:
  - name: main
    address: 127.0.0.1:8080
    routes:
      - name: home
        match: { prefix: / }
        direct_response: { status: 200 }
        plugins:
          auth: { disabled: true }
          lua: { name: other }
    virtual_hosts:
      - name: shop
        domains: [shop.example.com, "*.shop.example.com"]
        plugins:
          auth: { pluginConfig: { realm: shop } }
        routes:
          - match: { prefix: /admin }
            direct_response: { status: 200 }
            plugins:
              auth: { configuration: "raw" }
              lua: { source_code: "function envoy_on_request(h) end" }
plugins:
  inline:
    - name: auth
      url: hello.wasm
    - name: lua
      lua:
        inlineCode: "function envoy_on_request(h) end"
        sourceCodes:
          other: "function envoy_on_response(h) end"
"#;

#[test]
fn settings_on_routes_and_hosts() {
    let dir = Dir::new();
    let loaded = dir.load(CONFIG).unwrap();
    let l = &loaded.spec.listeners[0];
    let home = &l.routes[0];
    assert_eq!(home.name, "home");
    assert_eq!(home.plugins["auth"], PluginSetting::Disabled);
    assert_eq!(
        home.plugins["lua"],
        PluginSetting::LuaSource(Arc::from("function envoy_on_response(h) end"))
    );
    let shop = &l.virtual_hosts[0];
    assert_eq!(shop.name, "shop");
    assert_eq!(shop.domains, ["shop.example.com", "*.shop.example.com"]);
    assert_eq!(
        shop.plugins["auth"],
        PluginSetting::Configuration(Arc::from(&br#"{"realm":"shop"}"#[..]))
    );
    let admin = &shop.routes[0];
    assert_eq!(
        admin.plugins["auth"],
        PluginSetting::Configuration(Arc::from(&b"raw"[..]))
    );
    assert!(matches!(admin.plugins["lua"], PluginSetting::LuaSource(_)));
}

#[test]
fn bad_settings_name_their_field() {
    let dir = Dir::new();
    let e = dir.error(&CONFIG.replace("auth: { disabled: true }", "nope: { disabled: true }"));
    assert_eq!(
        e,
        "wasp.yaml:9:17: listeners[0].routes[0].plugins.nope: unknown plugin `nope` (plugins: auth, lua)"
    );
    let e = dir.error(&CONFIG.replace("lua: { name: other }", "lua: { name: missing }"));
    assert_eq!(
        e,
        "wasp.yaml:10:24: listeners[0].routes[0].plugins.lua.name: `lua` has no script `missing` in lua.sourceCodes (other)"
    );
    let e = dir.error(&CONFIG.replace("lua: { name: other }", "auth: { name: other }"));
    assert!(e.contains("duplicate") || e.contains("auth"), "{e}");
    let e = dir.error(&CONFIG.replace("lua: { name: other }", "lua: { pluginConfig: { a: 1 } }"));
    assert_eq!(
        e,
        "wasp.yaml:10:32: listeners[0].routes[0].plugins.lua.pluginConfig: `lua` is a Lua filter: give it name or source_code"
    );
    let e = dir.error(&CONFIG.replace(
        "auth: { disabled: true }",
        "auth: { disabled: true, configuration: x }",
    ));
    assert!(
        e.contains("listeners[0].routes[0].plugins.auth.configuration: only one of"),
        "{e}"
    );
    let e = dir.error(&CONFIG.replace("auth: { disabled: true }", "auth: {}"));
    assert!(e.contains("give one of disabled"), "{e}");
    let e = dir.error(&CONFIG.replace(
        "source_code: \"function envoy_on_request(h) end\"",
        "source_code: \"function (\"",
    ));
    assert!(
        e.starts_with(
            "wasp.yaml:21:35: listeners[0].virtual_hosts[0].routes[0].plugins.lua.source_code:"
        ),
        "{e}"
    );
}

#[test]
fn virtual_host_domains_follow_envoys_rules() {
    let dir = Dir::new();
    let e = dir.error(&CONFIG.replace("\"*.shop.example.com\"", "\"a.*.example.com\""));
    assert!(
        e.starts_with("wasp.yaml:13:37: listeners[0].virtual_hosts[0].domains[1]: `a.*.example.com`: a wildcard is one `*`"),
        "{e}"
    );
    let e = dir.error(&CONFIG.replace("\"*.shop.example.com\"", "SHOP.example.com"));
    assert_eq!(
        e,
        "wasp.yaml:13:37: listeners[0].virtual_hosts[0].domains[1]: domain `shop.example.com` is also in virtual_hosts[0] (Envoy rejects a domain twice)"
    );
    let e = dir.error(&CONFIG.replace("\"*.shop.example.com\"", "\"*\""));
    assert!(
        e.contains("virtual_hosts[0].domains[1]: the listener's `routes:` already serve `*`"),
        "{e}"
    );
    let e = dir.error(&CONFIG.replace(
        "domains: [shop.example.com, \"*.shop.example.com\"]",
        "domains: []",
    ));
    assert!(e.contains("at least one domain is required"), "{e}");
}

#[test]
fn with_plugin_sources_a_setting_may_name_a_resource_plugin() {
    let dir = Dir::new();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    let yaml = CONFIG
        .replace(
            "auth: { disabled: true }",
            "shop.ratelimit: { disabled: true }",
        )
        .replace(
            "plugins:\n  inline:",
            "plugins:\n  sources: [./plugins/]\n  inline:",
        );
    let loaded = dir.load(&yaml).unwrap();
    assert_eq!(
        loaded.spec.listeners[0].routes[0].plugins["shop.ratelimit"],
        PluginSetting::Disabled
    );
}
