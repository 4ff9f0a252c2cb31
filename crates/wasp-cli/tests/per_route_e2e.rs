//! Plugins per route from resources, through `wasp run`: a Higress WasmPlugin whose
//! `matchRules` give one domain another configuration and turn it off on one service, and an
//! Istio WasmPlugin whose `targetRefs` name a Service, which then runs only on the routes to
//! that service; beside a wasp.yaml route that turns a plugin off.

use std::net::SocketAddr;
use std::time::Duration;

mod support;

use support::*;
use wasp_test_support::raw::RawAnswer;

/// `GET path` with `host` as the Host header.
fn get_as(addr: SocketAddr, host: &str, path: &str) -> RawAnswer {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    tcp.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    RawAnswer {
        status: head.split(' ').nth(1).unwrap().parse().unwrap(),
        head: head.to_string(),
        body: body.to_string(),
    }
}

#[test]
fn higress_match_rules_and_istio_service_target_refs_pick_routes() {
    let dir = tempfile::tempdir().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let main: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let module = wasp_test_plugins::path("headers");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    // Higress: on everywhere with `all`, `shop` for *.shop.test, off on the reviews service.
    std::fs::write(
        plugins.join("higress.yaml"),
        format!(
            r#"apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {{ name: tagger, namespace: default }}
spec:
  url: file://{}
  defaultConfig: {{ realm: all }}
  matchRules:
    - domain: ["*.shop.test"]
      config: {{ realm: shop }}
    - service: [reviews.default.svc.cluster.local]
      configDisable: true
"#,
            module.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("wasp.yaml"),
        format!(
            r#"admin: {{ address: "{admin}" }}
workers: 2
listeners:
  - name: main
    address: "{main}"
    routes:
      - name: reviews
        match: {{ prefix: /reviews }}
        cluster: reviews.default.svc.cluster.local
      - name: quiet
        match: {{ prefix: /quiet }}
        direct_response: {{ status: 200, body: "quiet\n" }}
        plugins:
          default.tagger: {{ disabled: true }}
      - match: {{ prefix: / }}
        direct_response: {{ status: 200, body: "home\n" }}
clusters:
  - name: reviews.default.svc.cluster.local
    endpoints: ["127.0.0.1:{}"]
plugins:
  sources: [./plugins/]
"#,
            free_port()
        ),
    )
    .unwrap();
    let _wasp = run_wasp(dir.path(), admin);
    let config = |a: &RawAnswer| a.header("x-plugin-config");
    assert_eq!(
        config(&get_as(main, "a.test", "/")).as_deref(),
        Some(r#"{"realm":"all"}"#)
    );
    assert_eq!(
        config(&get_as(main, "www.shop.test", "/")).as_deref(),
        Some(r#"{"realm":"shop"}"#)
    );
    // The reviews service: off (its upstream is down: 503, without the plugin's header).
    let reviews = get_as(main, "a.test", "/reviews");
    assert_eq!(reviews.status, 503);
    assert_eq!(config(&reviews), None, "{reviews:?}");
    // wasp.yaml's route setting wins over the resource's rules.
    assert_eq!(config(&get_as(main, "www.shop.test", "/quiet")), None);

    // Istio: targetRefs to the Service: only the routes to it run the plugin.
    std::fs::write(
        plugins.join("higress.yaml"),
        format!(
            r"apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {{ name: tagger, namespace: default }}
spec:
  url: file://{}
  pluginConfig: {{ realm: reviews }}
  targetRefs: [{{ kind: Service, name: reviews }}]
",
            module.display()
        ),
    )
    .unwrap();
    assert!(
        wait(Duration::from_secs(10), || config(&get_as(
            main, "a.test", "/"
        ))
        .is_none()),
        "the Istio resource did not replace the Higress one: {}",
        std::fs::read_to_string(dir.path().join("wasp.log")).unwrap_or_default()
    );
    let reviews = get_as(main, "a.test", "/reviews");
    assert_eq!(
        config(&reviews).as_deref(),
        Some(r#"{"realm":"reviews"}"#),
        "{reviews:?}"
    );
    assert_eq!(config(&get_as(main, "www.shop.test", "/")), None);
}

#[test]
fn an_envoy_filter_sets_its_lua_filter_per_route() {
    let dir = tempfile::tempdir().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let main: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(
        plugins.join("lua.yaml"),
        r#"apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: lua, namespace: default }
spec:
  configPatches:
    - applyTo: HTTP_FILTER
      match:
        context: SIDECAR_INBOUND
        listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: envoy.filters.http.router } } } }
      patch:
        operation: INSERT_BEFORE
        value:
          name: envoy.lua
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
            inlineCode: |
              function envoy_on_response(handle) handle:headers():add("x-lua", "default") end
            source_codes:
              loud: { inline_string: "function envoy_on_response(handle) handle:headers():add('x-lua', 'loud') end" }
    - applyTo: HTTP_ROUTE
      match: { context: SIDECAR_INBOUND, routeConfiguration: { vhost: { route: { name: quiet } } } }
      patch:
        operation: MERGE
        value:
          typed_per_filter_config:
            envoy.lua: { "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute, disabled: true }
    - applyTo: HTTP_ROUTE
      match: { context: SIDECAR_INBOUND, routeConfiguration: { vhost: { route: { name: loud } } } }
      patch:
        operation: MERGE
        value:
          typed_per_filter_config:
            envoy.lua: { "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute, name: loud }
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("wasp.yaml"),
        format!(
            r#"admin: {{ address: "{admin}" }}
workers: 2
listeners:
  - name: main
    address: "{main}"
    routes:
      - {{ name: quiet, match: {{ prefix: /quiet }}, direct_response: {{ status: 200 }} }}
      - {{ name: loud, match: {{ prefix: /loud }}, direct_response: {{ status: 200 }} }}
      - {{ match: {{ prefix: / }}, direct_response: {{ status: 200 }} }}
plugins:
  sources: [./plugins/]
"#
        ),
    )
    .unwrap();
    let _wasp = run_wasp(dir.path(), admin);
    let lua = |path: &str| get_as(main, "a.test", path).header("x-lua");
    assert_eq!(lua("/").as_deref(), Some("default"));
    assert_eq!(lua("/quiet"), None);
    assert_eq!(lua("/loud").as_deref(), Some("loud"));
}
