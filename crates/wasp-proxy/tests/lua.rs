//! Lua filters (Envoy's Lua API) in the chain, over real sockets: headers both ways, local
//! replies, the whole body held before the headers leave, a callout the script waits for,
//! script errors, and a Lua filter between Wasm plugins.

mod support;

use support::*;
use wasp_proxy::spec::{LuaSpec, PluginKind, PluginSpec};

fn lua(name: &str, code: &str) -> PluginSpec {
    let kind = PluginKind::Lua(LuaSpec {
        source: code.into(),
    });
    PluginSpec {
        url: format!("lua:{name}"),
        ..PluginSpec::new(name, kind)
    }
}

#[test]
fn headers_both_ways_and_iteration() {
    let up = upstream();
    let script = r#"
        function envoy_on_request(handle)
          local h = handle:headers()
          h:add("x-lua", "request")
          h:replace("x-replace", "new")
          h:remove("x-remove")
          local n = 0
          for k, v in pairs(h) do n = n + 1 end
          h:add("x-lua-count", tostring(n))
          h:add("x-lua-path", h:get(":path"))
        end
        function envoy_on_response(handle)
          handle:headers():add("x-lua-response", handle:headers():get(":status"))
        end
    "#;
    let proxy = start(spec(up.address, vec![lua("hdr", script)]));
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        let a = exchange(
            addr,
            proto,
            "GET",
            "/p?q=1",
            &[("x-replace", "old"), ("x-remove", "gone")],
            empty(),
        );
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.header("x-echo-h-x-lua"), Some("request"));
        assert_eq!(a.header("x-echo-h-x-replace"), Some("new"));
        assert_eq!(a.header("x-echo-h-x-remove"), None);
        assert_eq!(a.header("x-echo-h-x-lua-path"), Some("/p?q=1"));
        assert!(a.header("x-echo-h-x-lua-count").is_some());
        assert_eq!(a.header("x-lua-response"), Some("200"));
    }
    proxy.shutdown();
}

#[test]
fn respond_from_request_and_a_script_error_goes_on() {
    let up = upstream();
    let script = r#"
        function envoy_on_request(handle)
          local p = handle:headers():get(":path")
          if p == "/deny" then
            handle:respond({[":status"] = "403", ["x-why"] = "lua"}, "denied by lua")
          elseif p == "/boom" then
            local t = nil
            return t.field
          end
        end
    "#;
    let proxy = start(spec(up.address, vec![lua("gate", script)]));
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/deny", &[]);
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(a.body, "denied by lua");
    assert_eq!(a.header("x-why"), Some("lua"));
    assert_eq!(a.header("x-echo-method"), None);
    // As Envoy 1.40: the error is logged and the request goes on without the rest of the
    // script.
    let a = get(addr, "/boom", &[]);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(up.seen_at("/boom").len(), 1);
    assert_eq!(get(addr, "/ok", &[]).status, 200);
    assert!(up.seen_at("/deny").is_empty());
    proxy.shutdown();
}

#[test]
fn body_is_held_whole_and_headers_leave_after_the_script() {
    let up = upstream();
    let script = r#"
        function envoy_on_request(handle)
          local body = handle:body()
          local size = body and body:length() or 0
          handle:headers():add("x-body-size", tostring(size))
          if body then body:setBytes(string.upper(body:getBytes(0, size))) end
        end
        function envoy_on_response(handle)
          local body = handle:body()
          handle:headers():add("x-response-size", tostring(body:length()))
          body:setBytes(body:getBytes(0, body:length()) .. "!")
        end
    "#;
    let proxy = start(spec(up.address, vec![lua("body", script)]));
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        let a = exchange(
            addr,
            proto,
            "POST",
            "/",
            &[],
            chunked(&["hello ", "from ", "a client"]),
        );
        assert_eq!(a.status, 200, "{a:?}");
        // The header the script added after reading the body reached the upstream.
        assert_eq!(a.header("x-echo-h-x-body-size"), Some("19"), "{proto:?}");
        assert_eq!(a.body, "HELLO FROM A CLIENT!");
        assert_eq!(a.header("x-response-size"), Some("19"));
        if let Some(n) = a.header("content-length") {
            assert_eq!(n, "20");
        }
    }
    proxy.shutdown();
}

#[test]
fn http_call_pauses_the_script_until_the_answer() {
    let up = upstream();
    let script = r#"
        function envoy_on_request(handle)
          local headers, body = handle:httpCall("callout", {
            [":method"] = "POST", [":path"] = "/callout", [":authority"] = "callout.local",
            ["x-from"] = "lua"
          }, "ping", 2000)
          handle:headers():add("x-call-status", headers[":status"])
          handle:headers():add("x-call-body", body)
          handle:httpCall("callout", {
            [":method"] = "GET", [":path"] = "/async", [":authority"] = "callout.local"
          }, "", 2000, true)
        end
    "#;
    let proxy = start(spec(up.address, vec![lua("caller", script)]));
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/", &[]);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-echo-h-x-call-status"), Some("200"));
    // The echo upstream answers the callout with its body.
    assert_eq!(a.header("x-echo-h-x-call-body"), Some("ping"));
    let seen = up.seen_at("/callout");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-from"), Some("lua"));
    assert!(eventually(std::time::Duration::from_secs(2), || up
        .seen_at("/async")
        .len()
        == 1));
    proxy.shutdown();
}

#[test]
fn a_lua_filter_between_wasm_plugins() {
    let up = upstream();
    let script = r#"
        function envoy_on_request(handle)
          -- The Wasm plugin before it added x-wasp-example.
          handle:headers():add("x-lua-saw", handle:headers():get("x-wasp-example") or "nothing")
        end
        function envoy_on_response(handle)
          handle:headers():add("x-lua-order", handle:headers():get("x-hostcalls-response") or "first")
        end
    "#;
    let proxy = start(spec(
        up.address,
        vec![
            plugin("headers", ""),
            lua("middle", script),
            plugin("hostcalls", ""),
        ],
    ));
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/", &[]);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-echo-h-x-lua-saw"), Some("hello"));
    // Responses pass the chain in reverse: hostcalls (last) before the Lua filter.
    assert_eq!(a.header("x-lua-order"), Some("1"));
    assert_eq!(a.header("x-powered-by"), Some("wasp"));
    proxy.shutdown();
}

#[test]
fn a_plugin_that_traps_on_the_response_under_fail_open_leaves_the_rest_of_the_chain_working() {
    let up = upstream();
    let script = r#"
        function envoy_on_response(handle)
          handle:headers():add("x-lua-response", "after the trap")
        end
    "#;
    let mut trapping = plugin("hostcalls", "");
    trapping.fail_strategy = wasp_proxy::spec::FailStrategy::FailOpen;
    // Responses pass the chain last to first: the Wasm plugin traps before the Lua filter runs.
    let proxy = start(spec(up.address, vec![lua("hdr", script), trapping]));
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/", &[("x-scenario", "panic-response-headers")]);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-lua-response"), Some("after the trap"), "{a:?}");
    proxy.shutdown();
}

#[test]
fn response_headers_http_cannot_carry_get_500_without_a_second_pass_through_the_chain() {
    let up = upstream();
    let script = r#"
        function envoy_on_response(handle)
          handle:headers():add("{\"not\":\"a name\"}", "v")
        end
    "#;
    // Responses pass the chain last to first: hostcalls adds its header, then the script adds
    // one no HTTP version can carry.
    let proxy = start(spec(
        up.address,
        vec![lua("bad", script), plugin("hostcalls", "")],
    ));
    let addr = proxy.address("main").unwrap();
    for a in [get(addr, "/", &[]), get_h2(addr, "/", &[])] {
        assert_eq!(a.status, 500, "{a:?}");
        assert!(a.body.contains("invalid header"), "{a:?}");
    }
    // Had the 500 gone through the chain again, hostcalls would have been refused adding its
    // header to response headers already sent, and its SDK would have panicked.
    let failures = metric(
        &stats(&proxy),
        "wasp_plugin_failures_total{plugin=\"hostcalls\"}",
    );
    assert_eq!(failures.unwrap_or(0.0), 0.0);
    proxy.shutdown();
}
