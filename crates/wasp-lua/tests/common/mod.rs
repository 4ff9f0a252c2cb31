//! Shared helpers: a worker over one script and an in-memory stream.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use wasp_lua::{
    Headers, Limits, LogLevel, LuaScript, LuaStream, LuaWorker, MemoryStream, StreamInfo,
};

pub type Logs = Rc<RefCell<Vec<(LogLevel, String, String)>>>;

pub struct Harness {
    pub worker: LuaWorker,
    pub logs: Logs,
}

impl Harness {
    pub fn new(code: &str) -> Harness {
        Harness::with_limits(code, Limits::default())
    }

    pub fn with_limits(code: &str, limits: Limits) -> Harness {
        let script = LuaScript::compile("test.lua", code).expect("script compiles");
        let worker = LuaWorker::new(&script, limits).expect("worker starts");
        let logs: Logs = Rc::default();
        let sink = logs.clone();
        worker.set_log_sink(Rc::new(move |level, script, message| {
            sink.borrow_mut()
                .push((level, script.to_string(), message.to_string()));
        }));
        Harness { worker, logs }
    }

    /// A stream whose request headers are `headers`.
    pub fn stream(&self, headers: &[(&str, &str)]) -> (LuaStream, Rc<RefCell<MemoryStream>>) {
        self.stream_with(StreamInfo::default(), headers)
    }

    pub fn stream_with(
        &self,
        info: StreamInfo,
        headers: &[(&str, &str)],
    ) -> (LuaStream, Rc<RefCell<MemoryStream>>) {
        let memory = Rc::new(RefCell::new(MemoryStream {
            request_headers: Some(Headers::from_pairs(headers.iter().copied())),
            ..MemoryStream::default()
        }));
        let stream = self.worker.new_stream(info, Box::new(memory.clone()));
        (stream, memory)
    }

    pub fn messages(&self) -> Vec<String> {
        self.logs
            .borrow()
            .iter()
            .map(|(_, _, m)| m.clone())
            .collect()
    }
}

pub fn request() -> Vec<(&'static str, &'static str)> {
    vec![
        (":method", "GET"),
        (":path", "/"),
        (":authority", "example.com"),
    ]
}

/// Sets the response headers of the stream, as the chain does before the response phase.
pub fn set_response(memory: &Rc<RefCell<MemoryStream>>, headers: &[(&str, &str)]) {
    memory.borrow_mut().response_headers = Some(Headers::from_pairs(headers.iter().copied()));
}

pub fn request_header(memory: &Rc<RefCell<MemoryStream>>, key: &str) -> Option<String> {
    memory
        .borrow()
        .request_headers
        .as_ref()
        .and_then(|h| h.get(key).map(str::to_string))
}

pub fn response_header(memory: &Rc<RefCell<MemoryStream>>, key: &str) -> Option<String> {
    memory
        .borrow()
        .response_headers
        .as_ref()
        .and_then(|h| h.get(key).map(str::to_string))
}
