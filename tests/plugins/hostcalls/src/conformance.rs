//! Scenarios the Envoy conformance suite (tests/conformance) drives: header edits on both
//! directions, pseudo-headers, repeated headers, body edits (buffered and streamed) on both
//! directions, local replies from every phase, and attributes read again in on_log. Each hook
//! returns `None` when the scenario is not one of these, so the original scenarios run as
//! before.

use log::info;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::HttpContext;
use proxy_wasm::types::Action;

use crate::{HostcallsHttp, hex};

impl HostcallsHttp {
    pub(crate) fn conformance_request_headers(&mut self) -> Option<Action> {
        Some(match self.scenario.as_str() {
            "repeated-headers" => {
                // The single-value getter returns the first value (Envoy); the pair list has
                // every value.
                let first = self.get_http_request_header("x-rep").unwrap_or_default();
                let all: Vec<String> = self
                    .get_http_request_headers()
                    .into_iter()
                    .filter(|(k, _)| k == "x-rep")
                    .map(|(_, v)| v)
                    .collect();
                self.set_http_request_header("x-rep-first", Some(&first));
                self.set_http_request_header("x-rep-all", Some(&all.join("|")));
                self.add_http_request_header("x-rep", "added");
                Action::Continue
            }
            "pseudo-headers" => {
                let seen = [":method", ":path", ":authority", ":scheme"]
                    .map(|h| self.get_http_request_header(h).unwrap_or_default());
                self.set_http_request_header("x-seen-pseudo", Some(&seen.join(" ")));
                self.set_http_request_header(":method", Some("PUT"));
                self.set_http_request_header(":path", Some("/rewritten?q=1"));
                self.set_http_request_header(":authority", Some("rewritten.local"));
                Action::Continue
            }
            "set-header-empty" => {
                self.set_http_request_header("x-empty", Some(""));
                self.set_http_request_header("x-remove", None);
                self.set_http_request_header("x-never-there", None);
                Action::Continue
            }
            "local-reply-headers-body" => {
                self.send_http_response(
                    401,
                    vec![("x-local", "1"), ("x-local", "2"), ("content-type", "text/x")],
                    Some(b"denied"),
                );
                Action::Pause
            }
            "local-reply-empty" => {
                self.send_http_response(204, vec![], None);
                Action::Pause
            }
            "request-headers-count" => {
                let n = self.get_http_request_headers().len();
                self.set_http_request_header("x-count", Some(&n.to_string()));
                Action::Continue
            }
            _ => return None,
        })
    }

    pub(crate) fn conformance_request_body(
        &mut self,
        body_size: usize,
        end_of_stream: bool,
    ) -> Option<Action> {
        Some(match self.scenario.as_str() {
            // Rewrite every chunk as it passes, without buffering.
            "stream-request-upper" => {
                let body = self.get_http_request_body(0, body_size).unwrap_or_default();
                self.set_http_request_body(0, body_size, &body.to_ascii_uppercase());
                info!("stream request chunk size={body_size} eos={end_of_stream}");
                Action::Continue
            }
            "body-replace-shorter" | "body-replace-longer" => {
                if !end_of_stream {
                    return Some(Action::Pause);
                }
                let new: &[u8] = if self.is("body-replace-shorter") {
                    b"short"
                } else {
                    b"a much longer replacement body than the original"
                };
                self.set_http_request_body(0, body_size, new);
                Action::Continue
            }
            "body-size-seen" => {
                // The whole buffered body's size on every call while paused.
                info!("request body size={body_size} eos={end_of_stream}");
                if end_of_stream {
                    Action::Continue
                } else {
                    Action::Pause
                }
            }
            "local-reply-request-body" => {
                if !end_of_stream {
                    return Some(Action::Pause);
                }
                self.send_http_response(413, vec![("x-local", "body")], Some(b"too much"));
                Action::Pause
            }
            _ => return None,
        })
    }

    pub(crate) fn conformance_response_headers(&mut self) -> Option<Action> {
        Some(match self.scenario.as_str() {
            "response-headers" => {
                let status = self.get_http_response_header(":status").unwrap_or_default();
                self.add_http_response_header("x-seen-status", &status);
                self.add_http_response_header("x-multi", "a");
                self.add_http_response_header("x-multi", "b");
                self.set_http_response_header("x-up-replace", Some("replaced"));
                self.set_http_response_header("x-up-remove", None);
                self.set_http_response_header(":status", Some("201"));
                Action::Continue
            }
            "local-reply-response-headers" => {
                self.send_http_response(502, vec![("x-local", "resp")], Some(b"from response"));
                Action::Pause
            }
            _ => return None,
        })
    }

    pub(crate) fn conformance_response_body(
        &mut self,
        body_size: usize,
        end_of_stream: bool,
    ) -> Option<Action> {
        Some(match self.scenario.as_str() {
            "stream-response-upper" => {
                let body = self.get_http_response_body(0, body_size).unwrap_or_default();
                self.set_http_response_body(0, body_size, &body.to_ascii_uppercase());
                Action::Continue
            }
            "response-body-append" | "response-body-prepend" | "response-body-replace" => {
                if !end_of_stream {
                    return Some(Action::Pause);
                }
                match self.scenario.as_str() {
                    "response-body-append" => {
                        self.set_http_response_body(body_size, 0, b"-appended")
                    }
                    "response-body-prepend" => self.set_http_response_body(0, 0, b"prepended-"),
                    _ => self.set_http_response_body(0, body_size, b"replaced"),
                }
                Action::Continue
            }
            // The response's headers and first chunks have left: the reply cannot be sent.
            "local-reply-response-body-late" => {
                if end_of_stream {
                    self.send_http_response(500, vec![("x-local", "late")], Some(b"too late"));
                }
                Action::Continue
            }
            "local-reply-response-body" => {
                if !end_of_stream {
                    return Some(Action::Pause);
                }
                self.send_http_response(500, vec![("x-local", "resp-body")], Some(b"late"));
                Action::Pause
            }
            _ => return None,
        })
    }

    /// Logs each attribute named in `x-log-properties` as `prop <path>=<hex>` from on_log, where
    /// response and upstream attributes are complete.
    pub(crate) fn log_properties(&self) {
        for path in self.log_properties.split(',').map(str::trim) {
            if path.is_empty() {
                continue;
            }
            let value = match hostcalls::get_property(path.split('.').collect()) {
                Ok(Some(bytes)) => format!("hex:{}", hex(&bytes)),
                Ok(None) => "none".to_string(),
                Err(status) => format!("err:{status:?}"),
            };
            info!("prop {path}={value}");
        }
    }
}
