//! Logging, `print`, `base64Escape`, timestamps, per-worker globals.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{Harness, request};
use wasp_lua::{LogLevel, Outcome};

#[test]
fn log_methods_reach_the_sink_with_level_and_script() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          handle:logTrace("t")
          handle:logDebug("d")
          handle:logInfo("i")
          handle:logWarn("w")
          handle:logErr("e")
          handle:logCritical("c")
          print("printed", 1, true)
        end
        "#,
    );
    let (mut s, _m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    let logs = h.logs.borrow();
    let got: Vec<_> = logs
        .iter()
        .map(|(level, script, message)| (*level, script.as_str(), message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (LogLevel::Trace, "test.lua", "t"),
            (LogLevel::Debug, "test.lua", "d"),
            (LogLevel::Info, "test.lua", "i"),
            (LogLevel::Warn, "test.lua", "w"),
            (LogLevel::Error, "test.lua", "e"),
            (LogLevel::Critical, "test.lua", "c"),
            (LogLevel::Info, "test.lua", "printed\t1\ttrue"),
        ]
    );
}

#[test]
fn base64_escape() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          handle:logInfo(handle:base64Escape("hello\0world"))
          handle:logInfo("[" .. handle:base64Escape("") .. "]")
        end
        "#,
    );
    let (mut s, _m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    assert_eq!(h.messages(), ["aGVsbG8Ad29ybGQ=", "[]"]);
}

#[test]
fn timestamps_in_milliseconds_and_microseconds() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          handle:logInfo(string.format("%d", handle:timestamp()))
          handle:logInfo(string.format("%d",
            handle:timestamp(EnvoyTimestampResolution.MILLISECOND)))
          handle:logInfo(handle:timestampString())
          handle:logInfo(handle:timestampString(EnvoyTimestampResolution.MICROSECOND))
        end
        "#,
    );
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let (mut s, _m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let values: Vec<u128> = h.messages().iter().map(|m| m.parse().unwrap()).collect();
    for ms in &values[..3] {
        assert!(
            (before.as_millis()..=after.as_millis()).contains(ms),
            "{values:?}"
        );
    }
    assert!((before.as_micros()..=after.as_micros()).contains(&values[3]));
}

#[test]
fn globals_persist_across_streams_of_a_worker() {
    let h = Harness::new(
        r#"
        count = 0
        function envoy_on_request(handle)
          count = count + 1
          handle:headers():add("x-count", tostring(count))
        end
        "#,
    );
    for expected in ["1", "2", "3"] {
        let (mut s, m) = h.stream(&request());
        assert_eq!(s.on_request_headers(true), Outcome::Continue);
        assert_eq!(
            common::request_header(&m, "x-count").as_deref(),
            Some(expected)
        );
    }
}

#[test]
fn a_handle_kept_past_its_stream_is_out_of_scope() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          if saved then
            local ok, err = pcall(function() return saved:headers():get(":path") end)
            handle:logInfo(tostring(ok) .. " " .. tostring(err))
          end
          saved = handle
        end
        "#,
    );
    {
        let (mut s, _m) = h.stream(&request());
        assert_eq!(s.on_request_headers(true), Outcome::Continue);
    }
    let (mut s, _m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    let messages = h.messages();
    assert!(messages[0].starts_with("false "), "{messages:?}");
    assert!(
        messages[0].contains("object used outside of proper scope"),
        "{messages:?}"
    );
}

#[test]
fn scripts_with_only_one_direction() {
    let h = Harness::new("function envoy_on_response(handle) handle:logInfo('resp') end");
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(false), Outcome::Continue);
    assert_eq!(s.on_request_body(true), Outcome::Continue);
    common::set_response(&m, &[(":status", "200")]);
    assert_eq!(s.on_response_headers(true), Outcome::Continue);
    assert_eq!(h.messages(), ["resp"]);
}
