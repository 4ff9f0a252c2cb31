//! What the proxy exposes by default: TLS listeners speak TLS 1.2 and 1.3 with AEAD suites
//! only (checked with OpenSSL's own client offering the old versions and CBC suites), and a
//! read-only admin endpoint refuses what would change the proxy.

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use support::*;
use wasp_proxy::spec::ServerTls;

/// `openssl s_client` with `args` against `addr`: whether the handshake completed, and what
/// OpenSSL said.
fn s_client(addr: SocketAddr, args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs (Debian's openssl package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let done =
        output.status.success() && text.contains("Cipher is") && !text.contains("Cipher is (NONE)");
    (done, text)
}

#[test]
fn tls_listeners_accept_only_tls_1_2_and_1_3_with_aead_suites() {
    let up = upstream();
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, key.cert.pem()).unwrap();
    std::fs::write(&key_file, key.signing_key.serialize_pem()).unwrap();
    let mut spec = spec(up.address, Vec::new());
    spec.listeners[0].tls = Some(ServerTls {
        cert_file,
        key_file,
        ca_file: None,
        require_client_certificate: false,
    });
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();

    for (args, accepted) in [
        (&["-tls1_3"][..], true),
        (
            &[
                "-tls1_2",
                "-cipher",
                "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256",
            ][..],
            true,
        ),
        // Old protocol versions (OpenSSL needs its security level lowered to even offer them).
        (&["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"][..], false),
        (&["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"][..], false),
        // TLS 1.2 with CBC and static-RSA suites only.
        (
            &[
                "-tls1_2",
                "-cipher",
                "AES128-SHA:AES256-SHA256:ECDHE-RSA-AES128-SHA",
            ][..],
            false,
        ),
    ] {
        let (done, text) = s_client(addr, args);
        assert_eq!(done, accepted, "openssl s_client {args:?}:\n{text}");
    }
    proxy.shutdown();
}

#[test]
fn a_read_only_admin_refuses_changes() {
    let up = upstream();
    let mut spec = spec(up.address, Vec::new());
    spec.admin_read_only = true;
    let proxy = start(spec);
    let admin = proxy.admin_address().unwrap();
    let answer = raw(
        admin,
        b"POST /logging?level=debug HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        std::time::Duration::from_secs(2),
    );
    assert_eq!(raw_status(&answer), Some(403), "{answer}");
    assert!(answer.contains("read-only"), "{answer}");
    // Reading still works.
    assert_eq!(admin_get(&proxy, "/config_dump").status, 200);
    proxy.shutdown();
}

fn admin_get(proxy: &wasp_proxy::Proxy, path: &str) -> Answer {
    support::admin(proxy, path)
}
