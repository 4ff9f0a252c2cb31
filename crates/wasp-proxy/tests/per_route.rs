//! Plugins per route and per host over real sockets: one module serving routes with different
//! configurations in one VM per worker (a root context per distinct configuration), off on
//! another route; virtual hosts by Envoy's domain rules with their own settings; plugin rules
//! by domain, service and route name (Higress `matchRules`); Lua scripts per route
//! (`LuaPerRoute`).

mod support;

use std::sync::Arc;

use support::*;
use wasp_proxy::spec::{
    LuaSpec, MatchRule, PathMatch, PluginKind, PluginSetting, PluginSpec, ProxySpec, RouteAction,
    RouteSpec, VirtualHostSpec,
};

fn direct(path: &str, body: &str) -> RouteSpec {
    RouteSpec {
        name: String::new(),
        plugins: Default::default(),
        path: PathMatch::Prefix(path.into()),
        headers: vec![],
        action: RouteAction::Direct {
            status: 200,
            body: body.into(),
        },
    }
}

fn with(mut route: RouteSpec, plugin: &str, setting: PluginSetting) -> RouteSpec {
    route.plugins.insert(plugin.into(), setting);
    route
}

fn config(text: &str) -> PluginSetting {
    PluginSetting::Configuration(Arc::from(text.as_bytes()))
}

/// `headers` answers `x-plugin-config: <its configuration>` and `x-powered-by: wasp`.
fn headers_plugin() -> PluginSpec {
    plugin("headers", "default")
}

fn spec_with(routes: Vec<RouteSpec>, plugins: Vec<PluginSpec>) -> ProxySpec {
    let up = upstream();
    let mut spec = spec(up.address, plugins);
    std::mem::forget(up);
    spec.listeners[0].routes = routes;
    spec
}

/// The plugin's view of `path` for authority `host`: its configuration, or `None` when it did
/// not run.
fn seen(addr: std::net::SocketAddr, host: &str, path: &str) -> (String, Option<String>) {
    let a = get_as(addr, host, path);
    assert_eq!(a.status, 200, "{host}{path}: {a:?}");
    let config = a.header("x-plugin-config").map(str::to_string);
    assert_eq!(
        config.is_some(),
        a.header("x-powered-by").is_some(),
        "{host}{path}: {a:?}"
    );
    (a.body.trim_end().to_string(), config)
}

/// `GET path` over HTTP/1.1 with `host` as the Host header.
fn get_as(addr: std::net::SocketAddr, host: &str, path: &str) -> Answer {
    block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = request_for(host, Proto::H1, "GET", path, &[], empty()).unwrap();
        answer(exchange_on(tcp, Proto::H1, req).await.unwrap())
            .await
            .unwrap()
    })
}

#[test]
fn one_module_serves_routes_with_their_configurations_in_one_vm_per_worker() {
    let spec = spec_with(
        vec![
            direct("/a", "a"),
            with(direct("/b", "b"), "headers", config("route-b")),
            with(direct("/c", "c"), "headers", PluginSetting::Disabled),
            with(direct("/d", "d"), "headers", config("route-b")),
            with(direct("/e", "e"), "headers", PluginSetting::Enabled),
        ],
        vec![headers_plugin()],
    );
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    for _ in 0..8 {
        assert_eq!(seen(addr, "x", "/a"), ("a".into(), Some("default".into())));
        assert_eq!(seen(addr, "x", "/b"), ("b".into(), Some("route-b".into())));
        assert_eq!(seen(addr, "x", "/c"), ("c".into(), None));
        assert_eq!(seen(addr, "x", "/d"), ("d".into(), Some("route-b".into())));
        assert_eq!(seen(addr, "x", "/e"), ("e".into(), Some("default".into())));
    }
    // HTTP/2 takes the same path.
    let a = get_h2(addr, "/b", &[]);
    assert_eq!(a.header("x-plugin-config"), Some("route-b"));
    // One VM per worker; a root context per distinct configuration on each worker that
    // served it (the default one on both, `route-b` on one or both).
    let text = stats(&proxy);
    assert_eq!(metric(&text, "wasp_wasm_vms_active"), Some(2.0), "{text}");
    let roots = metric(&text, "wasp_wasm_root_contexts_active").unwrap();
    assert!((3.0..=4.0).contains(&roots), "{roots} root contexts");
    proxy.shutdown();
}

#[test]
fn virtual_hosts_pick_routes_and_plugin_settings_by_envoys_domain_rules() {
    let mut spec = spec_with(vec![direct("/", "default host")], vec![headers_plugin()]);
    let mut shop = VirtualHostSpec {
        name: "shop".into(),
        domains: vec!["shop.example.com".into(), "*.shop.example.com".into()],
        routes: vec![
            with(direct("/admin", "shop admin"), "headers", config("admin")),
            direct("/", "shop"),
        ],
        plugins: Default::default(),
    };
    shop.plugins
        .insert("headers".into(), PluginSetting::Disabled);
    let api = VirtualHostSpec {
        name: "api".into(),
        domains: vec!["api.*".into()],
        routes: vec![direct("/", "api")],
        plugins: Default::default(),
    };
    spec.listeners[0].virtual_hosts = vec![shop, api];
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    // The host turns the plugin off; its /admin route turns it on with a configuration.
    assert_eq!(seen(addr, "shop.example.com", "/"), ("shop".into(), None));
    assert_eq!(
        seen(addr, "SHOP.example.com", "/admin"),
        ("shop admin".into(), Some("admin".into()))
    );
    assert_eq!(
        seen(addr, "v2.shop.example.com", "/"),
        ("shop".into(), None)
    );
    assert_eq!(
        seen(addr, "api.internal:8080", "/"),
        ("api".into(), Some("default".into()))
    );
    assert_eq!(
        seen(addr, "elsewhere.test", "/"),
        ("default host".into(), Some("default".into()))
    );
    // A domain without a port does not match an authority with one (Envoy's default).
    assert_eq!(
        seen(addr, "shop.example.com:8080", "/"),
        ("default host".into(), Some("default".into()))
    );
    proxy.shutdown();
}

#[test]
fn plugin_rules_pick_by_domain_service_and_route_name() {
    let mut p = headers_plugin();
    p.routing.default_disabled = true;
    p.routing.rules = vec![
        MatchRule {
            virtual_hosts: Vec::new(),
            domains: vec!["*.example.com".into()],
            services: vec![],
            routes: vec![],
            setting: config("by-domain"),
        },
        MatchRule {
            virtual_hosts: Vec::new(),
            domains: vec![],
            services: vec!["backend".into()],
            routes: vec![],
            setting: PluginSetting::Enabled,
        },
        MatchRule {
            virtual_hosts: Vec::new(),
            domains: vec![],
            services: vec![],
            routes: vec!["default/named".into()],
            setting: config("by-route"),
        },
    ];
    let mut named = direct("/named", "named");
    named.name = "named".into();
    let mut to_backend = direct("/", "");
    to_backend.action = RouteAction::Cluster {
        name: "backend".into(),
        timeout: None,
        retry: None,
        hash_header: None,
    };
    let spec = spec_with(
        vec![
            named,
            direct("/plain", "plain"),
            with(direct("/forced", "forced"), "headers", config("route wins")),
            to_backend,
        ],
        vec![p],
    );
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    assert_eq!(
        seen(addr, "x.test", "/named"),
        ("named".into(), Some("by-route".into()))
    );
    assert_eq!(
        seen(addr, "a.example.com:8080", "/plain"),
        ("plain".into(), Some("by-domain".into()))
    );
    assert_eq!(seen(addr, "x.test", "/plain"), ("plain".into(), None));
    let a = get_as(addr, "x.test", "/to-backend");
    assert_eq!(a.header("x-echo-path"), Some("/to-backend"));
    assert_eq!(a.header("x-plugin-config"), Some("default"));
    // A route's own setting wins over the plugin's rules.
    assert_eq!(
        seen(addr, "a.example.com", "/forced"),
        ("forced".into(), Some("route wins".into()))
    );
    proxy.shutdown();
}

#[test]
fn a_route_runs_another_lua_script_or_none() {
    let lua = |name: &str, value: &str| {
        let script = format!(
            "function envoy_on_response(handle) handle:headers():add('x-lua', '{value}') end"
        );
        let mut p = PluginSpec::new(name, PluginKind::Lua(LuaSpec { source: script }));
        p.url = format!("lua:{name}");
        p
    };
    let other = "function envoy_on_response(handle) handle:headers():add('x-lua', 'route ' .. handle:streamInfo():routeName()) end";
    let mut named = with(
        direct("/other", "other"),
        "lua",
        PluginSetting::LuaSource(Arc::from(other)),
    );
    named.name = "other-route".into();
    let spec = spec_with(
        vec![
            named,
            with(direct("/off", "off"), "lua", PluginSetting::Disabled),
            direct("/", "main"),
        ],
        vec![lua("lua", "own")],
    );
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    for _ in 0..4 {
        assert_eq!(get(addr, "/", &[]).header("x-lua"), Some("own"));
        assert_eq!(
            get(addr, "/other", &[]).header("x-lua"),
            Some("route other-route")
        );
        assert_eq!(get(addr, "/off", &[]).header("x-lua"), None);
    }
    proxy.shutdown();
}
