//! Properties: `properties` reads the paths listed in `x-properties` (as hex), and
//! `set-property` writes one and reads it back.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::HttpContext;
use proxy_wasm::types::Action;

use crate::{HostcallsHttp, hex, lossy};

impl HostcallsHttp {
    pub(crate) fn properties(&self) -> Action {
        let list = self
            .get_http_request_header("x-properties")
            .unwrap_or_default();
        for path in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let value = match hostcalls::get_property(path.split('.').collect()) {
                Ok(Some(bytes)) => format!("hex:{}", hex(&bytes)),
                Ok(None) => "none".to_string(),
                Err(status) => format!("err:{status:?}"),
            };
            let name = format!("x-prop-{}", path.replace('.', "-"));
            self.set_http_request_header(&name, Some(&value));
        }
        Action::Continue
    }

    pub(crate) fn set_property_scenario(&self) -> Action {
        let _ = hostcalls::set_property(vec!["wasp", "test"], Some(b"value-1"));
        let value = match hostcalls::get_property(vec!["wasp", "test"]) {
            Ok(Some(bytes)) => lossy(Some(bytes)),
            Ok(None) => "none".to_string(),
            Err(status) => format!("err:{status:?}"),
        };
        self.set_http_request_header("x-set-property", Some(&value));
        Action::Continue
    }
}
