//! One HTTP exchange as the filters see and edit it: headers, bodies and trailers of both
//! directions, in the host's shared stream (Wasm hostcalls read and write it there). This
//! type is the data plane's only way into that state: nothing else locks it.

use wasp_host::{HeaderMap, HttpStream, SharedHttpStream};

use crate::filter::properties::StreamRecord;
use crate::filter::signals::Direction;

#[derive(Clone)]
pub(crate) struct Exchange(SharedHttpStream);

impl Exchange {
    /// A new exchange with the request headers as they arrived.
    pub fn new(request_headers: HeaderMap, info: std::sync::Arc<StreamRecord>) -> Exchange {
        let stream = HttpStream::shared(request_headers);
        stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .properties = Some(info);
        Exchange(stream)
    }

    /// The host's handle, for the Wasm VMs.
    pub fn shared(&self) -> &SharedHttpStream {
        &self.0
    }

    fn with<T>(&self, f: impl FnOnce(&mut HttpStream) -> T) -> T {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// A copy of `direction`'s headers (empty if there are none yet).
    pub fn headers(&self, direction: Direction) -> HeaderMap {
        self.with(|s| match direction {
            Direction::Request => s.request_headers.clone(),
            Direction::Response => s.response_headers.clone(),
        })
        .unwrap_or_default()
    }

    pub fn set_response_headers(&self, headers: HeaderMap) {
        self.with(|s| s.response_headers = Some(headers));
    }

    /// The headers of `direction` leave: from now on plugins cannot change them. For a caller
    /// that already holds their copy (no second copy per request).
    pub fn mark_sent(&self, direction: Direction) {
        self.with(|s| match direction {
            Direction::Request => s.request_headers_sent = true,
            Direction::Response => s.response_headers_sent = true,
        });
    }

    /// The headers of `direction` leave: from now on plugins cannot change them. Returns them.
    pub fn send_headers(&self, direction: Direction) -> HeaderMap {
        self.with(|s| match direction {
            Direction::Request => {
                s.request_headers_sent = true;
                s.request_headers.clone()
            }
            Direction::Response => {
                s.response_headers_sent = true;
                s.response_headers.clone()
            }
        })
        .unwrap_or_default()
    }

    pub fn set_body(&self, direction: Direction, bytes: Vec<u8>) {
        self.with(|s| match direction {
            Direction::Request => s.request_body = bytes,
            Direction::Response => s.response_body = bytes,
        });
    }

    pub fn take_body(&self, direction: Direction) -> Vec<u8> {
        self.with(|s| match direction {
            Direction::Request => std::mem::take(&mut s.request_body),
            Direction::Response => std::mem::take(&mut s.response_body),
        })
    }

    /// Edits `direction`'s body in place.
    pub fn body_mut(&self, direction: Direction, f: &mut dyn FnMut(&mut Vec<u8>)) {
        self.with(|s| match direction {
            Direction::Request => f(&mut s.request_body),
            Direction::Response => f(&mut s.response_body),
        });
    }

    pub fn set_trailers(&self, direction: Direction, trailers: HeaderMap) {
        self.with(|s| match direction {
            Direction::Request => s.request_trailers = Some(trailers),
            Direction::Response => s.response_trailers = Some(trailers),
        });
    }

    pub fn trailers(&self, direction: Direction) -> Option<HeaderMap> {
        self.with(|s| match direction {
            Direction::Request => s.request_trailers.clone(),
            Direction::Response => s.response_trailers.clone(),
        })
    }

    /// One of the four header maps, to read or edit in place (`None`: not there yet).
    pub fn map_mut<T>(
        &self,
        direction: Direction,
        trailers: bool,
        f: impl FnOnce(Option<&mut HeaderMap>) -> T,
    ) -> T {
        self.with(|s| {
            f(match (direction, trailers) {
                (Direction::Request, false) => s.request_headers.as_mut(),
                (Direction::Request, true) => s.request_trailers.as_mut(),
                (Direction::Response, false) => s.response_headers.as_mut(),
                (Direction::Response, true) => s.response_trailers.as_mut(),
            })
        })
    }
}
