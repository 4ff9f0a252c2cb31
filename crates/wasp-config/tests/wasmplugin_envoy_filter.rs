//! EnvoyFilter resources with a Lua filter (the form most Istio users run Lua with): their
//! patches become Lua plugins placed as Istio applies them; other patches are refused clearly.

mod common;

use common::{error, names, parse, plugins, workload, wp};
use wasp_config::spec::TrafficDirection;
use wasp_config::wasmplugin::{LuaDecl, PluginBody, PluginPhase, ResourceKind};

/// An EnvoyFilter `ns/name` with these configPatches (already indented under the list).
fn envoy_filter(ns: &str, name: &str, extra_spec: &str, patches: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{extra_spec}  configPatches:\n{patches}"
    )
}

const LUA_BEFORE_ROUTER: &str = r#"  - applyTo: HTTP_FILTER
    match:
      context: SIDECAR_INBOUND
      listener:
        portNumber: 8080
        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager
            subFilter: { name: envoy.filters.http.router }
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.lua
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
          inlineCode: |
            function envoy_on_request(handle) handle:headers():add("x-lua", "1") end
"#;

#[test]
fn envoy_filter_lua_patches_become_lua_plugins() {
    let yaml = [
        envoy_filter(
            "shop",
            "lua-late",
            "  workloadSelector: { labels: { app: cart } }\n",
            LUA_BEFORE_ROUTER,
        ),
        envoy_filter(
            "shop",
            "lua-first",
            "",
            r#"  - applyTo: HTTP_FILTER
    patch:
      operation: INSERT_FIRST
      value:
        name: envoy.lua
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
          default_source_code: { inline_string: "function envoy_on_response(h) end" }
"#,
        ),
        wp("shop", "authn", "phase: AUTHN\n"),
        wp("shop", "plain", ""),
    ]
    .join("---\n");
    let set = parse(&yaml).unwrap();
    let w = workload("shop", &[("app", "cart")]);
    let decls = plugins(&set, &w);
    // INSERT_FIRST before every WasmPlugin; INSERT_BEFORE the router after all of them.
    assert_eq!(
        names(&decls),
        [
            "shop.lua-first",
            "shop.authn",
            "shop.plain",
            "shop.lua-late"
        ]
    );
    let late = decls.last().unwrap();
    assert_eq!(late.kind, ResourceKind::EnvoyFilter);
    assert_eq!(late.phase, PluginPhase::BeforeRouter);
    match &late.body {
        PluginBody::Lua(LuaDecl { inline_code, .. }) => {
            assert!(inline_code.contains("x-lua"), "{inline_code}");
        }
        other => panic!("{other:?}"),
    }
    // SIDECAR_INBOUND + portNumber: inbound listeners on 8080 only.
    assert!(late.matcher.applies_to(TrafficDirection::Inbound, 8080));
    assert!(!late.matcher.applies_to(TrafficDirection::Inbound, 9090));
    assert!(!late.matcher.applies_to(TrafficDirection::Outbound, 8080));
    // workloadSelector: another workload does not get it.
    let other = plugins(&set, &workload("shop", &[("app", "web")]));
    assert!(!names(&other).contains(&"shop.lua-late"));
}

#[test]
fn envoy_filter_priority_orders_patches_as_istio_applies_them() {
    // Lower priority is applied first, so before the router it comes first.
    let yaml = [
        envoy_filter("shop", "b", "  priority: 10\n", LUA_BEFORE_ROUTER),
        envoy_filter("shop", "a", "  priority: -5\n", LUA_BEFORE_ROUTER),
        envoy_filter("shop", "c", "", LUA_BEFORE_ROUTER),
    ]
    .join("---\n");
    let set = parse(&yaml).unwrap();
    let decls = plugins(&set, &workload("shop", &[]));
    assert_eq!(names(&decls), ["shop.a", "shop.c", "shop.b"]);
}

#[test]
fn envoy_filter_patches_other_than_lua_are_refused_clearly() {
    let cluster_patch = envoy_filter(
        "shop",
        "cluster",
        "",
        "  - applyTo: CLUSTER\n    patch:\n      operation: MERGE\n      value: { connect_timeout: 1s }\n",
    );
    let e = error(&cluster_patch);
    assert!(
        e.contains("spec.configPatches[0].applyTo: CLUSTER patches are not supported"),
        "{e}"
    );
    assert!(e.contains("EnvoyFilter shop/cluster"), "{e}");
    assert!(e.starts_with("plugins.yaml:"), "{e}");

    let other_filter = LUA_BEFORE_ROUTER
        .replace("envoy.filters.http.lua", "envoy.filters.http.cors")
        .replace(
            "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "x",
        );
    let e = error(&envoy_filter("shop", "cors", "", &other_filter));
    assert!(
        e.contains("only envoy.filters.http.lua filters are supported"),
        "{e}"
    );

    let merge = LUA_BEFORE_ROUTER.replace("INSERT_BEFORE", "MERGE");
    let e = error(&envoy_filter("shop", "merge", "", &merge));
    assert!(e.contains("operation MERGE is not supported"), "{e}");

    let before_cors = LUA_BEFORE_ROUTER.replace(
        "subFilter: { name: envoy.filters.http.router }",
        "subFilter: { name: envoy.filters.http.cors }",
    );
    let e = error(&envoy_filter("shop", "before-cors", "", &before_cors));
    assert!(e.contains("INSERT_BEFORE envoy.filters.http.cors"), "{e}");

    let no_code = LUA_BEFORE_ROUTER.replace(
        "          inlineCode: |\n            function envoy_on_request(handle) handle:headers():add(\"x-lua\", \"1\") end\n",
        "",
    );
    let e = error(&envoy_filter("shop", "empty", "", &no_code));
    assert!(e.contains("no inline code"), "{e}");

    let bad_version = envoy_filter("shop", "v", "", LUA_BEFORE_ROUTER)
        .replace("networking.istio.io/v1alpha3", "networking.istio.io/v2");
    let e = error(&bad_version);
    assert!(
        e.contains("unsupported apiVersion `networking.istio.io/v2`"),
        "{e}"
    );
}

/// `HTTP_ROUTE` patches set a Lua filter's per-route settings (`typed_per_filter_config`):
/// off on a route, a named script of the filter's `source_codes`, inline code, every route of
/// a host; keyed by the name the filter was inserted under; other filters' settings refused.
#[test]
fn envoy_filter_route_patches_set_lua_per_route() {
    use wasp_config::spec::PluginSetting;
    let insert = r#"  - applyTo: HTTP_FILTER
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.lua
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
          default_source_code: { inline_string: "function envoy_on_request(h) end" }
          source_codes:
            quiet: { inline_string: "function envoy_on_response(h) end" }
"#;
    let route = |matcher: &str, value: &str| {
        format!(
            "  - applyTo: HTTP_ROUTE\n    match:\n      context: SIDECAR_INBOUND\n      routeConfiguration: {matcher}\n    patch:\n      operation: MERGE\n      value:\n        typed_per_filter_config:\n          envoy.filters.http.lua: {value}\n"
        )
    };
    let per_route = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute";
    let patches = [
        insert.to_string(),
        route(
            "{ vhost: { route: { name: checkout } } }",
            &format!("{{ \"@type\": {per_route}, disabled: true }}"),
        ),
        route(
            "{ vhost: { route: { name: reviews } } }",
            &format!("{{ \"@type\": {per_route}, name: quiet }}"),
        ),
        route(
            "{ vhost: { name: shop } }",
            &format!(
                "{{ \"@type\": {per_route}, source_code: {{ inline_string: \"function envoy_on_request(h) end\" }} }}"
            ),
        ),
    ]
    .concat();
    let set = parse(&envoy_filter("shop", "lua", "", &patches)).unwrap();
    let decls = plugins(&set, &workload("shop", &[]));
    assert_eq!(names(&decls), ["shop.lua"]);
    let rules = &decls[0].routing.rules;
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[0].routes, ["checkout"]);
    assert_eq!(rules[0].setting, PluginSetting::Disabled);
    assert_eq!(rules[1].routes, ["reviews"]);
    assert_eq!(
        rules[1].setting,
        PluginSetting::LuaSource("function envoy_on_response(h) end".into())
    );
    assert_eq!(rules[2].virtual_hosts, ["shop"]);
    assert!(matches!(rules[2].setting, PluginSetting::LuaSource(_)));
    // A route patch in another EnvoyFilter applies too; one for another namespace does not.
    let other = envoy_filter(
        "shop",
        "off-everywhere",
        "",
        &route(
            "{ vhost: { route: { name: x } } }",
            "{ \"@type\": type.googleapis.com/envoy.config.route.v3.FilterConfig, disabled: true }",
        ),
    );
    let set = parse(&[envoy_filter("shop", "lua", "", insert), other].join("---\n")).unwrap();
    assert_eq!(
        plugins(&set, &workload("shop", &[]))[0].routing.rules.len(),
        1
    );
    assert!(plugins(&set, &workload("elsewhere", &[])).is_empty());
    // Another filter's per-route settings are refused with where they belong.
    let e = error(&envoy_filter(
        "shop",
        "wasm",
        "",
        &route(
            "{ vhost: { route: { name: x } } }",
            "{ \"@type\": x, disabled: true }",
        )
        .replace("envoy.filters.http.lua:", "envoy.filters.http.wasm:"),
    ));
    assert!(
        e.contains("spec.configPatches[0].patch.value.typed_per_filter_config.envoy.filters.http.wasm: `envoy.filters.http.wasm`: wasp applies per-route settings of Lua filters"),
        "{e}"
    );
    let e = error(&envoy_filter(
        "shop",
        "bad",
        "",
        &route(
            "{ vhost: { route: { name: x } } }",
            &format!("{{ \"@type\": {per_route} }}"),
        ),
    ));
    assert!(
        e.contains("LuaPerRoute needs disabled: true, name, or source_code.inline_string"),
        "{e}"
    );
}
