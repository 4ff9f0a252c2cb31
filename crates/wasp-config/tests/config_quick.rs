//! The one-line try-out (`wasp_config::quick`): with and without an upstream, and its errors.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use common::{Dir, MODULE};
use wasp_config::quick;
use wasp_config::spec::{FailStrategy, PathMatch, RouteAction, TrafficDirection, UpstreamProtocol};

#[test]
fn quick_with_upstream() {
    let dir = Dir::new();
    let p1 = dir.path().join("hello.wasm");
    let p2 = dir.path().join("other.wasm");
    let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let loaded = quick(
        listen,
        Some("127.0.0.1:9000"),
        &[p1.clone(), p2],
        Some("cfg"),
    )
    .unwrap();
    let spec = &loaded.spec;
    assert_eq!(loaded.source, PathBuf::new());
    assert_eq!(spec.admin, None);
    assert_eq!(
        spec.workers,
        std::thread::available_parallelism().unwrap().get()
    );
    assert_eq!(spec.listeners.len(), 1);
    let l = &spec.listeners[0];
    assert_eq!(
        (l.name.as_str(), l.address, l.direction),
        ("main", listen, TrafficDirection::Inbound)
    );
    assert_eq!(l.routes.len(), 1);
    assert!(matches!(&l.routes[0].path, PathMatch::Prefix(p) if p == "/"));
    assert!(matches!(&l.routes[0].action, RouteAction::Cluster { name, .. } if name == "upstream"));
    assert_eq!(spec.clusters.len(), 1);
    assert_eq!(spec.clusters[0].name, "upstream");
    assert_eq!(spec.clusters[0].endpoints, ["127.0.0.1:9000"]);
    assert_eq!(spec.clusters[0].protocol, UpstreamProtocol::Http1);
    let names: Vec<&str> = spec.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["hello", "other"]);
    let hello = &spec.plugins[0];
    let hello_wasm = hello.wasm().unwrap();
    assert_eq!(hello.root_id(), "hello");
    assert_eq!(hello_wasm.vm_id, "");
    assert_eq!(hello.fail_strategy, FailStrategy::FailClose);
    assert_eq!(hello_wasm.configuration, b"cfg");
    assert_eq!(&*hello_wasm.module, MODULE);
    assert_eq!(hello.url, format!("file://{}", p1.display()));
}

#[test]
fn quick_without_upstream() {
    let dir = Dir::new();
    let listen: SocketAddr = "[::1]:0".parse().unwrap();
    let spec = quick(listen, None, &[dir.path().join("hello.wasm")], None)
        .unwrap()
        .spec;
    assert!(spec.clusters.is_empty());
    assert!(matches!(
        &spec.listeners[0].routes[0].action,
        RouteAction::Direct { status: 200, body } if body == "hello from wasp\n"
    ));
    assert!(spec.plugins[0].wasm().unwrap().configuration.is_empty());
    let spec = quick(listen, None, &[], None).unwrap().spec;
    assert!(spec.plugins.is_empty());
}

#[test]
fn quick_errors() {
    let dir = Dir::new();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let e = quick(listen, Some("http://127.0.0.1:9000"), &[], None).unwrap_err();
    assert!(
        e.to_string().starts_with("--upstream: invalid endpoint"),
        "{e}"
    );
    let missing = dir.path().join("missing.wasm");
    let e = quick(listen, None, std::slice::from_ref(&missing), None).unwrap_err();
    assert_eq!(e.file(), None);
    assert!(
        e.to_string().starts_with(&format!(
            "--plugin: cannot read {}: No such file",
            missing.display()
        )),
        "{e}"
    );
    let p = dir.path().join("hello.wasm");
    let e = quick(listen, None, &[p.clone(), p], None).unwrap_err();
    assert!(
        e.to_string().contains("two plugins are named `hello`"),
        "{e}"
    );
}
