//! The proxy: specs, plugins and a started wasp.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wasp_host::{Host, HostConfig};
use wasp_proxy::Proxy;
use wasp_proxy::spec::*;

/// A listener with one catch-all route to the `backend` cluster.
pub fn spec(upstream: SocketAddr, plugins: Vec<PluginSpec>) -> ProxySpec {
    ProxySpec {
        admin: Some("127.0.0.1:0".parse().unwrap()),
        admin_read_only: false,
        workers: 2,
        node: NodeSpec {
            id: "test-node".into(),
            cluster: "test-cluster".into(),
            metadata: Default::default(),
        },
        listeners: vec![listener("main", routes())],
        clusters: vec![cluster("backend", upstream), cluster("callout", upstream)],
        plugins,
        buffer_limit_bytes: 1 << 20,
        tracing: None,
        plugin_recovery: Default::default(),
        max_connections: None,
    }
}

/// `/direct` answered by the proxy, everything else to `backend` with a 1 s timeout.
pub fn routes() -> Vec<RouteSpec> {
    vec![
        RouteSpec {
            name: String::new(),
            plugins: Default::default(),
            path: PathMatch::Exact("/direct".into()),
            headers: vec![],
            action: RouteAction::Direct {
                status: 200,
                body: "direct\n".into(),
            },
        },
        RouteSpec {
            name: String::new(),
            plugins: Default::default(),
            path: PathMatch::Prefix("/".into()),
            headers: vec![],
            action: RouteAction::Cluster {
                name: "backend".into(),
                timeout: Some(Duration::from_secs(1)),
                retry: None,
                hash_header: None,
            },
        },
    ]
}

pub fn listener(name: &str, routes: Vec<RouteSpec>) -> ListenerSpec {
    ListenerSpec {
        name: name.into(),
        virtual_hosts: Vec::new(),
        address: "127.0.0.1:0".parse().unwrap(),
        direction: TrafficDirection::Inbound,
        tls: None,
        routes,
        tcp: None,
        access_log: Vec::new(),
        http: Default::default(),
    }
}

pub fn route_to(prefix: &str, cluster: &str) -> RouteSpec {
    RouteSpec {
        name: String::new(),
        plugins: Default::default(),
        path: PathMatch::Prefix(prefix.into()),
        headers: vec![],
        action: RouteAction::Cluster {
            name: cluster.into(),
            timeout: Some(Duration::from_secs(1)),
            retry: None,
            hash_header: None,
        },
    }
}

pub fn cluster(name: &str, address: SocketAddr) -> ClusterSpec {
    ClusterSpec {
        name: name.into(),
        endpoints: vec![address.to_string()],
        protocol: UpstreamProtocol::Http1,
        connect_timeout: Duration::from_secs(1),
        tls: None,
        lb_policy: Default::default(),
        outlier_detection: None,
        health_check: None,
        circuit_breakers: Default::default(),
    }
}

/// An address nothing listens on (bound, then closed).
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

pub fn plugin(module: &str, configuration: &str) -> PluginSpec {
    let kind = PluginKind::Wasm(WasmSpec {
        root_id: module.into(),
        module: Arc::from(wasp_test_plugins::bytes(module)),
        configuration: configuration.as_bytes().to_vec(),
        vm_id: module.into(),
        ..WasmSpec::default()
    });
    PluginSpec {
        url: format!("file://{}", wasp_test_plugins::path(module).display()),
        ..PluginSpec::new(module, kind)
    }
}

/// `p` with its Wasm side edited by `edit`.
pub fn with_wasm(mut p: PluginSpec, edit: impl FnOnce(&mut WasmSpec)) -> PluginSpec {
    edit(p.wasm_mut().expect("a Wasm plugin"));
    p
}

/// The host the tests run plugins on: 300 ms per callback.
pub fn host_config() -> HostConfig {
    HostConfig {
        pooling_instances: Some(64),
        callback_deadline: Duration::from_millis(300),
        ..HostConfig::default()
    }
}

pub fn start(spec: ProxySpec) -> Proxy {
    start_with(spec, host_config())
}

/// Starts the proxy on a host of its own and waits until it is ready.
pub fn start_with(spec: ProxySpec, config: HostConfig) -> Proxy {
    let host = Host::new(config).unwrap();
    let proxy = Proxy::start(spec, host).unwrap();
    for _ in 0..500 {
        if proxy.is_ready() {
            return proxy;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("proxy not ready");
}

/// The hostcalls plugin under a name and root id of its own, so that its log lines (which
/// carry the root id) can be told apart from other tests'.
pub fn hostcalls_named(name: &str) -> PluginSpec {
    let p = PluginSpec {
        name: name.into(),
        ..plugin("hostcalls", "")
    };
    with_wasm(p, |w| w.root_id = name.into())
}

/// One worker (so "the worker that failed" is every request's), `plugin` on `main`, the
/// `headers` plugin alone on a second listener `other`.
pub fn two_listeners(upstream: SocketAddr, plugin_on_main: PluginSpec) -> ProxySpec {
    let mut spec = spec(upstream, vec![]);
    spec.workers = 1;
    spec.listeners.push(listener("other", routes()));
    let mut on_main = plugin_on_main;
    on_main.listeners = vec!["main".into()];
    let mut headers = plugin("headers", "");
    headers.listeners = vec!["other".into()];
    spec.plugins = vec![on_main, headers];
    spec
}
