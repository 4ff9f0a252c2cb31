//! TCP (network) stream contexts, driven as Envoy's network Wasm filter drives them, with a
//! network plugin compiled from Rust (tests/plugins/network): the callback order, the
//! DOWNSTREAM_DATA / UPSTREAM_DATA buffers read and rewritten, StopIteration, closing the
//! connection, properties and filter state.

mod support;

use std::sync::Arc;

use support::*;
use wasp_host::{
    ConnectionProperties, Effect, NetworkAction, PeerType, PropertyValue, StreamType, TcpConnection,
};

struct Addresses;

impl ConnectionProperties for Addresses {
    fn property(&self, path: &[&[u8]], _: &TcpConnection) -> Option<PropertyValue> {
        match path {
            [b"source", b"address"] => Some("10.0.0.1:5000".into()),
            _ => None,
        }
    }
}

#[test]
fn callbacks_run_in_envoys_order_and_see_the_bytes() {
    let mut f = start("network", "upper tag-upstream");
    let conn = TcpConnection::shared(Some(Arc::new(Addresses)));
    let (ctx, action) = f.vm.create_tcp_stream(f.root, conn.clone()).unwrap();
    assert_eq!(action, NetworkAction::Continue);

    conn.lock().unwrap().downstream_data = b"hello".to_vec();
    assert_eq!(
        f.vm.on_downstream_data(ctx, false).unwrap(),
        NetworkAction::Continue
    );
    assert_eq!(
        conn.lock().unwrap().downstream_data,
        b"HELLO",
        "upper-cased in place"
    );

    conn.lock().unwrap().upstream_data = b"hi".to_vec();
    assert_eq!(
        f.vm.on_upstream_data(ctx, true).unwrap(),
        NetworkAction::Continue
    );
    assert_eq!(conn.lock().unwrap().upstream_data, b"[wasp]hi", "prepended");

    f.vm.on_downstream_connection_close(ctx, PeerType::Remote)
        .unwrap();
    f.vm.on_upstream_connection_close(ctx, PeerType::Unknown)
        .unwrap();
    f.vm.finish_tcp_stream(ctx).unwrap();
    let logs = f.recorder.logs();
    let at = |needle: &str| {
        logs.iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("{needle} not logged: {logs:#?}"))
    };
    let order = [
        at("new_connection"),
        at("downstream_data size=5 eos=false data=\"hello\""),
        at("upstream_data size=2 eos=true data=\"hi\""),
        at("downstream_close peer=2"),
        at("upstream_close peer=0"),
        at("log down=5 up=2"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{logs:#?}");
    // The context is gone.
    assert!(f.vm.on_downstream_data(ctx, false).is_err());
}

#[test]
fn stop_iteration_holds_the_bytes() {
    let mut f = start("network", "hold-line");
    let conn = TcpConnection::shared(None);
    let (ctx, _) = f.vm.create_tcp_stream(f.root, conn.clone()).unwrap();
    conn.lock().unwrap().downstream_data = b"no newline".to_vec();
    assert_eq!(
        f.vm.on_downstream_data(ctx, false).unwrap(),
        NetworkAction::StopIteration
    );
    conn.lock()
        .unwrap()
        .downstream_data
        .extend_from_slice(b" yet\n");
    assert_eq!(
        f.vm.on_downstream_data(ctx, false).unwrap(),
        NetworkAction::Continue
    );
    f.recorder
        .assert_logged("downstream_data size=15 eos=false");
}

#[test]
fn the_plugin_can_close_the_connection() {
    let mut f = start("network", "close-on=BYE");
    let conn = TcpConnection::shared(None);
    let (ctx, _) = f.vm.create_tcp_stream(f.root, conn.clone()).unwrap();
    conn.lock().unwrap().downstream_data = b"ok BYE".to_vec();
    assert_eq!(
        f.vm.on_downstream_data(ctx, false).unwrap(),
        NetworkAction::StopIteration
    );
    let effects = f.vm.take_effects();
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::Close { context, stream: StreamType::Downstream } if *context == ctx
        )),
        "{effects:?}"
    );
}

#[test]
fn stop_from_new_connection_is_reported() {
    let mut f = start("network", "stop-new");
    let (_, action) =
        f.vm.create_tcp_stream(f.root, TcpConnection::shared(None))
            .unwrap();
    assert_eq!(action, NetworkAction::StopIteration);
}
