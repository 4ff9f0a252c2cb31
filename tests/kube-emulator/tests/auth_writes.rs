//! 401 and 403 bodies, 404 Status, status subresource writes, Events, stop/restart.

mod common;

use common::{WP, Watch, emulator, get, json_body, plugin, send};
use serde_json::json;
use wasp_kube_emulator::Rule;

#[tokio::test]
async fn missing_or_wrong_token_is_401_status() {
    let emu = emulator().await;
    for token in [None, Some("nope")] {
        let r = send(&emu, "GET", WP, token, None).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            json_body(r.body).await,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        );
    }
    assert_eq!(
        emu.requests("list"),
        0,
        "unauthenticated requests are not counted as lists"
    );
}

#[tokio::test]
async fn rbac_rules_give_403_with_the_apiservers_message() {
    let emu = emulator().await;
    let user = "system:serviceaccount:istio-system:wasp";
    emu.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pull", "namespace": "default"}})).unwrap();
    emu.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "other", "namespace": "default"}})).unwrap();
    emu.set_rules(vec![
        Rule::allow(&["list", "watch"], "extensions.istio.io", &["wasmplugins"])
            .in_namespaces(&["default"]),
        Rule::allow(&["get"], "", &["secrets"]).names(&["pull"]),
    ]);
    assert_eq!(get(&emu, WP).await.0, 200);
    assert_eq!(
        get(&emu, "/api/v1/namespaces/default/secrets/pull").await.0,
        200
    );

    let (code, st) = get(&emu, "/api/v1/namespaces/default/secrets/other").await;
    assert_eq!(code, 403);
    assert_eq!(
        st,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("secrets \"other\" is forbidden: User \"{user}\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\""),
        "reason": "Forbidden", "details": {"name": "other", "kind": "secrets"}, "code": 403})
    );

    let (code, st) = get(&emu, "/api/v1/namespaces/default/secrets").await;
    assert_eq!(code, 403, "a rule with resourceNames never allows list");
    assert_eq!(
        st["message"],
        format!(
            "secrets is forbidden: User \"{user}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
        )
    );

    let (code, st) = get(&emu, "/apis/extensions.istio.io/v1alpha1/wasmplugins").await;
    assert_eq!(code, 403);
    assert_eq!(
        st["message"],
        format!(
            "wasmplugins.extensions.istio.io is forbidden: User \"{user}\" cannot list resource \"wasmplugins\" in API group \"extensions.istio.io\" at the cluster scope"
        )
    );

    let r = send(
        &emu,
        "PATCH",
        &format!("{WP}/x/status"),
        Some(emu.token()),
        Some(("application/merge-patch+json", json!({}))),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        json_body(r.body).await["message"],
        format!(
            "wasmplugins.extensions.istio.io \"x\" is forbidden: User \"{user}\" cannot patch resource \"wasmplugins/status\" in API group \"extensions.istio.io\" in the namespace \"default\""
        )
    );
}

#[tokio::test]
async fn get_missing_object_is_404_status() {
    let emu = emulator().await;
    let (code, st) = get(&emu, &format!("{WP}/nope")).await;
    assert_eq!(code, 404);
    assert_eq!(
        st,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "wasmplugins.extensions.istio.io \"nope\" not found", "reason": "NotFound",
        "details": {"name": "nope", "group": "extensions.istio.io", "kind": "wasmplugins"}, "code": 404})
    );
    emu.create(plugin("default", "a", json!({}))).unwrap();
    let (code, obj) = get(&emu, &format!("{WP}/a")).await;
    assert_eq!((code, obj["kind"].as_str()), (200, Some("WasmPlugin")));
    assert_eq!(emu.requests("get"), 2);
}

#[tokio::test]
async fn status_subresource_writes_are_recorded_and_watched() {
    let emu = emulator().await;
    let a = emu.create(plugin("default", "a", json!({}))).unwrap();
    let rv = emu.resource_version();
    let mut w = Watch::open(&emu, &format!("{WP}?watch=1&resourceVersion={rv}")).await;
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}, "spec": {"url": "ignored"}});
    let r = send(
        &emu,
        "PATCH",
        &format!("{WP}/a/status"),
        Some(emu.token()),
        Some(("application/merge-patch+json", patch)),
    )
    .await;
    assert_eq!(r.status, 200);
    let stored = json_body(r.body).await;
    assert_eq!(stored["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(
        stored["spec"], a["spec"],
        "the status subresource ignores spec"
    );
    assert_eq!(
        stored["metadata"]["generation"], 1,
        "status writes do not bump generation"
    );
    let ev = w.event().await;
    assert_eq!(ev["type"], "MODIFIED");
    assert_eq!(ev["object"]["status"]["conditions"][0]["status"], "True");

    // PUT with a stale resourceVersion: 409 Conflict.
    let mut stale = a.clone();
    stale["status"] = json!({"x": 1});
    let r = send(
        &emu,
        "PUT",
        &format!("{WP}/a/status"),
        Some(emu.token()),
        Some(("application/json", stale)),
    )
    .await;
    assert_eq!(r.status, 409);
    assert_eq!(json_body(r.body).await["reason"], "Conflict");
    let r = send(
        &emu,
        "PATCH",
        &format!("{WP}/a/status"),
        Some(emu.token()),
        Some(("application/json-patch+json", json!([]))),
    )
    .await;
    assert_eq!(r.status, 415);
    assert_eq!(emu.status_writes().len(), 1);
    assert_eq!(emu.status_writes()[0].resource, "wasmplugins/status");
}

#[tokio::test]
async fn events_posted_are_stored_for_assertions() {
    let emu = emulator().await;
    let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "a."},
        "involvedObject": {"kind": "WasmPlugin", "name": "a", "namespace": "default"}, "reason": "Failed", "type": "Warning"});
    let r = send(
        &emu,
        "POST",
        "/api/v1/namespaces/default/events",
        Some(emu.token()),
        Some(("application/json", core)),
    )
    .await;
    assert_eq!(r.status, 201);
    let created = json_body(r.body).await;
    assert!(
        created["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("a.")
    );
    // events.k8s.io/v1 is validated as the apiserver does: a bare one is refused, field by field.
    let bare = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "b"}, "reason": "Loaded", "note": "ok"});
    let r = send(
        &emu,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        Some(emu.token()),
        Some(("application/json", bare)),
    )
    .await;
    assert_eq!(r.status, 422);
    let message = json_body(r.body).await["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("eventTime: Required value"), "{message}");
    assert!(
        message.contains("reportingController: Required value"),
        "{message}"
    );
    let new = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "b"},
        "eventTime": "2026-12-06T10:00:00.000000Z", "reportingController": "wasp.io/proxy",
        "reportingInstance": "pod-1", "action": "LoadPlugin", "reason": "Loaded", "type": "Normal",
        "note": "ok", "regarding": {"kind": "WasmPlugin", "namespace": "default", "name": "a"}});
    let r = send(
        &emu,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        Some(emu.token()),
        Some(("application/json", new)),
    )
    .await;
    assert_eq!(r.status, 201);
    let evs = emu.events();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0]["reason"], "Failed");
    assert_eq!(evs[1]["apiVersion"], "events.k8s.io/v1");
    assert_eq!(emu.requests("create"), 3); // the refused one was a request too
}

#[tokio::test]
async fn stop_and_restart_on_the_same_port() {
    let emu = emulator().await;
    emu.create(plugin("default", "a", json!({}))).unwrap();
    let mut w = Watch::open(&emu, &format!("{WP}?watch=1")).await;
    assert_eq!(w.event().await["type"], "ADDED");
    let addr = emu.addr();
    emu.stop().await;
    assert!(matches!(
        w.next(std::time::Duration::from_secs(2)).await,
        common::Next::Broken(_) | common::Next::End
    ));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens while stopped"
    );
    emu.restart().await.unwrap();
    assert_eq!(emu.addr(), addr);
    let (code, l) = get(&emu, WP).await;
    assert_eq!((code, l["items"].as_array().unwrap().len()), (200, 1));
}

#[tokio::test]
async fn plain_http_and_discovery() {
    let emu = emulator().await;
    let url = emu.plain_url().unwrap();
    let addr = url.trim_start_matches("http://");
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut s, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/apis/extensions.istio.io/v1alpha1")
        .header("host", addr)
        .header("authorization", format!("Bearer {}", emu.token()))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let r = s.send_request(req).await.unwrap();
    assert_eq!(r.status(), 200);
    let v = json_body(r.into_body()).await;
    assert_eq!(v["kind"], "APIResourceList");
    let names: Vec<_> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"wasmplugins") && names.contains(&"trafficextensions/status"),
        "{names:?}"
    );
}
