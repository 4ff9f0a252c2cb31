//! Body scenarios: buffer the whole request or response body, then edit it once (uppercase,
//! append, prepend, splice).

use proxy_wasm::traits::HttpContext;
use proxy_wasm::types::Action;

use crate::HostcallsHttp;

impl HostcallsHttp {
    /// Shared by the body scenarios: buffer until end of stream, then edit the body once.
    pub(crate) fn edit_request_body(&self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        match self.scenario.as_str() {
            "buffer-request" => {
                let body = self.get_http_request_body(0, body_size).unwrap_or_default();
                self.set_http_request_body(0, body_size, &body.to_ascii_uppercase());
            }
            "body-append" => self.set_http_request_body(body_size, 0, b"-appended"),
            "body-prepend" => self.set_http_request_body(0, 0, b"prepended-"),
            "body-splice" => self.set_http_request_body(1, 2, b"XY"),
            _ => {}
        }
        Action::Continue
    }

    /// `response-append` and `buffer-response`; every other scenario continues.
    pub(crate) fn edit_response_body(&self, body_size: usize, end_of_stream: bool) -> Action {
        // The length changes while the upstream's content-length is left in place: the host
        // must not send a stale length.
        if self.is("response-append") {
            if !end_of_stream {
                return Action::Pause;
            }
            self.set_http_response_body(body_size, 0, b"-appended");
        }
        if self.is("buffer-response") {
            if !end_of_stream {
                return Action::Pause;
            }
            let body = self
                .get_http_response_body(0, body_size)
                .unwrap_or_default();
            self.set_http_response_body(0, body_size, &body.to_ascii_uppercase());
        }
        Action::Continue
    }
}
