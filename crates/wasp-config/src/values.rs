//! Parsers for the scalar notations of the file: durations, byte sizes, addresses, endpoints,
//! module URLs, and the canonical JSON of `pluginConfig`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// `15s`, `250ms`, `1m`, `1h`, `1.5s`, `1m30s`; `0` alone is zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const HINT: &str = "expected a duration such as 15s, 250ms, 1m or 1h";
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(format!("empty duration: {HINT}"));
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if number.is_empty() {
            return Err(format!("invalid duration `{s}`: {HINT}"));
        }
        let unit_nanos: u128 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("invalid duration `{s}`: missing unit ({HINT})")),
            other => {
                return Err(format!(
                    "invalid duration `{s}`: unknown unit `{other}` (units: ms, s, m, h)"
                ));
            }
        };
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if int.is_empty() && frac.is_empty() || frac.contains('.') {
            return Err(format!("invalid duration `{s}`: {HINT}"));
        }
        let too_large = || format!("duration `{s}` is too large");
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| too_large())?
        };
        let mut nanos = int.checked_mul(unit_nanos).ok_or_else(too_large)?;
        // Fractions: digits beyond nanosecond precision are dropped.
        let mut scale = unit_nanos;
        for digit in frac.chars().filter_map(|c| c.to_digit(10)) {
            scale /= 10;
            nanos = nanos
                .checked_add(u128::from(digit) * scale)
                .ok_or_else(too_large)?;
        }
        total = total.checked_add(nanos).ok_or_else(too_large)?;
        rest = after;
    }
    let total = u64::try_from(total).map_err(|_| format!("duration `{s}` is too large"))?;
    Ok(Duration::from_nanos(total))
}

/// Formats a duration the way the file writes them (for summaries and docs).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_secs_f64() * 1e3)
    } else if ms == 0 {
        "0s".to_string()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `1048576`, `64KiB`, `1MiB`, `1 GiB` (also `Ki`, `Mi`, `Gi`, and `B` for bytes).
pub fn parse_byte_size(text: &str) -> Result<usize, String> {
    let s = text.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let unit = unit.trim();
    if number.is_empty() {
        return Err(format!(
            "invalid size `{s}`: expected a number of bytes or a size such as 64KiB or 1MiB"
        ));
    }
    let multiplier: u64 = match unit {
        "" | "B" => 1,
        "KiB" | "Ki" => 1 << 10,
        "MiB" | "Mi" => 1 << 20,
        "GiB" | "Gi" => 1 << 30,
        "K" | "KB" | "k" | "kB" | "M" | "MB" | "G" | "GB" => {
            return Err(format!(
                "invalid size `{s}`: use binary units (KiB, MiB, GiB) or plain bytes"
            ));
        }
        other => {
            return Err(format!(
                "invalid size `{s}`: unknown unit `{other}` (units: KiB, MiB, GiB)"
            ));
        }
    };
    let too_large = || format!("size `{s}` is too large");
    let n: u64 = number.parse().map_err(|_| too_large())?;
    let bytes = n.checked_mul(multiplier).ok_or_else(too_large)?;
    usize::try_from(bytes).map_err(|_| too_large())
}

/// An `IP:port` to listen on.
pub fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "invalid address `{text}`: expected IP:port such as 127.0.0.1:8080 or [::1]:8080 \
             (host names are not resolved here)"
        )
    })
}

/// A cluster endpoint: `host:port`, `IPv4:port` or `[IPv6]:port`.
pub fn check_endpoint(text: &str) -> Result<String, String> {
    let s = text.trim();
    if s.contains("://") {
        return Err(format!(
            "invalid endpoint `{s}`: endpoints are host:port, without a scheme"
        ));
    }
    let (host, port) = if let Some(bracketed) = s.strip_prefix('[') {
        let Some((ip, port)) = bracketed.split_once("]:") else {
            return Err(format!("invalid endpoint `{s}`: expected [IPv6]:port"));
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "invalid endpoint `{s}`: `{ip}` is not an IPv6 address"
            ));
        }
        (ip, port)
    } else {
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(format!(
                "invalid endpoint `{s}`: expected host:port (the port is required)"
            ));
        };
        if host.contains(':') {
            return Err(format!(
                "invalid endpoint `{s}`: write IPv6 addresses in brackets, as [::1]:8080"
            ));
        }
        (host, port)
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if !host_ok {
        return Err(format!(
            "invalid endpoint `{s}`: `{host}` is not a host name"
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(s.to_string()),
        _ => Err(format!(
            "invalid endpoint `{s}`: `{port}` is not a port (1-65535)"
        )),
    }
}

/// A TLS server name: a DNS name or an IP address.
pub fn check_server_name(name: &str) -> Result<String, String> {
    let is_ip = name.parse::<std::net::IpAddr>().is_ok();
    let is_dns = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if is_ip || is_dns {
        Ok(name.to_string())
    } else {
        Err(format!(
            "invalid server name `{name}`: expected a DNS name or an IP address"
        ))
    }
}

/// The file an inline plugin's `url` names: `file:///abs/x.wasm`, `file://localhost/abs/x.wasm`,
/// or a bare path (relative to `base`).
pub fn parse_module_file(url: &str, base: &Path) -> Result<PathBuf, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("empty url".to_string());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(resolve(base, url));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err(format!(
                    "`{url}`: a file:// URL needs an absolute path (file:///abs/plugin.wasm); \
                     write a bare path for a file relative to the configuration"
                ));
            }
            let path =
                percent_decode(path).ok_or_else(|| format!("`{url}`: invalid percent-encoding"))?;
            Ok(PathBuf::from(path))
        }
        "http" | "https" | "oci" => Err(format!(
            "`{url}`: inline plugins are read from files; declare a module fetched over \
             {scheme} as a WasmPlugin resource in plugins.sources"
        )),
        other => Err(format!(
            "`{url}`: unsupported URL scheme `{other}` (use file:// or a file path)"
        )),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A path from the file: absolute as written, relative to the configuration's folder otherwise.
/// `.` components are dropped; `..` are kept (resolving them would ignore symbolic links).
pub fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    joined
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// The `file://` URL of an absolute path, for display.
pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// A `pluginConfig`-style mapping as the bytes a plugin's `proxy_on_configure` reads: canonical
/// JSON (as Istio hands it to Envoy), nothing for `null` or `{}`; `None` when it is not a mapping.
pub(crate) fn config_bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::Null => Some(Vec::new()),
        Value::Object(m) if m.is_empty() => Some(Vec::new()),
        v @ Value::Object(_) => Some(canonical_json(v).into_bytes()),
        _ => None,
    }
}

/// `pluginConfig` as Istio hands it to the plugin: the protobuf `Struct` printed as compact JSON,
/// keys sorted, numbers as doubles (so `1.0` prints as `1`).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
        Value::Number(n) => match n.as_f64() {
            // Integral doubles print without a fraction, as protobuf's JSON printer does.
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                out.push_str(&format!("{}", f as i64));
            }
            _ => out.push_str(&n.to_string()),
        },
        leaf => out.push_str(&leaf.to_string()),
    }
}

/// A header name as an HTTP token, lowercased.
pub fn check_header_name(name: &str) -> Result<String, String> {
    const SPECIAL: &str = "!#$%&'*+-.^_`|~";
    if name.is_empty() {
        return Err("empty header name".to_string());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || SPECIAL.contains(*c)))
    {
        return Err(format!(
            "invalid header name `{name}`: `{}` is not allowed in header names",
            c.escape_debug()
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// The regex crate's message without its multi-line caret diagram.
pub fn regex_error_message(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "15",
            "s",
            "15x",
            "1..5s",
            ".s",
            "-1s",
            "1 s",
            "99999999999999999999999h",
            "18446744073709551616s",
            "5000000000000h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(format_duration(Duration::from_secs(15)), "15s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_byte_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_byte_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_byte_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_byte_size("1234"), Ok(1234));
        assert!(parse_byte_size("1MB").unwrap_err().contains("binary units"));
        for bad in ["", "MiB", "1.5MiB", "-1", "1XiB", "99999999999999999999999"] {
            assert!(parse_byte_size(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn endpoints() {
        for good in ["127.0.0.1:80", "example.com:443", "[::1]:8080", "a-b_c.d:1"] {
            assert_eq!(check_endpoint(good).as_deref(), Ok(good));
        }
        for bad in [
            "127.0.0.1",
            "http://x:80",
            "::1:80",
            "[::1]",
            "[nope]:80",
            "x:0",
            "x:70000",
            ":80",
            "a b:80",
            "é:80",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn urls() {
        let base = Path::new("/etc/wasp");
        let file = |u| parse_module_file(u, base);
        assert_eq!(file("x.wasm"), Ok(PathBuf::from("/etc/wasp/x.wasm")));
        assert_eq!(file("/a/x.wasm"), Ok(PathBuf::from("/a/x.wasm")));
        assert_eq!(file("file:///a/x.wasm"), Ok(PathBuf::from("/a/x.wasm")));
        assert_eq!(
            file("file://localhost/a/x.wasm"),
            Ok(PathBuf::from("/a/x.wasm"))
        );
        assert_eq!(
            file("file:///a%20b/x.wasm"),
            Ok(PathBuf::from("/a b/x.wasm"))
        );
        assert!(file("file://x.wasm").unwrap_err().contains("absolute"));
        assert!(file("file:///a%2").is_err());
        assert!(file("file:///a%ff").is_err());
        assert!(
            file("https://x/y.wasm")
                .unwrap_err()
                .contains("as a WasmPlugin resource in plugins.sources")
        );
        assert!(
            file("oci://x/y:1")
                .unwrap_err()
                .contains("as a WasmPlugin resource in plugins.sources")
        );
        assert!(
            file("ftp://x/y")
                .unwrap_err()
                .contains("unsupported URL scheme")
        );
        assert!(file("").is_err());
    }

    #[test]
    fn json() {
        let v: Value = serde_json::json!({"b": {"c": [1, "x", 1.0, 1.5]}, "a": null, "é": true});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":null,"b":{"c":[1,"x",1,1.5]},"é":true}"#
        );
    }

    #[test]
    fn server_names() {
        for good in [
            "example.com",
            "a-b.c_d.example",
            "localhost",
            "10.0.0.1",
            "::1",
        ] {
            assert_eq!(check_server_name(good).as_deref(), Ok(good));
        }
        for bad in ["", "a..b", "-a.com", "a b", "a/b", "é.com", "example.com."] {
            assert!(
                check_server_name(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn header_names() {
        assert_eq!(check_header_name("X-Test").as_deref(), Ok("x-test"));
        assert!(check_header_name("").is_err());
        assert!(check_header_name("a b").is_err());
        assert!(check_header_name("a:b").is_err());
    }
}
