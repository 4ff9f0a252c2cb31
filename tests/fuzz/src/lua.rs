//! Lua API calls with arguments of every type and shape: a script is written from the input
//! (each call in its own `pcall`, so one error does not hide the rest) and run on a request
//! and its response. A bad argument must be a Lua error the script sees, never a panic.

use std::cell::RefCell;
use std::rc::Rc;

use wasp_lua::{Headers, Limits, LuaScript, LuaWorker, MemoryStream, StreamInfo};

/// The calls, `{0}`, `{1}`, `{2}` standing for arguments.
const CALLS: &[&str] = &[
    "handle:headers():add({0}, {1})",
    "handle:headers():replace({0}, {1})",
    "handle:headers():get({0})",
    "handle:headers():getNumValues({0})",
    "handle:headers():remove({0})",
    "for k, v in pairs(handle:headers()) do local _ = k .. v end",
    "handle:respond({0}, {1})",
    "handle:logInfo({0})",
    "handle:logErr({0})",
    "handle:streamInfo():dynamicMetadata():set({0}, {1}, {2})",
    "handle:streamInfo():dynamicMetadata():get({0})",
    "handle:metadata():get({0})",
    "handle:base64Escape({0})",
    "handle:body():getBytes({0}, {1})",
    "handle:body():setBytes({0})",
    "handle:httpCall({0}, {1}, {2}, 100)",
    "handle:connection():ssl()",
    "handle:streamInfo():downstreamRemoteAddress()",
    "handle:timestampString({0})",
];

/// Reads arguments and calls from the input bytes.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn string(&mut self) -> String {
        let len = usize::from(self.byte().unwrap_or(0) % 24);
        let mut out = String::from("\"");
        for _ in 0..len {
            let b = self.byte().unwrap_or(b'a');
            out.push_str(&format!("\\{b}"));
        }
        out.push('"');
        out
    }

    fn argument(&mut self, depth: u8) -> String {
        match self.byte().unwrap_or(0) % 9 {
            0 => "nil".into(),
            1 => "true".into(),
            2 => format!("{}", i32::from(self.byte().unwrap_or(0)) * 1_000_003 - 7),
            3 => "1e308".into(),
            4 => "-0.5".into(),
            5 if depth < 2 => {
                let n = self.byte().unwrap_or(0) % 4;
                let entries: Vec<String> = (0..n)
                    .map(|_| format!("[{}] = {}", self.string(), self.argument(depth + 1)))
                    .collect();
                format!("{{{}}}", entries.join(", "))
            }
            6 => "function() end".into(),
            7 => "\":status\"".into(),
            _ => self.string(),
        }
    }
}

fn script(data: &[u8]) -> String {
    let mut input = Input(data);
    let mut body = String::new();
    while let Some(which) = input.byte() {
        let call = CALLS[usize::from(which) % CALLS.len()];
        let call = call
            .replace("{0}", &input.argument(0))
            .replace("{1}", &input.argument(0))
            .replace("{2}", &input.argument(0));
        body.push_str(&format!("  pcall(function() {call} end)\n"));
    }
    format!(
        "function envoy_on_request(handle)\n{body}end\nfunction envoy_on_response(handle)\n{body}end\n"
    )
}

/// Runs the script the input writes on one request and its response.
pub fn lua_api(data: &[u8]) {
    if data.len() > 4096 {
        return;
    }
    let code = script(data);
    let script = LuaScript::compile("fuzz.lua", &code)
        .unwrap_or_else(|e| panic!("the generated script compiles: {e}\n{code}"));
    let Ok(worker) = LuaWorker::new(&script, Limits::default()) else {
        return;
    };
    worker.set_log_sink(Rc::new(|_, _, _| {}));
    let memory = Rc::new(RefCell::new(MemoryStream {
        request_headers: Some(Headers::from_pairs([
            (":method", "POST"),
            (":path", "/fuzz"),
            (":authority", "example.com"),
        ])),
        request_body: b"request body".to_vec(),
        ..MemoryStream::default()
    }));
    let mut stream = worker.new_stream(StreamInfo::default(), Box::new(memory.clone()));
    let _ = stream.on_request_headers(false);
    memory.borrow_mut().response_headers = Some(Headers::from_pairs([(":status", "200")]));
    let _ = stream.on_response_headers(true);
}
