//! Allocates memory until the host's memory cap makes an allocation fail, which aborts
//! (an `unreachable` trap) inside on_http_request_headers.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::cell::RefCell;
use std::hint::black_box;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(MembombRoot) });
}}

const CHUNK: usize = 1 << 20;

thread_local! {
    // Global, so nothing is ever freed between chunks.
    static HOARD: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

struct MembombRoot;

impl Context for MembombRoot {}

impl RootContext for MembombRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Membomb))
    }
}

struct Membomb;

impl Context for Membomb {}

impl HttpContext for Membomb {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        loop {
            // A non-zero fill really writes every page (a zeroed Vec could skip that).
            let chunk = black_box(vec![0xA5u8; CHUNK]);
            HOARD.with(|h| h.borrow_mut().push(chunk));
        }
    }
}
