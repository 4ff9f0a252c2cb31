//! Callouts: HTTP calls (to the `callout` cluster, a missing cluster, without `:path`, several
//! at once), a gRPC call and a gRPC stream, and what each callback does when they come back.

use log::{debug, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, Status};
use std::time::Duration;

use crate::{HostcallsHttp, lossy};

const CALLOUT_BODY: &[u8] = b"ping";

impl HostcallsHttp {
    /// On a failed dispatch the request goes on, carrying the status for the test to see.
    fn call_error(&self, status: Status) -> Action {
        self.set_http_request_header("x-call-error", Some(&format!("{status:?}")));
        Action::Continue
    }

    fn dispatch_callout(&mut self, cluster: &str, headers: Vec<(&str, &str)>) -> Action {
        // The conformance suite points callouts at other clusters (timeouts, resets).
        let cluster = self
            .get_http_request_header("x-callout-cluster")
            .unwrap_or_else(|| cluster.to_string());
        let timeout = self
            .get_http_request_header("x-callout-timeout-ms")
            .and_then(|ms| ms.parse().ok())
            .map_or(Duration::from_secs(5), Duration::from_millis);
        match self.dispatch_http_call(
            &cluster,
            headers,
            Some(CALLOUT_BODY),
            vec![("x-call-trailer", "t")],
            timeout,
        ) {
            Ok(token) => {
                self.callout_token = Some(token);
                Action::Pause
            }
            Err(status) => self.call_error(status),
        }
    }

    /// `http-call` and `panic-callout-response`.
    pub(crate) fn http_call(&mut self) -> Action {
        self.dispatch_callout(
            "callout",
            vec![
                (":method", "POST"),
                (":path", "/callout"),
                (":authority", "callout.local"),
                ("x-from", "hostcalls"),
            ],
        )
    }

    pub(crate) fn http_call_bad_cluster(&mut self) -> Action {
        self.dispatch_callout(
            "no-such-cluster",
            vec![
                (":method", "POST"),
                (":path", "/callout"),
                (":authority", "callout.local"),
                ("x-from", "hostcalls"),
            ],
        )
    }

    pub(crate) fn http_call_no_path(&mut self) -> Action {
        self.dispatch_callout(
            "callout",
            vec![
                (":method", "POST"),
                (":authority", "callout.local"),
                ("x-from", "hostcalls"),
            ],
        )
    }

    /// The Go SDK's multiple_dispatches example: several callouts from one callback, with an
    /// empty `:authority` (present, so Envoy accepts it); the stream resumes when all are back.
    pub(crate) fn multiple_dispatches(&mut self) -> Action {
        for _ in 0..3 {
            match self.dispatch_http_call(
                "callout",
                vec![(":path", "/"), (":method", "GET"), (":authority", "")],
                None,
                vec![],
                Duration::from_secs(5),
            ) {
                Ok(_) => self.dispatches_out += 1,
                Err(status) => return self.call_error(status),
            }
        }
        Action::Pause
    }

    fn dispatch_returned(&mut self, num_headers: usize) {
        let status = self
            .get_http_call_response_headers()
            .into_iter()
            .find(|(name, _)| name == ":status")
            .map_or_else(|| "none".to_string(), |(_, value)| value);
        self.dispatch_statuses
            .push(format!("{status}/{num_headers}"));
        self.dispatches_out -= 1;
        if self.dispatches_out == 0 {
            self.dispatch_statuses.sort();
            let statuses = self.dispatch_statuses.join(",");
            info!("all dispatches returned: {statuses}");
            self.set_http_request_header("x-dispatch-statuses", Some(&statuses));
            self.resume_http_request();
        }
    }

    pub(crate) fn grpc_call(&mut self) -> Action {
        match self.dispatch_grpc_call(
            "grpc",
            "wasp.Echo",
            "Say",
            vec![("x-md", b"1")],
            Some(b"hello-grpc"),
            Duration::from_secs(5),
        ) {
            Ok(_token) => Action::Pause,
            Err(status) => self.call_error(status),
        }
    }

    pub(crate) fn grpc_stream(&mut self) -> Action {
        match self.open_grpc_stream("grpc", "wasp.Echo", "Chat", vec![]) {
            Ok(token) => {
                if let Err(status) = hostcalls::send_grpc_stream_message(token, Some(b"m1"), false)
                {
                    self.set_http_request_header("x-grpc-send-error", Some(&format!("{status:?}")));
                }
                Action::Pause
            }
            Err(status) => self.call_error(status),
        }
    }

    /// From on_http_call_response.
    pub(crate) fn http_call_returned(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    ) {
        // Several callouts come back in any order: that scenario logs once, when all are back.
        if self.is("multiple-dispatches") {
            self.dispatch_returned(num_headers);
            return;
        }
        debug!(
            "http_call_response token={token_id} headers={num_headers} body_size={body_size} trailers={num_trailers}"
        );
        if self.callout_token.take() != Some(token_id) {
            warn!("http_call_response for unexpected token={token_id}");
        }
        if self.is("panic-callout-response") {
            panic!("boom in http call response");
        }
        // No headers means the callout failed (timeout, reset, ...).
        if num_headers == 0 {
            self.send_http_response(503, vec![("x-callout-failed", "1")], None);
            return;
        }
        let status = self
            .get_http_call_response_headers()
            .into_iter()
            .find(|(name, _)| name == ":status")
            .map(|(_, value)| value)
            .unwrap_or_default();
        self.add_http_request_header("x-callout-status", &status);
        let body = lossy(self.get_http_call_response_body(0, body_size));
        self.add_http_request_header("x-callout-body", &body);
        self.add_http_request_header("x-callout-header-count", &num_headers.to_string());
        self.add_http_request_header("x-callout-trailer-count", &num_trailers.to_string());
        if let Some(echo) = self.get_http_call_response_header("x-echo") {
            self.add_http_request_header("x-callout-echo", &echo);
        }
        self.resume_http_request();
    }

    /// From on_grpc_call_response.
    pub(crate) fn grpc_call_returned(
        &mut self,
        token_id: u32,
        status_code: u32,
        response_size: usize,
    ) {
        debug!("grpc_call_response token={token_id} status={status_code} size={response_size}");
        let body = lossy(self.get_grpc_call_response_body(0, response_size));
        self.add_http_request_header("x-grpc-status", &status_code.to_string());
        self.add_http_request_header("x-grpc-body", &body);
        self.resume_http_request();
    }

    /// From on_grpc_stream_message.
    pub(crate) fn grpc_stream_received(&mut self, message_size: usize) {
        let msg = lossy(self.get_grpc_stream_message(0, message_size));
        info!("grpc message {msg}");
        self.grpc_messages.push(msg);
    }

    /// From on_grpc_stream_close.
    pub(crate) fn grpc_stream_closed(&mut self, status_code: u32) {
        let value = format!("{};status={status_code}", self.grpc_messages.join(","));
        self.add_http_request_header("x-grpc-stream", &value);
        self.resume_http_request();
    }
}
