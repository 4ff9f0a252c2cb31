//! OCI delivery against a real registry (CNCF distribution 2.8, Debian's `docker-registry`).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use support::*;
use wasp_delivery::{Credentials, FetchError, FetchRequest, PullPolicy, PushFormat};

fn req(url: &str) -> FetchRequest {
    let mut r = FetchRequest::parse(url).unwrap();
    r.resource = "WasmPlugin apps/test".into();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_pull_every_layout() {
    let reg = Registry::start(RegistryAuth::Anonymous);
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[&reg.host]);
    for (name, format) in [
        ("oci", PushFormat::Oci),
        ("docker", PushFormat::Docker),
        ("oci-image", PushFormat::OciImage),
        ("wasm-to-oci", PushFormat::WasmToOci),
        ("cncf", PushFormat::Cncf),
    ] {
        let wasm = module(name);
        let url = reg.url(&format!("layouts/{name}:v1"));
        let digest = f.push(&wasm, &url, format, None).await.unwrap();
        let got = f
            .fetch(&req(&url))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&*got.bytes, &wasm[..], "{name}");
        assert_eq!(got.digest, sha256_hex(&wasm), "{name}");
        assert_eq!(
            got.manifest_digest.as_deref(),
            Some(digest.as_str()),
            "{name}"
        );
        assert!(!got.cache_hit, "{name}");
        assert_eq!(got.source_url, url, "{name}");
    }
    let stats = f.stats();
    assert_eq!(
        (stats.success, stats.cache_misses, stats.cache_entries),
        (5, 5, 5)
    );
}

/// istio's `TestImagePullPolicy`: (1) default policy pulls the tag; (2) the tag moves, and
/// IfNotPresent still serves the cached module; (3) so does the default policy (the tag is not
/// `latest`); (4) Always resolves the tag again and gets the new module.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_pull_policy_scenario() {
    let reg = Registry::start(RegistryAuth::Anonymous);
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[&reg.host]);
    let url = reg.url("header-injector:0.0.1");
    let (v1, v2) = (module("0.0.1"), module("0.0.2"));
    f.push(&v1, &url, PushFormat::Docker, None).await.unwrap();

    let got = f.fetch(&req(&url)).await.unwrap();
    assert_eq!(&*got.bytes, &v1[..]);
    assert!(!got.cache_hit);

    f.push(&v2, &url, PushFormat::Docker, None).await.unwrap();
    let mut r = req(&url);
    r.pull_policy = PullPolicy::IfNotPresent;
    let got = f.fetch(&r).await.unwrap();
    assert_eq!(&*got.bytes, &v1[..]);
    assert!(got.cache_hit);

    let got = f.fetch(&req(&url)).await.unwrap();
    assert_eq!(&*got.bytes, &v1[..]);
    assert!(got.cache_hit);

    r.pull_policy = PullPolicy::Always;
    let got = f.fetch(&r).await.unwrap();
    assert_eq!(&*got.bytes, &v2[..]);
    assert!(!got.cache_hit);

    // Always again with the tag unchanged: a manifest check, the cached module.
    let got = f.fetch(&r).await.unwrap();
    assert_eq!(&*got.bytes, &v2[..]);
    assert!(got.cache_hit);
}

/// `:latest` written out defaults to Always; an untagged reference does not (Istio's literal rule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_defaults_to_always_untagged_does_not() {
    let reg = Registry::start(RegistryAuth::Anonymous);
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[&reg.host]);
    let latest = reg.url("plugin:latest");
    let untagged = reg.url("plugin");
    f.push(&module("a"), &latest, PushFormat::Oci, None)
        .await
        .unwrap();
    assert_eq!(
        &*f.fetch(&req(&latest)).await.unwrap().bytes,
        &module("a")[..]
    );
    assert_eq!(
        &*f.fetch(&req(&untagged)).await.unwrap().bytes,
        &module("a")[..]
    );

    f.push(&module("b"), &latest, PushFormat::Oci, None)
        .await
        .unwrap();
    let got = f.fetch(&req(&untagged)).await.unwrap();
    assert_eq!(&*got.bytes, &module("a")[..], "untagged is IfNotPresent");
    assert!(got.cache_hit);
    let got = f.fetch(&req(&latest)).await.unwrap();
    assert_eq!(&*got.bytes, &module("b")[..], ":latest is Always");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_pinning() {
    let mut reg = Registry::start(RegistryAuth::Anonymous);
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[&reg.host]);
    let url = reg.url("pinned:1.0");
    let wasm = module("pinned");
    let digest = f
        .push(&wasm, &url, PushFormat::OciImage, None)
        .await
        .unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap();

    // The sha256 field is the manifest digest for OCI (not the module's hash).
    let mut r = req(&url);
    r.sha256 = Some(sha256_hex(&wasm));
    match f.fetch(&r).await {
        Err(e @ FetchError::ChecksumMismatch { .. }) => {
            let m = e.to_string();
            assert!(m.contains(&sha256_hex(&wasm)) && m.contains(&digest), "{m}");
            assert!(
                m.contains("WasmPlugin apps/test") && m.contains(&url),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    r.sha256 = Some(hex.to_string());
    assert_eq!(&*f.fetch(&r).await.unwrap().bytes, &wasm[..]);

    // @sha256: in the URL pins too; both given and different is an error before any request.
    let by_digest = reg.url(&format!("pinned@{digest}"));
    assert_eq!(&*f.fetch(&req(&by_digest)).await.unwrap().bytes, &wasm[..]);
    let mut r = req(&by_digest);
    r.sha256 = Some("0".repeat(64));
    assert!(matches!(
        f.fetch(&r).await,
        Err(FetchError::ChecksumMismatch { .. })
    ));

    // A digest the registry does not have: the registry's own error text in the message.
    let missing = reg.url(&format!("pinned@sha256:{}", "1".repeat(64)));
    match f.fetch(&req(&missing)).await {
        Err(e @ FetchError::Status { status: 404, .. }) => {
            assert!(e.to_string().contains("MANIFEST_UNKNOWN"), "{e}");
        }
        other => panic!("{other:?}"),
    }

    // Pinned content is served from the cache even with the registry gone, whatever the policy.
    reg.stop();
    let mut r = req(&reg.url("pinned:other-tag"));
    r.sha256 = Some(hex.to_string());
    r.pull_policy = PullPolicy::Always;
    let got = f.fetch(&r).await.unwrap();
    assert!(got.cache_hit);
    assert_eq!(&*got.bytes, &wasm[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_with_pull_secret() {
    let reg = Registry::start(RegistryAuth::Htpasswd {
        user: "user".into(),
        pass: "passwd".into(),
    });
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[&reg.host]);
    let url = reg.url("private/plugin:1");
    let wasm = module("private");
    let creds = Credentials::basic("user", "passwd");
    f.push(&wasm, &url, PushFormat::Oci, Some(&creds))
        .await
        .unwrap();

    // Anonymous: refused, and the message says so.
    match f.fetch(&req(&url)).await {
        Err(e @ FetchError::Unauthorized { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("none were given") || m.contains("no credentials"),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A secret with the wrong password: 401 named.
    let mut r = req(&url);
    r.pull_secret = Some(
        Credentials::from_secret_yaml(&secret_yaml(&reg.host, "user", "wrong"), "apps").unwrap(),
    );
    match f.fetch(&r).await {
        Err(e @ FetchError::Unauthorized { .. }) => {
            let m = e.to_string();
            assert!(m.contains("401") && m.contains("refused"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // A secret for another registry: an error, not an anonymous pull.
    r.pull_secret = Some(
        Credentials::from_secret_yaml(&secret_yaml("ghcr.io", "user", "passwd"), "apps").unwrap(),
    );
    match f.fetch(&r).await {
        Err(e @ FetchError::Credentials { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("no entry for registry") && m.contains(&reg.host),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The right secret.
    r.pull_secret = Some(
        Credentials::from_secret_yaml(&secret_yaml(&reg.host, "user", "passwd"), "apps").unwrap(),
    );
    assert_eq!(&*f.fetch(&r).await.unwrap().bytes, &wasm[..]);
    assert_eq!(f.stats().failures_of("unauthorized"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_flow() {
    let issuer = Arc::new(TokenIssuer::new());
    let token_requests = Arc::new(AtomicUsize::new(0));
    let (iss, count) = (issuer.clone(), token_requests.clone());
    let expected = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "user:passwd")
    );
    let tokens = TestServer::start(move |seen| {
        count.fetch_add(1, Ordering::SeqCst);
        let auth = seen
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if auth != Some(expected.as_str()) {
            return Reply::status(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
            );
        }
        assert_eq!(
            query_param(&seen.target, "service").as_deref(),
            Some(TokenIssuer::SERVICE)
        );
        let scope = query_param(&seen.target, "scope").unwrap_or_default();
        let t = iss.issue(&scope);
        Reply::ok(serde_json::json!({"token": t, "access_token": t}).to_string())
    })
    .await;
    let reg = Registry::start(RegistryAuth::Token {
        realm: tokens.url("/token"),
        issuer,
    });
    let token_host = tokens.addr.to_string();
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[&reg.host, &token_host]);
    let url = reg.url("bearer/plugin:1");
    let wasm = module("bearer");
    let creds = Credentials::basic("user", "passwd");
    f.push(&wasm, &url, PushFormat::WasmToOci, Some(&creds))
        .await
        .unwrap_or_else(|e| panic!("{e}\nregistry log:\n{}", reg.log()));

    let mut r = req(&url);
    r.pull_secret = Some(
        Credentials::from_secret_yaml(&secret_yaml(&reg.host, "user", "passwd"), "apps").unwrap(),
    );
    let before = token_requests.load(Ordering::SeqCst);
    let got = f.fetch(&r).await.unwrap();
    assert_eq!(&*got.bytes, &wasm[..]);
    // One token for the manifest and the blob of this fetch.
    assert_eq!(token_requests.load(Ordering::SeqCst) - before, 1);

    r.pull_secret = Some(
        Credentials::from_secret_yaml(&secret_yaml(&reg.host, "user", "nope"), "apps").unwrap(),
    );
    r.pull_policy = PullPolicy::Always;
    match f.fetch(&r).await {
        Err(e @ FetchError::Unauthorized { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("token service") && m.contains("401") && m.contains("bad credentials"),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// A bearer realm on plain http is only followed when that host is listed as insecure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_realm_must_be_listed() {
    let issuer = Arc::new(TokenIssuer::new());
    let tokens = TestServer::start(|_| Reply::status(500, "")).await;
    let reg = Registry::start(RegistryAuth::Token {
        realm: tokens.url("/token"),
        issuer,
    });
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[&reg.host]);
    match f.fetch(&req(&reg.url("x/y:1"))).await {
        Err(e @ FetchError::Unauthorized { .. }) => {
            assert!(
                e.to_string().contains("not in the insecure registries"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(tokens.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_down() {
    let mut reg = Registry::start(RegistryAuth::Anonymous);
    let url = reg.url("gone:1");
    reg.stop();
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[&reg.host]);
    match f.fetch(&req(&url)).await {
        Err(e @ FetchError::Download { .. }) => {
            let m = e.to_string();
            assert!(m.contains(&url) && m.contains("5 attempts"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.stats().failures_of("download_failure"), 1);
}

/// Not listed as insecure → HTTPS, which a plain-HTTP registry cannot answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_unless_listed() {
    let reg = Registry::start(RegistryAuth::Anonymous);
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[]);
    match f.fetch(&req(&reg.url("p:1"))).await {
        Err(e @ FetchError::Download { .. }) => {
            assert!(
                e.to_string().contains(&format!("https://{}", reg.host)),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_layer_is_named() {
    let reg = Registry::start(RegistryAuth::Anonymous);
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[&reg.host]);
    let url = reg.url("corrupt:1");
    let wasm = module("to be tampered with");
    f.push(&wasm, &url, PushFormat::WasmToOci, None)
        .await
        .unwrap();
    let layer = format!("sha256:{}", sha256_hex(&wasm));
    let path = reg.blob_path(&layer);
    let mut bad = std::fs::read(&path).unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    std::fs::write(&path, bad).unwrap();
    match f.fetch(&req(&url)).await {
        Err(e @ FetchError::BlobDigest { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains(&layer) && m.contains("application/vnd.wasm.content.layer.v1+wasm"),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.stats().failures_of("corrupted_blob"), 1);
    assert_eq!(f.stats().cache_entries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_module_over_oci() {
    let reg = Registry::start(RegistryAuth::Anonymous);
    let cache = tempfile::tempdir().unwrap();
    let mut cfg = config(cache.path(), &[&reg.host]);
    cfg.max_module_bytes = 4096;
    let f = wasp_delivery::Fetcher::new(cfg).unwrap();
    let big = module_with_payload(&vec![7u8; 10_000]);
    for (name, format) in [("raw", PushFormat::Cncf), ("targz", PushFormat::Docker)] {
        let url = reg.url(&format!("big/{name}:1"));
        f.push(&big, &url, format, None).await.unwrap();
        match f.fetch(&req(&url)).await {
            Err(e @ FetchError::TooLarge { limit: 4096, .. }) => {
                assert!(e.to_string().contains("4096"), "{e}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_repository_and_not_wasm() {
    let reg = Registry::start(RegistryAuth::Anonymous);
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[&reg.host]);
    match f.fetch(&req(&reg.url("nothing/here:1"))).await {
        Err(e @ FetchError::Status { status: 404, .. }) => {
            assert!(
                e.to_string().contains("NAME_UNKNOWN")
                    || e.to_string().contains("MANIFEST_UNKNOWN"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        f.push(b"not wasm", &reg.url("x:1"), PushFormat::Oci, None)
            .await,
        Err(FetchError::InvalidModule { .. })
    ));
}
