//! Turns what each proxy produced into comparable text lines (after ignoring what legitimately
//! differs between any two proxies: dates, server names, Envoy's own `x-envoy-*` headers,
//! request ids by presence) and reports every aspect where the two sides differ.

use crate::client::Seen;
use crate::observe::{LogLine, Metrics, PluginLogs};
use crate::scenario::{Aspect, Pair};
use wasp_test_support::upstream::Received;

/// One aspect where Envoy and wasp differ; both sides as lines.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub aspect: Aspect,
    /// Which request or cluster or plugin it is about (`request 1`, `cluster callout`).
    pub what: String,
    pub envoy: Vec<String>,
    pub wasp: Vec<String>,
}

/// Header names compared by presence only, beyond the case's own list.
const PRESENCE_ONLY: &[&str] = &["x-request-id"];

/// Headers dropped from responses: they name or time the proxy, not the plugin's doing.
fn ignored_response_header(name: &str) -> bool {
    name == "date" || name == "server" || name.starts_with("x-envoy-")
}

/// Headers dropped from what upstreams receive; `x-envoy-*` covers
/// `x-envoy-expected-rq-timeout-ms`.
fn ignored_upstream_header(name: &str) -> bool {
    ignored_response_header(name) || name == "x-forwarded-for"
}

pub struct Normalizer<'a> {
    pub presence_only: &'a [String],
}

impl Normalizer<'_> {
    fn headers(&self, headers: &[Pair], ignore: fn(&str) -> bool) -> Vec<String> {
        let mut kept: Vec<(String, String)> = headers
            .iter()
            .filter(|(k, _)| !ignore(&k.to_ascii_lowercase()))
            .map(|(k, v)| {
                let k = k.to_ascii_lowercase();
                let masked = PRESENCE_ONLY.contains(&k.as_str())
                    || self
                        .presence_only
                        .iter()
                        .any(|p| p.eq_ignore_ascii_case(&k));
                let v = if masked {
                    "<present>".into()
                } else {
                    v.clone()
                };
                (k, v)
            })
            .collect();
        // Order between different names is not significant; order of one name's values is.
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        kept.into_iter().map(|(k, v)| format!("{k}: {v}")).collect()
    }

    fn received(&self, r: &Received) -> Vec<String> {
        let mut lines = vec![format!("{} {} {:?}", r.method, r.path, r.version)];
        lines.extend(self.headers(&r.headers, ignored_upstream_header));
        lines.push(format!("body: {}", text(&r.body)));
        lines.extend(
            self.headers(&r.trailers, ignored_upstream_header)
                .into_iter()
                .map(|t| format!("trailer {t}")),
        );
        lines
    }

    /// Every aspect of one request's response that differs.
    pub fn response(&self, what: &str, envoy: &Seen, wasp: &Seen, out: &mut Vec<Mismatch>) {
        let status = |s: &Seen| match &s.error {
            Some(e) => vec![format!("error: {e}")],
            None => vec![s.status.to_string()],
        };
        push(out, Aspect::Status, what, status(envoy), status(wasp));
        push(
            out,
            Aspect::ResponseHeaders,
            what,
            self.headers(&envoy.headers, ignored_response_header),
            self.headers(&wasp.headers, ignored_response_header),
        );
        push(
            out,
            Aspect::ResponseBody,
            what,
            vec![text(&envoy.body)],
            vec![text(&wasp.body)],
        );
        push(
            out,
            Aspect::ResponseTrailers,
            what,
            self.headers(&envoy.trailers, ignored_response_header),
            self.headers(&wasp.trailers, ignored_response_header),
        );
    }

    /// The requests one upstream (the case's, or a callout cluster) received.
    pub fn upstream(
        &self,
        aspect: Aspect,
        what: &str,
        envoy: &[Received],
        wasp: &[Received],
        out: &mut Vec<Mismatch>,
    ) {
        let lines = |all: &[Received]| -> Vec<String> {
            let mut lines = vec![format!("{} request(s)", all.len())];
            for (i, r) in all.iter().enumerate() {
                lines.extend(self.received(r).into_iter().map(|l| format!("#{i} {l}")));
            }
            lines
        };
        push(out, aspect, what, lines(envoy), lines(wasp));
    }
}

pub fn logs(what: &str, envoy: &[LogLine], wasp: &[LogLine], out: &mut Vec<Mismatch>) {
    let lines = |all: &[LogLine]| -> Vec<String> {
        all.iter()
            .map(|l| format!("{} {}", l.level, mask_uuids(&l.message)))
            .collect()
    };
    push(out, Aspect::Logs, what, lines(envoy), lines(wasp));
}

/// Each plugin's log lines (`keys`: `<root_id> <vm_id>`, how both proxies tag them);
/// `when` ends the label (` while starting`, or nothing).
pub fn plugin_logs(
    keys: &[String],
    when: &str,
    envoy: &PluginLogs,
    wasp: &PluginLogs,
    out: &mut Vec<Mismatch>,
) {
    for key in keys {
        logs(
            &format!("plugin {key}{when}"),
            envoy.get(key).map_or(&[], Vec::as_slice),
            wasp.get(key).map_or(&[], Vec::as_slice),
            out,
        );
    }
}

pub fn metrics(what: &str, envoy: &Metrics, wasp: &Metrics, out: &mut Vec<Mismatch>) {
    let lines =
        |m: &Metrics| -> Vec<String> { m.iter().map(|(k, v)| format!("{k} {v}")).collect() };
    push(out, Aspect::Metrics, what, lines(envoy), lines(wasp));
}

pub fn access_log(envoy: &[String], wasp: &[String], out: &mut Vec<Mismatch>) {
    push(
        out,
        Aspect::AccessLog,
        "access log",
        envoy.to_vec(),
        wasp.to_vec(),
    );
}

fn push(
    out: &mut Vec<Mismatch>,
    aspect: Aspect,
    what: &str,
    envoy: Vec<String>,
    wasp: Vec<String>,
) {
    if envoy != wasp {
        out.push(Mismatch {
            aspect,
            what: what.to_owned(),
            envoy,
            wasp,
        });
    }
}

/// Request ids are random on both sides: a plugin logging one logs `<uuid>` here.
fn mask_uuids(text: &str) -> String {
    let bytes = text.as_bytes();
    let shape = |s: &[u8]| {
        s.len() == 36
            && s.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
    };
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if i + 36 <= bytes.len() && shape(&bytes[i..i + 36]) {
            out.push_str("<uuid>");
            i += 36;
        } else {
            let c = text[i..].chars().next().unwrap_or('?');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// A body as text (control characters escaped), or as hex when it is not UTF-8.
pub fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => format!("{s:?}"),
        Err(_) => format!(
            "hex:{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}
