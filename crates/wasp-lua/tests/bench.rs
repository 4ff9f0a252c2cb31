//! Cost of one header filter call, for choosing the Lua flavour. Ignored by default:
//!
//! ```sh
//! cargo test --release -p wasp-lua --test bench -- --ignored --nocapture
//! cargo test --release -p wasp-lua --no-default-features --features luajit --test bench -- --ignored --nocapture
//! ```

mod common;

use std::time::Instant;

use common::Harness;
use wasp_lua::{Limits, Outcome};

const HEADER_FILTER: &str = r#"
function envoy_on_request(handle)
  local headers = handle:headers()
  local path = headers:get(":path")
  if headers:get("x-deny") then
    handle:respond({[":status"] = "403"}, "denied")
  end
  headers:add("x-lua", "1")
  headers:replace("x-path-length", tostring(#path))
  headers:remove("x-internal")
end
"#;

/// A filter that spends its time in Lua itself rather than in API calls.
const COMPUTE_FILTER: &str = r#"
function envoy_on_request(handle)
  local path = handle:headers():get(":path")
  local h = 0
  for i = 1, 2000 do
    h = (h * 31 + string.byte(path, (i % #path) + 1)) % 1000000007
  end
  handle:headers():replace("x-hash", tostring(h))
end
"#;

fn measure(name: &str, code: &str, iterations: u32, limits: Limits) {
    let h = Harness::with_limits(code, limits);
    let headers = [
        (":method", "GET"),
        (":path", "/api/v1/items?page=2"),
        (":authority", "example.com"),
        ("user-agent", "bench"),
        ("accept", "*/*"),
        ("x-internal", "secret"),
    ];
    for _ in 0..1000 {
        let (mut s, _m) = h.stream(&headers);
        assert_eq!(s.on_request_headers(true), Outcome::Continue);
    }
    let start = Instant::now();
    for _ in 0..iterations {
        let (mut s, _m) = h.stream(&headers);
        assert_eq!(s.on_request_headers(true), Outcome::Continue);
    }
    let per_call = start.elapsed().as_nanos() / u128::from(iterations);
    let hook = if limits.instructions_per_call == 0 {
        "no instruction hook"
    } else {
        "instruction hook"
    };
    println!(
        "{} {name}, {hook}: {per_call} ns per stream (new stream + on_request_headers)",
        wasp_lua::LUA_FLAVOUR
    );
}

#[test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
fn header_filter_cost() {
    let unlimited = Limits {
        instructions_per_call: 0,
        ..Limits::default()
    };
    for limits in [Limits::default(), unlimited] {
        measure("header filter", HEADER_FILTER, 200_000, limits);
        measure("compute filter", COMPUTE_FILTER, 20_000, limits);
    }
}
