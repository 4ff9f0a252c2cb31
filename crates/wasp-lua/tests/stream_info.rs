//! `streamInfo()`, dynamic metadata, route `metadata()`, `filterContext()`, `connection()`.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{Harness, request};
use wasp_lua::{MetadataValue, Outcome, SslInfo, StreamInfo};

fn info() -> StreamInfo {
    StreamInfo {
        protocol: "HTTP/2".into(),
        downstream_local_address: "10.0.0.1:8443".into(),
        downstream_direct_local_address: "10.0.0.1:8443".into(),
        downstream_remote_address: "192.0.2.7:5555".into(),
        downstream_direct_remote_address: "192.0.2.8:5556".into(),
        requested_server_name: "api.example.com".into(),
        route_name: "r1".into(),
        ssl: None,
        route_metadata: Arc::new(BTreeMap::from([
            ("tier".to_string(), MetadataValue::String("gold".into())),
            ("limit".to_string(), MetadataValue::Number(10.0)),
        ])),
        filter_context: Arc::new(BTreeMap::from([(
            "greeting".to_string(),
            MetadataValue::String("hi".into()),
        )])),
    }
}

#[test]
fn stream_info_attributes() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          local i = handle:streamInfo()
          handle:logInfo(table.concat({
            i:protocol(), i:downstreamLocalAddress(), i:downstreamDirectLocalAddress(),
            i:downstreamRemoteAddress(), i:downstreamDirectRemoteAddress(),
            i:requestedServerName(), i:routeName(),
            tostring(handle:connection():ssl()), tostring(i:downstreamSslConnection()),
          }, " "))
        end
        "#,
    );
    let (mut s, _m) = h.stream_with(info(), &request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    assert_eq!(
        h.messages(),
        [
            "HTTP/2 10.0.0.1:8443 10.0.0.1:8443 192.0.2.7:5555 192.0.2.8:5556 api.example.com r1 nil nil"
        ]
    );
}

#[test]
fn ssl_connection_object() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          local ssl = handle:connection():ssl()
          handle:logInfo(table.concat({
            tostring(ssl:peerCertificatePresented()), tostring(ssl:peerCertificateValidated()),
            ssl:tlsVersion(), ssl:ciphersuiteString(), ssl:ciphersuiteId(),
            ssl:subjectPeerCertificate(), table.concat(ssl:dnsSansPeerCertificate(), ","),
            tostring(#ssl:uriSanPeerCertificate()),
          }, " "))
        end
        "#,
    );
    let mut info = info();
    info.ssl = Some(SslInfo {
        peer_certificate_presented: true,
        tls_version: "TLSv1.3".into(),
        ciphersuite_id: 0x1301,
        ciphersuite_string: "TLS_AES_128_GCM_SHA256".into(),
        subject_peer_certificate: "CN=client".into(),
        dns_sans_peer_certificate: vec!["a.example".into(), "b.example".into()],
        ..SslInfo::default()
    });
    let (mut s, _m) = h.stream_with(info, &request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    assert_eq!(
        h.messages(),
        ["true false TLSv1.3 TLS_AES_128_GCM_SHA256 0x1301 CN=client a.example,b.example 0"]
    );
}

#[test]
fn dynamic_metadata_set_get_pairs() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          local md = handle:streamInfo():dynamicMetadata()
          md:set("envoy.filters.http.lua", "user", "alice")
          md:set("envoy.filters.http.lua", "score", 7)
          md:set("envoy.filters.http.lua", "tags", {"a", "b"})
          md:set("other", "nested", {k = true})
          local mine = md:get("envoy.filters.http.lua")
          handle:logInfo(mine.user .. " " .. mine.score .. " " .. mine.tags[2])
          -- An unknown filter is no value at all (as Envoy), so parenthesize to get nil.
          handle:logInfo(tostring((md:get("missing"))))
          local names = {}
          for name, fields in pairs(md) do names[#names + 1] = name end
          handle:logInfo(table.concat(names, ","))
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    let messages = h.messages();
    // Whole numbers read back as integers, as LuaJIT (Envoy) prints them.
    assert_eq!(messages[0], "alice 7 b", "{messages:?}");
    assert_eq!(messages[1], "nil");
    assert_eq!(messages[2], "envoy.filters.http.lua,other");
    let memory = m.borrow();
    let lua = &memory.dynamic_metadata["envoy.filters.http.lua"];
    assert_eq!(lua["user"], MetadataValue::String("alice".into()));
    assert_eq!(lua["score"], MetadataValue::Number(7.0));
    assert_eq!(
        lua["tags"],
        MetadataValue::List(vec![
            MetadataValue::String("a".into()),
            MetadataValue::String("b".into())
        ])
    );
    assert_eq!(
        memory.dynamic_metadata["other"]["nested"],
        MetadataValue::Map(BTreeMap::from([("k".into(), MetadataValue::Bool(true))]))
    );
}

#[test]
fn route_metadata_and_filter_context() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          local md = handle:metadata()
          local keys = {}
          for k, v in pairs(md) do keys[#keys + 1] = k .. "=" .. tostring(v) end
          handle:logInfo(md:get("tier") .. " " .. tostring(md:get("nope")) .. " "
            .. table.concat(keys, ","))
          handle:logInfo(handle:filterContext().greeting)
        end
        "#,
    );
    let (mut s, _m) = h.stream_with(info(), &request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    let messages = h.messages();
    assert!(
        messages[0] == "gold nil limit=10.0,tier=gold"
            || messages[0] == "gold nil limit=10,tier=gold",
        "{messages:?}"
    );
    assert_eq!(messages[1], "hi");
}
