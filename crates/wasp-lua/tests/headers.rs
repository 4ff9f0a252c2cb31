//! The header map object.

mod common;

use common::{Harness, request, request_header, response_header, set_response};
use wasp_lua::{HeaderAccess, Outcome};

#[test]
fn get_joins_values_and_reads_by_index_and_count() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          local hs = handle:headers()
          hs:add("x-get", tostring(hs:get("X-Multi")))
          hs:add("x-first", hs:getAtIndex("x-multi", 0))
          hs:add("x-second", hs:getAtIndex("x-multi", 1))
          hs:add("x-third", tostring(hs:getAtIndex("x-multi", 2)))
          hs:add("x-count", tostring(hs:getNumValues("x-multi")))
          -- A missing header is no value at all, as in Envoy (not one nil).
          hs:add("x-none", tostring((hs:get("absent"))))
          hs:add("x-none-values", tostring(select('#', hs:get("absent"))))
          hs:add("x-none-count", tostring(hs:getNumValues("absent")))
        end
        "#,
    );
    let mut headers = request();
    headers.extend([("x-multi", "a"), ("x-multi", "b")]);
    let (mut s, m) = h.stream(&headers);
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    assert_eq!(request_header(&m, "x-get").as_deref(), Some("a,b"));
    assert_eq!(request_header(&m, "x-first").as_deref(), Some("a"));
    assert_eq!(request_header(&m, "x-second").as_deref(), Some("b"));
    assert_eq!(request_header(&m, "x-third").as_deref(), Some("nil"));
    assert_eq!(request_header(&m, "x-count").as_deref(), Some("2"));
    assert_eq!(request_header(&m, "x-none").as_deref(), Some("nil"));
    assert_eq!(request_header(&m, "x-none-values").as_deref(), Some("0"));
    assert_eq!(request_header(&m, "x-none-count").as_deref(), Some("0"));
}

#[test]
fn add_replace_remove_edit_the_stream() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          local hs = handle:headers()
          hs:add("X-Added", "1")
          hs:add("x-added", "2")
          hs:replace("x-multi", "only")
          hs:replace("x-new", "fresh")
          hs:remove("x-gone")
          hs:setHttp1ReasonPhrase("ignored")
        end
        "#,
    );
    let mut headers = request();
    headers.extend([("x-multi", "a"), ("x-gone", "1"), ("x-multi", "b")]);
    let (mut s, m) = h.stream(&headers);
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    let memory = m.borrow();
    let hs = memory.request_headers.as_ref().unwrap();
    let values = |k: &str| {
        hs.entries()
            .iter()
            .filter(|(key, _)| key == k.as_bytes())
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(values("x-added"), ["1", "2"]);
    assert_eq!(values("x-multi"), ["only"]);
    assert_eq!(values("x-new"), ["fresh"]);
    assert!(values("x-gone").is_empty());
    assert_eq!(hs.len(), 3 + 2 + 1 + 1);
}

#[test]
fn pairs_iterates_in_order_with_repeated_keys() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          local seen = {}
          for k, v in pairs(handle:headers()) do
            seen[#seen + 1] = k .. "=" .. v
          end
          handle:headers():add("x-seen", table.concat(seen, ";"))
        end
        "#,
    );
    let (mut s, m) = h.stream(&[(":path", "/a"), ("x", "1"), ("x", "2")]);
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    assert_eq!(
        request_header(&m, "x-seen").as_deref(),
        Some(":path=/a;x=1;x=2")
    );
}

#[test]
fn headers_are_read_only_once_passed_on() {
    // The script keeps streaming chunks: its headers left with the headers phase.
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          for chunk in handle:bodyChunks() do
            handle:headers():add("x-late", "1")
          end
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(false), Outcome::Continue);
    m.borrow_mut().request_body = b"chunk".to_vec();
    match s.on_request_body(false) {
        Outcome::Error(e) => {
            assert_eq!(
                e,
                "[string \"...\"]:4: header map can no longer be modified"
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(request_header(&m, "x-late"), None);
}

#[test]
fn response_headers_are_the_response_direction() {
    let h = Harness::new(
        r#"
        function envoy_on_response(handle)
          local status = handle:headers():get(":status")
          handle:headers():replace("x-status-seen", status)
          handle:headers():remove("server")
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    set_response(&m, &[(":status", "201"), ("server", "upstream")]);
    assert_eq!(s.on_response_headers(true), Outcome::Continue);
    assert_eq!(response_header(&m, "x-status-seen").as_deref(), Some("201"));
    assert_eq!(response_header(&m, "server"), None);
    // The request was not touched by the response script.
    assert_eq!(request_header(&m, "x-status-seen"), None);
}
