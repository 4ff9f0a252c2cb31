//! Errors name the script and the line, at load time and at run time, as Envoy's do (Lua's
//! `[string "<first line>..."]:<line>:` positions), and never panic.

mod common;

use common::{Harness, request};
use wasp_lua::{LogLevel, LuaError, LuaScript, Outcome};

#[test]
fn syntax_errors_name_script_and_line() {
    let err = LuaScript::compile(
        "ns.name",
        "function envoy_on_request(handle)\n  local x = 1\n  x = = 2\nend",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "lua script 'ns.name': [string \"function envoy_on_request(handle)...\"]:3: "
        ),
        "{text}"
    );
    assert!(matches!(err, LuaError::Script { .. }));
}

#[test]
fn top_level_errors_name_script_and_line() {
    let err = LuaScript::compile("ns.name", "local a = 1\nerror('boom')\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "lua script 'ns.name': [string \"local a = 1...\"]:2: boom"
    );
}

#[test]
fn a_script_needs_an_entry_point() {
    let err = LuaScript::compile("ns.name", "function helper() end").unwrap_err();
    assert_eq!(err, LuaError::NoEntryPoint("ns.name".into()));
    let script = LuaScript::compile("ns.name", "function envoy_on_response(h) end").unwrap();
    assert!(!script.has_on_request());
    assert!(script.has_on_response());
    assert_eq!(script.name(), "ns.name");
}

#[test]
fn runtime_errors_answer_with_the_line_and_are_logged() {
    let h =
        Harness::new("function envoy_on_request(handle)\n  local t = nil\n  return t.field\nend");
    let (mut s, _m) = h.stream(&request());
    let Outcome::Error(e) = s.on_request_headers(true) else {
        panic!("expected an error")
    };
    assert!(
        e.starts_with("[string \"function envoy_on_request(handle)...\"]:3: attempt to index"),
        "{e}"
    );
    let logs = h.logs.borrow();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].0, LogLevel::Error);
    assert_eq!(logs[0].2, e);
    drop(logs);
    // After an error the direction passes.
    assert_eq!(s.on_request_body(true), Outcome::Continue);
}

#[test]
fn explicit_errors_and_bad_api_arguments_have_lines() {
    let h = Harness::new(
        r#"function envoy_on_request(handle)
  local case = handle:headers():get("x-case")
  if case == "error" then error("custom failure") end
  if case == "table" then error({code = 1}) end
  if case == "arg" then handle:headers():add("k", nil) end
  if case == "method" then handle:noSuchMethod() end
end"#,
    );
    let run = |case: &str| {
        let (mut s, _m) = h.stream(&[(":path", "/"), ("x-case", case)]);
        match s.on_request_headers(true) {
            Outcome::Error(e) => e,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        run("error"),
        "[string \"function envoy_on_request(handle)...\"]:3: custom failure"
    );
    // A table raised as the error carries no position; its text is what tostring gives.
    let table = run("table");
    assert!(table.starts_with("table: "), "{table}");
    let arg = run("arg");
    assert!(
        arg.starts_with("[string \"function envoy_on_request(handle)...\"]:5: bad argument"),
        "{arg}"
    );
    let method = run("method");
    assert!(
        method.starts_with("[string \"function envoy_on_request(handle)...\"]:6: "),
        "{method}"
    );
}

#[test]
fn errors_in_the_response_path_and_after_resuming() {
    let h = Harness::new(
        r"function envoy_on_response(handle)
  local body = handle:body()
  local n = body:length() + nil
end",
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    common::set_response(&m, &[(":status", "200")]);
    assert_eq!(s.on_response_headers(false), Outcome::StopAndBuffer);
    m.borrow_mut().response_body = b"body".to_vec();
    let Outcome::Error(e) = s.on_response_body(true) else {
        panic!("expected an error")
    };
    assert!(
        e.starts_with(
            "[string \"function envoy_on_response(handle)...\"]:3: attempt to perform arithmetic"
        ),
        "{e}"
    );
}

#[test]
fn yielding_outside_the_api_is_an_error() {
    let h = Harness::new("function envoy_on_request(handle)\n  coroutine.yield()\nend");
    let (mut s, _m) = h.stream(&request());
    assert_eq!(
        s.on_request_headers(true),
        Outcome::Error(
            "[string \"function envoy_on_request(handle)...\"]: envoy_on_request yielded outside of a handle call".into()
        )
    );
}
