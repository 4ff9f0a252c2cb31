//! No file, OS or module access; CPU and memory limits stop runaway scripts.

mod common;

use common::{Harness, request};
use wasp_lua::{Limits, LuaScript, Outcome};

/// Runs `body` as the request function and returns the error text (or "ok").
fn run(body: &str) -> String {
    let h = Harness::new(&format!("function envoy_on_request(handle)\n{body}\nend"));
    let (mut s, _m) = h.stream(&request());
    match s.on_request_headers(true) {
        Outcome::Continue => "ok".into(),
        Outcome::Error(e) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn blocked_libraries_and_functions_fail_clearly() {
    let cases = [
        (
            "io.open('/etc/passwd')",
            "io is not available in the Lua sandbox",
        ),
        (
            "os.execute('true')",
            "os.execute is not available in the Lua sandbox",
        ),
        (
            "os.getenv('HOME')",
            "os.getenv is not available in the Lua sandbox",
        ),
        ("os.exit(1)", "os.exit is not available in the Lua sandbox"),
        (
            "os.remove('/tmp/x')",
            "os.remove is not available in the Lua sandbox",
        ),
        (
            "require('socket')",
            "require is not available in the Lua sandbox",
        ),
        (
            "dofile('/etc/passwd')",
            "dofile is not available in the Lua sandbox",
        ),
        (
            "loadfile('/etc/passwd')",
            "loadfile is not available in the Lua sandbox",
        ),
        (
            "local x = package.path",
            "package is not available in the Lua sandbox",
        ),
        (
            "debug.getinfo(1)",
            "debug is not available in the Lua sandbox",
        ),
        (
            "collectgarbage('stop')",
            "collectgarbage('stop') is not allowed in the Lua sandbox",
        ),
        (
            "load('\\27Lua')",
            "load: binary chunks are not allowed in the Lua sandbox",
        ),
        (
            "load('return 1', 'x', 'b')",
            "load: only text chunks are allowed in the Lua sandbox",
        ),
    ];
    for (code, message) in cases {
        assert_eq!(
            run(code),
            format!("[string \"function envoy_on_request(handle)...\"]:2: {message}"),
            "{code}"
        );
    }
    assert!(run("local d = string.dump").eq("ok"));
}

#[test]
fn what_stays_available() {
    assert_eq!(
        run(r#"
          assert(type(os.time()) == "number" and type(os.clock()) == "number")
          assert(os.date("!%Y", 0) == "1970")
          assert(load("return 1 + 1")() == 2)
          assert(string.dump == nil)
          assert(collectgarbage("count") > 0)
          assert(unpack ~= nil and table.concat({"a", "b"}) == "ab")
          assert(math.floor(2.5) == 2 and string.format("%s", 1) == "1")
          local co = coroutine.wrap(function() coroutine.yield(1) end)
          assert(co() == 1)
        "#),
        "ok"
    );
}

#[test]
fn cpu_limit_stops_an_infinite_loop() {
    let limits = Limits {
        instructions_per_call: 100_000,
        ..Limits::default()
    };
    let h = Harness::with_limits(
        "function envoy_on_request(handle)\n  while true do end\nend",
        limits,
    );
    let (mut s, _m) = h.stream(&request());
    assert_eq!(
        s.on_request_headers(true),
        Outcome::Error(
            "[string \"function envoy_on_request(handle)...\"]:2: instruction limit exceeded (100000 instructions per call)"
                .into()
        )
    );
    // The worker's state is still usable, and the budget is per call.
    let (mut s, _m) = h.stream(&request());
    assert!(matches!(s.on_request_headers(true), Outcome::Error(_)));
}

#[test]
fn cpu_limit_cannot_be_swallowed_by_pcall() {
    let limits = Limits {
        instructions_per_call: 100_000,
        ..Limits::default()
    };
    let h = Harness::with_limits(
        r#"
        function envoy_on_request(handle)
          if handle:headers():get("x-spin") then
            while true do pcall(function() while true do end end) end
          end
          handle:headers():add("x-ran", "1")
        end
        "#,
        limits,
    );
    let (mut s, _m) = h.stream(&[(":path", "/"), ("x-spin", "1")]);
    match s.on_request_headers(true) {
        Outcome::Error(e) => assert!(e.contains("instruction limit exceeded"), "{e}"),
        other => panic!("{other:?}"),
    }
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    assert_eq!(common::request_header(&m, "x-ran").as_deref(), Some("1"));
}

#[test]
fn cpu_limit_applies_to_the_top_level() {
    let err = LuaScript::compile(
        "spin.lua",
        "while true do end\nfunction envoy_on_request() end",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "lua script 'spin.lua': [string \"while true do end...\"]:1: instruction limit exceeded (10000000 instructions per call)"
    );
}

#[test]
fn memory_limit_stops_a_huge_table() {
    let limits = Limits {
        memory_bytes: 8 << 20,
        ..Limits::default()
    };
    let h = Harness::with_limits(
        r#"
        function envoy_on_request(handle)
          if handle:headers():get("x-grow") then
            local t = {}
            for i = 1, 100000000 do t[i] = "value" .. i end
          end
          handle:headers():add("x-ran", "1")
        end
        "#,
        limits,
    );
    let (mut s, _m) = h.stream(&[(":path", "/"), ("x-grow", "1")]);
    assert_eq!(
        s.on_request_headers(true),
        Outcome::Error("[string \"...\"]: memory limit exceeded".into())
    );
    // The garbage is collectable: the next stream runs.
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    assert_eq!(common::request_header(&m, "x-ran").as_deref(), Some("1"));
    assert!(h.worker.memory_used() < 8 << 20);
}

#[test]
fn memory_limit_stops_a_huge_string() {
    let limits = Limits {
        memory_bytes: 8 << 20,
        ..Limits::default()
    };
    let h = Harness::with_limits(
        "function envoy_on_request(handle)\n  local s = string.rep('x', 64 * 1024 * 1024)\nend",
        limits,
    );
    let (mut s, _m) = h.stream(&request());
    assert_eq!(
        s.on_request_headers(true),
        Outcome::Error(
            "[string \"function envoy_on_request(handle)...\"]: memory limit exceeded".into()
        )
    );
}
