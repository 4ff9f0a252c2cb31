//! What the host offers besides the stream: foreign functions, logging at every level, the
//! clock, randomness (WASI `random_get`), environment variables and stdio.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};
use std::time::UNIX_EPOCH;

use crate::{HostcallsHttp, hex, lossy};

impl HostcallsHttp {
    pub(crate) fn foreign(&self) -> Action {
        let input: &[u8] = b"hello hello hello hello";
        let roundtrip = match self.call_foreign_function("compress", Some(input)) {
            Ok(compressed) => {
                let compressed = compressed.unwrap_or_default();
                match self.call_foreign_function("uncompress", Some(&compressed)) {
                    Ok(plain) => lossy(plain),
                    Err(status) => format!("err:uncompress:{status:?}"),
                }
            }
            Err(status) => format!("err:compress:{status:?}"),
        };
        self.set_http_request_header("x-foreign", Some(&roundtrip));
        let missing = match self.call_foreign_function("no_such_function", None) {
            Ok(_) => "ok".to_string(),
            Err(status) => format!("{status:?}"),
        };
        self.set_http_request_header("x-foreign-missing", Some(&missing));
        Action::Continue
    }

    pub(crate) fn log_levels(&self) -> Action {
        for (level, text) in [
            (LogLevel::Trace, "level trace"),
            (LogLevel::Debug, "level debug"),
            (LogLevel::Info, "level info"),
            (LogLevel::Warn, "level warn"),
            (LogLevel::Error, "level error"),
            (LogLevel::Critical, "level critical"),
        ] {
            let _ = hostcalls::log(level, text);
        }
        let level = match hostcalls::get_log_level() {
            Ok(level) => format!("{level:?}"),
            Err(status) => format!("err:{status:?}"),
        };
        self.set_http_request_header("x-log-level", Some(&level));
        Action::Continue
    }

    pub(crate) fn time(&self) -> Action {
        let nanos = self
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        self.set_http_request_header("x-time-ns", Some(&nanos.to_string()));
        Action::Continue
    }

    pub(crate) fn random(&self) -> Action {
        let mut buf = [0u8; 16];
        let value = match getrandom::fill(&mut buf) {
            Ok(()) => hex(&buf),
            Err(e) => format!("err:{e}"),
        };
        self.set_http_request_header("x-random", Some(&value));
        Action::Continue
    }

    pub(crate) fn env(&self) -> Action {
        let value = self
            .get_http_request_header("x-env-name")
            .and_then(|name| std::env::var(name).ok())
            .unwrap_or_else(|| "missing".to_string());
        self.set_http_request_header("x-env-value", Some(&value));
        Action::Continue
    }

    pub(crate) fn stdio(&self) -> Action {
        println!("stdout line from hostcalls");
        eprintln!("stderr line from hostcalls");
        Action::Continue
    }
}
