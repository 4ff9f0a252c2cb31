//! Lists, watches, resume, bookmarks, 410, cuts, pagination and selectors over real sockets.

mod common;

use std::time::Duration;

use common::{Next, WP, Watch, emulator, get, plugin, summary};
use serde_json::{Value, json};

#[tokio::test]
async fn list_then_watch_sees_added_modified_deleted_in_order() {
    let emu = emulator().await;
    emu.create(plugin("default", "a", json!({}))).unwrap();
    emu.create(plugin("other", "x", json!({}))).unwrap();
    let (code, list) = get(&emu, WP).await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "WasmPluginList");
    assert_eq!(list["apiVersion"], "extensions.istio.io/v1alpha1");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let md = &items[0]["metadata"];
    for f in ["resourceVersion", "uid", "creationTimestamp"] {
        assert!(md[f].is_string(), "{f} in {md}");
    }
    assert_eq!(md["generation"], 1);
    let list_rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(list_rv, emu.resource_version().to_string());

    let mut w = Watch::open(&emu, &format!("{WP}?watch=1&resourceVersion={list_rv}")).await;
    assert_eq!(w.headers["transfer-encoding"], "chunked");
    assert_eq!(w.headers["content-type"], "application/json");
    emu.create(plugin("default", "b", json!({}))).unwrap();
    let mut a = emu
        .get("extensions.istio.io/v1alpha1", "WasmPlugin", "default", "a")
        .unwrap();
    a["spec"]["phase"] = json!("AUTHZ");
    let a2 = emu.replace(a).unwrap();
    assert_eq!(a2["metadata"]["generation"], 2);
    emu.create(plugin("other", "y", json!({}))).unwrap(); // other namespace: not seen
    emu.delete("extensions.istio.io/v1alpha1", "WasmPlugin", "default", "b")
        .unwrap();

    let got: Vec<_> = [w.event().await, w.event().await, w.event().await]
        .iter()
        .map(summary)
        .collect();
    let rv: Vec<u64> = got.iter().map(|g| g.2.parse().unwrap()).collect();
    assert_eq!(
        got.iter()
            .map(|g| (g.0.as_str(), g.1.as_str()))
            .collect::<Vec<_>>(),
        [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    );
    assert!(rv.windows(2).all(|p| p[0] < p[1]), "{rv:?}");
    assert_eq!(
        rv[2],
        emu.resource_version(),
        "DELETED carries the deletion's resourceVersion"
    );
    assert_eq!(w.next(Duration::from_millis(200)).await, Next::Idle);
    assert_eq!(emu.requests("list"), 1);
    assert_eq!(emu.requests("watch"), 1);
}

#[tokio::test]
async fn watch_from_zero_or_unset_starts_with_current_state() {
    let emu = emulator().await;
    emu.create(plugin("default", "a", json!({}))).unwrap();
    emu.create(plugin("default", "b", json!({}))).unwrap();
    for q in ["?watch=true", "?watch=1&resourceVersion=0"] {
        let mut w = Watch::open(&emu, &format!("{WP}{q}")).await;
        let names: Vec<_> = [w.event().await, w.event().await]
            .iter()
            .map(|e| (summary(e).0, summary(e).1))
            .collect();
        assert_eq!(
            names,
            [
                ("ADDED".to_string(), "a".to_string()),
                ("ADDED".to_string(), "b".to_string())
            ]
        );
    }
}

#[tokio::test]
async fn resume_gives_exactly_the_missed_events() {
    let emu = emulator().await;
    let a = emu.create(plugin("default", "a", json!({}))).unwrap();
    let seen = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    emu.create(plugin("default", "b", json!({}))).unwrap();
    emu.delete("extensions.istio.io/v1alpha1", "WasmPlugin", "default", "a")
        .unwrap();
    let mut w = Watch::open(&emu, &format!("{WP}?watch=1&resourceVersion={seen}")).await;
    let got: Vec<_> = [w.event().await, w.event().await]
        .iter()
        .map(|e| (summary(e).0, summary(e).1))
        .collect();
    assert_eq!(
        got,
        [("ADDED".into(), "b".into()), ("DELETED".into(), "a".into())]
    );
    assert_eq!(w.next(Duration::from_millis(200)).await, Next::Idle);
}

#[tokio::test]
async fn bookmarks_carry_only_kind_and_resource_version() {
    let emu = emulator().await;
    emu.create(plugin("default", "a", json!({}))).unwrap();
    let rv = emu.resource_version();
    let mut w = Watch::open(
        &emu,
        &format!("{WP}?watch=1&resourceVersion={rv}&allowWatchBookmarks=true"),
    )
    .await;
    let mut plain = Watch::open(&emu, &format!("{WP}?watch=1&resourceVersion={rv}")).await;
    emu.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}})).unwrap();
    emu.bookmark();
    let b = w.event().await;
    assert_eq!(
        b,
        json!({"type": "BOOKMARK", "object": {"kind": "WasmPlugin", "apiVersion": "extensions.istio.io/v1alpha1",
        "metadata": {"resourceVersion": emu.resource_version().to_string()}}})
    );
    assert_eq!(
        plain.next(Duration::from_millis(200)).await,
        Next::Idle,
        "no bookmarks unless allowed"
    );
}

#[tokio::test]
async fn periodic_bookmarks_and_send_initial_events() {
    let opts = wasp_kube_emulator::Options {
        bookmark_interval: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    let emu = wasp_kube_emulator::KubeEmulator::start(opts).await.unwrap();
    emu.create(plugin("default", "a", json!({}))).unwrap();
    let mut w = Watch::open(&emu, &format!("{WP}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")).await;
    assert_eq!(summary(&w.event().await).0, "ADDED");
    let end = w.event().await;
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let tick = w.event().await;
    assert_eq!(tick["type"], "BOOKMARK");
    assert!(tick["object"]["metadata"].get("annotations").is_none());
}

#[tokio::test]
async fn compacted_resource_version_gives_410_error_event_then_end() {
    let emu = emulator().await;
    let a = emu.create(plugin("default", "a", json!({}))).unwrap();
    let old = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    emu.create(plugin("default", "b", json!({}))).unwrap();
    emu.compact();
    let floor = emu.resource_version();
    let mut w = Watch::open(&emu, &format!("{WP}?watch=1&resourceVersion={old}")).await;
    let e = w.event().await;
    assert_eq!(e["type"], "ERROR");
    assert_eq!(
        e["object"],
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("too old resource version: {old} ({floor})"), "reason": "Expired", "code": 410})
    );
    assert_eq!(w.next(Duration::from_secs(2)).await, Next::End);
    // From the compaction point on, watches work.
    let mut ok = Watch::open(&emu, &format!("{WP}?watch=1&resourceVersion={floor}")).await;
    emu.create(plugin("default", "c", json!({}))).unwrap();
    assert_eq!(summary(&ok.event().await).1, "c");
}

#[tokio::test]
async fn drop_watches_cuts_the_stream_mid_body() {
    let emu = emulator().await;
    let mut w = Watch::open(&emu, &format!("{WP}?watch=1")).await;
    emu.create(plugin("default", "a", json!({}))).unwrap();
    assert_eq!(summary(&w.event().await).1, "a");
    emu.drop_watches();
    match w.next(Duration::from_secs(2)).await {
        Next::Broken(_) => {}
        other => panic!("expected a broken stream, got {other:?}"),
    }
}

#[tokio::test]
async fn timeout_seconds_ends_the_stream_cleanly() {
    let emu = emulator().await;
    let mut w = Watch::open(&emu, &format!("{WP}?watch=1&timeoutSeconds=1")).await;
    let t = std::time::Instant::now();
    assert_eq!(w.next(Duration::from_secs(3)).await, Next::End);
    assert!(t.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn pagination_is_a_consistent_snapshot_and_expires_after_compaction() {
    let emu = emulator().await;
    for n in ["a", "b", "c", "d", "e"] {
        emu.create(plugin("default", n, json!({}))).unwrap();
    }
    let (_, p1) = get(&emu, &format!("{WP}?limit=2")).await;
    let rv = p1["metadata"]["resourceVersion"].clone();
    assert_eq!(p1["metadata"]["remainingItemCount"], 3);
    let tok = p1["metadata"]["continue"].as_str().unwrap().to_string();
    emu.delete("extensions.istio.io/v1alpha1", "WasmPlugin", "default", "c")
        .unwrap();
    emu.create(plugin("default", "f", json!({}))).unwrap();
    let (_, p2) = get(&emu, &format!("{WP}?limit=2&continue={tok}")).await;
    assert_eq!(
        p2["metadata"]["resourceVersion"], rv,
        "same snapshot across chunks"
    );
    let tok2 = p2["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, p3) = get(&emu, &format!("{WP}?limit=2&continue={tok2}")).await;
    let names = |v: &Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        [names(&p1), names(&p2), names(&p3)].concat(),
        ["a", "b", "c", "d", "e"]
    );
    assert!(p3["metadata"].get("continue").is_none());
    emu.compact();
    let (code, st) = get(&emu, &format!("{WP}?limit=2&continue={tok}")).await;
    assert_eq!(code, 410);
    assert_eq!(st["reason"], "Expired");
    assert_eq!(st["code"], 410);
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists_and_watches() {
    let emu = emulator().await;
    emu.create(plugin("default", "a", json!({"app": "x", "tier": "edge"})))
        .unwrap();
    emu.create(plugin("default", "b", json!({"app": "y"})))
        .unwrap();
    let names = |v: &Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&get(&emu, &format!("{WP}?labelSelector=app%3Dx")).await.1),
        ["a"]
    );
    assert_eq!(
        names(&get(&emu, &format!("{WP}?labelSelector=app!=x")).await.1),
        ["b"]
    );
    assert_eq!(
        names(
            &get(&emu, &format!("{WP}?labelSelector=app+in+(x,y),!tier"))
                .await
                .1
        ),
        ["b"]
    );
    assert_eq!(
        names(
            &get(&emu, &format!("{WP}?fieldSelector=metadata.name%3Db"))
                .await
                .1
        ),
        ["b"]
    );
    let (code, st) = get(&emu, &format!("{WP}?fieldSelector=spec.url%3Dx")).await;
    assert_eq!((code, st["reason"].as_str()), (400, Some("BadRequest")));

    let rv = emu.resource_version();
    let mut w = Watch::open(
        &emu,
        &format!("{WP}?watch=1&resourceVersion={rv}&labelSelector=app%3Dx"),
    )
    .await;
    let mut b = emu
        .get("extensions.istio.io/v1alpha1", "WasmPlugin", "default", "b")
        .unwrap();
    b["metadata"]["labels"]["app"] = json!("x");
    let mut b = emu.replace(b).unwrap(); // enters the selector: ADDED
    b["metadata"]["labels"]["app"] = json!("z");
    emu.replace(b).unwrap(); // leaves it: DELETED
    let got: Vec<_> = [w.event().await, w.event().await]
        .iter()
        .map(|e| (summary(e).0, summary(e).1))
        .collect();
    assert_eq!(
        got,
        [("ADDED".into(), "b".into()), ("DELETED".into(), "b".into())]
    );
}

#[tokio::test]
async fn one_resource_version_counter_across_kinds() {
    let emu = emulator().await;
    let a = emu.create(plugin("default", "a", json!({}))).unwrap();
    let s = emu.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pull", "namespace": "default"}, "type": "kubernetes.io/dockerconfigjson"})).unwrap();
    let e = emu.create(json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter", "metadata": {"name": "f", "namespace": "default"}})).unwrap();
    let rv = |v: &Value| {
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(rv(&a) < rv(&s) && rv(&s) < rv(&e));
    assert!(
        s["metadata"].get("generation").is_none(),
        "Secrets have no generation"
    );
    let (_, l) = get(&emu, "/api/v1/namespaces/default/secrets").await;
    assert_eq!(
        (l["kind"].as_str(), l["apiVersion"].as_str()),
        (Some("SecretList"), Some("v1"))
    );
    assert_eq!(l["metadata"]["resourceVersion"], rv(&e).to_string());
    let (_, all) = get(&emu, "/apis/networking.istio.io/v1alpha3/envoyfilters").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let (_, typed) = get(
        &emu,
        "/api/v1/namespaces/default/secrets?fieldSelector=type%3Dkubernetes.io/dockerconfigjson",
    )
    .await;
    assert_eq!(typed["items"].as_array().unwrap().len(), 1);
}
