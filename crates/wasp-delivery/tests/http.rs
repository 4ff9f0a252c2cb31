//! HTTP(S) delivery against an in-process server.

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;
use wasp_delivery::{FetchError, FetchRequest, PullPolicy};

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// A tar whose entry names are written raw, so `..` and absolute names can be built.
fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

async fn serve(body: Vec<u8>) -> TestServer {
    TestServer::start(move |_| Reply::ok(body.clone())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unboxes_gzip_tar_and_tar_gz() {
    let wasm = module("boxed");
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[]);
    let bodies = [
        ("plain", wasm.clone()),
        ("gz", gzip(&wasm)),
        ("tar", tar(&[("plugin.wasm", &wasm)])),
        (
            "tar.gz",
            gzip(&tar(&[("README.md", b"x"), ("./dist/plugin.wasm", &wasm)])),
        ),
        (
            "tar single .wasm",
            tar(&[("filter.wasm", &wasm), ("LICENSE", b"x")]),
        ),
    ];
    for (name, body) in bodies {
        let s = serve(body).await;
        let mut r = FetchRequest::parse(s.url("/plugin")).unwrap();
        r.sha256 = Some(sha256_hex(&wasm));
        let got = f.fetch(&r).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&*got.bytes, &wasm[..], "{name}");
        assert_eq!(
            got.digest,
            sha256_hex(&wasm),
            "{name}: sha256 is of the unboxed module"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_escaping_tar_entries() {
    let wasm = module("evil");
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[]);
    for name in ["../plugin.wasm", "/etc/plugin.wasm", "a/../../plugin.wasm"] {
        let s = serve(gzip(&tar(&[(name, &wasm)]))).await;
        match f
            .fetch(&FetchRequest::parse(s.url("/evil.tar.gz")).unwrap())
            .await
        {
            Err(e @ FetchError::Archive { .. }) => {
                assert!(e.to_string().contains(name), "{e}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // The offending entry need not be the one that would be taken.
    let s = serve(tar(&[("plugin.wasm", &wasm), ("../x", b"y")])).await;
    assert!(matches!(
        f.fetch(&FetchRequest::parse(s.url("/x.tar")).unwrap())
            .await,
        Err(FetchError::Archive { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_invalid_modules() {
    let cache = tempfile::tempdir().unwrap();
    let mut cfg = config(cache.path(), &[]);
    cfg.max_module_bytes = 1000;
    let f = wasp_delivery::Fetcher::new(cfg).unwrap();
    let big = module_with_payload(&vec![1u8; 5000]);
    let s = serve(big.clone()).await;
    match f
        .fetch(&FetchRequest::parse(s.url("/big.wasm")).unwrap())
        .await
    {
        Err(FetchError::TooLarge { limit: 1000, .. }) => {}
        other => panic!("{other:?}"),
    }
    // Small on the wire, too big unpacked.
    let s = serve(gzip(&big)).await;
    assert!(matches!(
        f.fetch(&FetchRequest::parse(s.url("/big.wasm.gz")).unwrap())
            .await,
        Err(FetchError::TooLarge { .. })
    ));
    let s = serve(b"<html>not found</html>".to_vec()).await;
    match f.fetch(&FetchRequest::parse(s.url("/page")).unwrap()).await {
        Err(e @ FetchError::InvalidModule { .. }) => {
            assert!(e.to_string().contains("Wasm magic"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.stats().failures_of("invalid_module"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_5xx_then_succeeds() {
    let wasm = module("flaky");
    let n = Arc::new(AtomicUsize::new(0));
    let (w, c) = (wasm.clone(), n.clone());
    let s = TestServer::start(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) < 2 {
            Reply::status(503, "busy")
        } else {
            Reply::ok(w.clone())
        }
    })
    .await;
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[]);
    let got = f
        .fetch(&FetchRequest::parse(s.url("/p.wasm")).unwrap())
        .await
        .unwrap();
    assert_eq!(&*got.bytes, &wasm[..]);
    assert_eq!(s.hits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_max_attempts_and_never_retries_404() {
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[]);
    let s = TestServer::start(|_| Reply::status(500, "boom")).await;
    match f
        .fetch(&FetchRequest::parse(s.url("/p.wasm")).unwrap())
        .await
    {
        Err(e @ FetchError::Status { status: 500, .. }) => {
            assert!(
                e.to_string().contains("5 attempts") && e.to_string().contains("boom"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.hits(), 5);

    let s = TestServer::start(|_| Reply::status(404, "no such plugin")).await;
    match f
        .fetch(&FetchRequest::parse(s.url("/p.wasm")).unwrap())
        .await
    {
        Err(e @ FetchError::Status { status: 404, .. }) => {
            assert!(e.to_string().contains("no such plugin"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.hits(), 1);

    // 501 says the request can never work: no retry either.
    let s = TestServer::start(|_| Reply::status(501, "")).await;
    assert!(
        f.fetch(&FetchRequest::parse(s.url("/p.wasm")).unwrap())
            .await
            .is_err()
    );
    assert_eq!(s.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overall_deadline() {
    let cache = tempfile::tempdir().unwrap();
    let mut cfg = config(cache.path(), &[]);
    cfg.http.attempt_timeout = Duration::from_millis(200);
    cfg.http.overall_timeout = Duration::from_millis(700);
    let f = wasp_delivery::Fetcher::new(cfg).unwrap();
    let s = TestServer::start(|_| Reply::ok(module("slow")).delayed(Duration::from_secs(5))).await;
    let start = std::time::Instant::now();
    match f
        .fetch(&FetchRequest::parse(s.url("/slow.wasm")).unwrap())
        .await
    {
        Err(e @ FetchError::Download { .. }) => {
            assert!(e.to_string().contains("no complete answer"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

/// istio's `TestImagePullPolicyWithHTTP`: the URL redirects to the current blob, like the
/// integration test's fake registry `/layer/v1/<image>:<tag>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_pull_policy_scenario_over_http() {
    let (v1, v2) = (module("0.0.1"), module("0.0.2"));
    let current = Arc::new(Mutex::new(gzip(&tar(&[("plugin.wasm", &v1)]))));
    let c = current.clone();
    let s = TestServer::start(move |seen| {
        if seen.target == "/layer/v1/header-injector:0.0.1" {
            Reply::status(301, "").header("location", "/blobs/current")
        } else {
            Reply::ok(c.lock().unwrap().clone())
        }
    })
    .await;
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[]);
    let url = s.url("/layer/v1/header-injector:0.0.1");

    let got = f.fetch(&FetchRequest::parse(&url).unwrap()).await.unwrap();
    assert_eq!(&*got.bytes, &v1[..]);
    assert_eq!(s.hits(), 2);

    *current.lock().unwrap() = gzip(&tar(&[("plugin.wasm", &v2)]));
    let mut r = FetchRequest::parse(&url).unwrap();
    r.pull_policy = PullPolicy::IfNotPresent;
    assert_eq!(&*f.fetch(&r).await.unwrap().bytes, &v1[..]);
    assert_eq!(
        &*f.fetch(&FetchRequest::parse(&url).unwrap())
            .await
            .unwrap()
            .bytes,
        &v1[..]
    );
    assert_eq!(s.hits(), 2, "no network for IfNotPresent / default");

    r.pull_policy = PullPolicy::Always;
    assert_eq!(&*f.fetch(&r).await.unwrap().bytes, &v2[..]);
    assert_eq!(s.hits(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_pins_and_mismatches() {
    let wasm = module("pin");
    let s = serve(wasm.clone()).await;
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[]);
    let mut r = FetchRequest::parse(s.url("/a.wasm")).unwrap();
    r.sha256 = Some("f".repeat(64));
    r.resource = "WasmPlugin apps/pin".into();
    match f.fetch(&r).await {
        Err(e @ FetchError::ChecksumMismatch { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains(&"f".repeat(64)) && m.contains(&sha256_hex(&wasm)),
                "{m}"
            );
            assert!(m.starts_with("WasmPlugin apps/pin ("), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.stats().failures_of("checksum_mismatched"), 1);
    r.sha256 = Some(format!("sha256:{}", sha256_hex(&wasm).to_uppercase()));
    assert!(!f.fetch(&r).await.unwrap().cache_hit);
    // A pinned module is content-addressed: another URL with the same checksum, even with
    // Always, is served from the cache.
    let mut other = FetchRequest::parse(s.url("/b.wasm")).unwrap();
    other.sha256 = Some(sha256_hex(&wasm));
    other.pull_policy = PullPolicy::Always;
    let hits = s.hits();
    assert!(f.fetch(&other).await.unwrap().cache_hit);
    assert_eq!(s.hits(), hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fetches_share_one_download() {
    let wasm = module("shared");
    let w = wasm.clone();
    let s =
        TestServer::start(move |_| Reply::ok(w.clone()).delayed(Duration::from_millis(300))).await;
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[]);
    let mut r = FetchRequest::parse(s.url("/one.wasm")).unwrap();
    r.pull_policy = PullPolicy::Always;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (f, r) = (f.clone(), r.clone());
            tokio::spawn(async move { f.fetch(&r).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(&*t.await.unwrap().unwrap().bytes, &wasm[..]);
    }
    assert_eq!(s.hits(), 1);
    assert_eq!(f.stats().coalesced, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls() {
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[]);
    for url in [
        "ftp://x/y.wasm",
        "oci://Host/UPPER",
        "",
        "file://relative.wasm",
    ] {
        // Refused when parsed, before anything is fetched.
        match FetchRequest::parse(url) {
            Err(FetchError::InvalidRequest { .. }) => {}
            other => panic!("{url}: {other:?}"),
        }
    }
    let mut r = FetchRequest::parse("https://example.invalid/x.wasm").unwrap();
    r.sha256 = Some("xyz".into());
    assert!(matches!(
        f.fetch(&r).await,
        Err(FetchError::InvalidRequest { .. })
    ));
}
