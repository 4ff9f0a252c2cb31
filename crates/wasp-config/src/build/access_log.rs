//! `listeners[].access_log`: files and Envoy format strings. A format is parsed here (with
//! wasp-accesslog, as the data plane will) so that an unknown operator is reported at its
//! field with its position.

use std::path::PathBuf;

use serde_saphyr::Spanned;
use wasp_accesslog::Format;
use wasp_spec::{AccessLogFormat, AccessLogSpec};

use crate::raw::RawAccessLog;

use super::{Builder, Result};

impl Builder<'_> {
    pub(super) fn access_logs(
        &self,
        raw: &[Spanned<RawAccessLog>],
        listener: &str,
    ) -> Result<Vec<AccessLogSpec>> {
        let mut out = Vec::with_capacity(raw.len());
        for (i, log) in raw.iter().enumerate() {
            let path = format!("{listener}.access_log[{i}]");
            let l = &log.value;
            let format = match (&l.format, &l.json_format) {
                (Some(_), Some(json)) => {
                    return Err(self.errs.at(
                        &json.referenced,
                        format!("{path}.json_format"),
                        "give `format` or `json_format`, not both",
                    ));
                }
                (None, None) => AccessLogFormat::EnvoyDefault,
                (Some(text), None) => match text.value.as_str() {
                    "envoy" => AccessLogFormat::EnvoyDefault,
                    "istio" => AccessLogFormat::IstioDefault,
                    t => {
                        Format::text(t).map_err(|e| {
                            self.errs
                                .at(&text.referenced, format!("{path}.format"), e.to_string())
                        })?;
                        AccessLogFormat::Text(t.to_string())
                    }
                },
                (None, Some(json)) => {
                    Format::json(&json.value).map_err(|e| {
                        self.errs.at(
                            &json.referenced,
                            format!("{path}.json_format"),
                            e.to_string(),
                        )
                    })?;
                    AccessLogFormat::Json(json.value.clone())
                }
            };
            let file = match &l.path {
                Some(p) if p.value.trim().is_empty() => {
                    return Err(self
                        .errs
                        .at(&p.referenced, format!("{path}.path"), "empty path"));
                }
                Some(p) => crate::values::resolve(&self.base, p.value.trim()),
                None => PathBuf::from("/dev/stdout"),
            };
            out.push(AccessLogSpec { path: file, format });
        }
        Ok(out)
    }
}
