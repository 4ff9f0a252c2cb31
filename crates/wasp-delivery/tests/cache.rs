//! The on-disk cache across fetchers, expiry, damage, and local files.

mod support;

use std::time::Duration;

use support::*;
use wasp_delivery::{FetchError, FetchRequest, Fetcher, PullPolicy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_survives_a_new_fetcher() {
    let wasm = module("persisted");
    let w = wasm.clone();
    let s = TestServer::start(move |_| Reply::ok(w.clone())).await;
    let cache = tempfile::tempdir().unwrap();
    let url = s.url("/p.wasm");
    let first = fetcher(cache.path(), &[])
        .fetch(&FetchRequest::parse(&url).unwrap())
        .await
        .unwrap();
    assert!(!first.cache_hit);

    let f = fetcher(cache.path(), &[]);
    let got = f.fetch(&FetchRequest::parse(&url).unwrap()).await.unwrap();
    assert!(got.cache_hit);
    assert_eq!(&*got.bytes, &wasm[..]);
    assert_eq!(got.fetched_at, first.fetched_at);
    assert_eq!(s.hits(), 1);
    let path = cache
        .path()
        .join("modules/sha256")
        .join(format!("{}.wasm", sha256_hex(&wasm)));
    assert_eq!(std::fs::read(path).unwrap(), wasm);
    assert_eq!(f.cached().len(), 1);
    assert_eq!(f.stats().cache_hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_entries_are_purged() {
    let wasm = module("expiring");
    let w = wasm.clone();
    let s = TestServer::start(move |_| Reply::ok(w.clone())).await;
    let cache = tempfile::tempdir().unwrap();
    let mut cfg = config(cache.path(), &[]);
    cfg.expiry = Duration::from_millis(500);
    let f = Fetcher::new(cfg.clone()).unwrap();
    let url = s.url("/p.wasm");
    f.fetch(&FetchRequest::parse(&url).unwrap()).await.unwrap();
    assert_eq!(f.purge_expired().unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(f.purge_expired().unwrap(), 1);
    let file = cache
        .path()
        .join("modules/sha256")
        .join(format!("{}.wasm", sha256_hex(&wasm)));
    assert!(!file.exists());
    assert!(
        !f.fetch(&FetchRequest::parse(&url).unwrap())
            .await
            .unwrap()
            .cache_hit
    );
    assert_eq!(s.hits(), 2);

    // Expired while no process ran: purged when the next Fetcher opens the cache.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let f = Fetcher::new(cfg).unwrap();
    assert_eq!(f.stats().cache_entries, 0);
    assert!(!file.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_cache_file_is_refetched() {
    let wasm = module("damaged");
    let w = wasm.clone();
    let s = TestServer::start(move |_| Reply::ok(w.clone())).await;
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path(), &[]);
    let mut r = FetchRequest::parse(s.url("/p.wasm")).unwrap();
    r.pull_policy = PullPolicy::IfNotPresent;
    f.fetch(&r).await.unwrap();
    let file = cache
        .path()
        .join("modules/sha256")
        .join(format!("{}.wasm", sha256_hex(&wasm)));
    std::fs::write(&file, b"\0asm\x01\0\0\0 truncated").unwrap();
    let got = f.fetch(&r).await.unwrap();
    assert!(!got.cache_hit);
    assert_eq!(&*got.bytes, &wasm[..]);
    assert_eq!(std::fs::read(&file).unwrap(), wasm);
    assert_eq!(s.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_files() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = module("local");
    let path = dir.path().join("plugin.wasm");
    std::fs::write(&path, &wasm).unwrap();
    let f = fetcher(&dir.path().join("cache"), &[]);
    for url in [
        format!("file://{}", path.display()),
        path.display().to_string(),
    ] {
        let got = f.fetch(&FetchRequest::parse(&url).unwrap()).await.unwrap();
        assert_eq!(&*got.bytes, &wasm[..]);
        assert_eq!(got.digest, sha256_hex(&wasm));
    }
    let mut r = FetchRequest::parse(path.display().to_string()).unwrap();
    r.sha256 = Some("0".repeat(64));
    assert!(matches!(
        f.fetch(&r).await,
        Err(FetchError::ChecksumMismatch { .. })
    ));
    match f
        .fetch(&FetchRequest::parse("/nonexistent/plugin.wasm").unwrap())
        .await
    {
        Err(e @ FetchError::Download { .. }) => {
            assert!(e.to_string().contains("/nonexistent/plugin.wasm"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.stats().cache_entries, 0, "files are not cached");
}
