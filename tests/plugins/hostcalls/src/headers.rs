//! Request header scenarios: `headers` (add, replace, remove, read back, rewrite `:path`)
//! and `set-headers` (replace the whole map).

use proxy_wasm::traits::HttpContext;
use proxy_wasm::types::Action;

use crate::HostcallsHttp;

impl HostcallsHttp {
    pub(crate) fn headers(&self) -> Action {
        self.add_http_request_header("x-added", "yes");
        self.set_http_request_header("x-replace", Some("replaced"));
        self.remove_http_request_header("x-remove");
        // Taken after the three edits above, so it shows their effect.
        let names: Vec<String> = self
            .get_http_request_headers()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        self.set_http_request_header("x-seen-headers", Some(&names.join(",")));
        if self.get_http_request_header("x-missing").is_none() {
            self.set_http_request_header("x-missing", Some("none"));
        }
        if let Some(path) = self.get_http_request_header("x-new-path") {
            self.set_http_request_header(":path", Some(&path));
        }
        let pairs = self.get_http_request_headers_bytes().len();
        self.set_http_request_header("x-pairs", Some(&pairs.to_string()));
        Action::Continue
    }

    pub(crate) fn set_headers(&self) -> Action {
        let mut pairs = vec![
            (":method", "GET"),
            (":path", "/replaced"),
            (":authority", "replaced.local"),
            (":scheme", "http"),
            ("x-only", "1"),
        ];
        // Keeping Envoy's x-forwarded-proto keeps the request routable.
        if self.get_http_request_header("x-keep-proto").is_some() {
            pairs.push(("x-forwarded-proto", "http"));
        }
        self.set_http_request_headers(pairs);
        Action::Continue
    }
}
