//! The admin endpoint, metrics, and waiting for a condition.

use std::time::Duration;

use wasp_proxy::Proxy;

use super::*;

pub fn admin(proxy: &Proxy, path: &str) -> Answer {
    get(proxy.admin_address().unwrap(), path, &[])
}

/// A sample of the Prometheus text: `name` exactly (with its labels, if given in `name`).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        // An empty label set may be written `name{}`.
        let key = key.strip_suffix("{}").unwrap_or(key);
        (key == name).then(|| value.parse().ok()).flatten()
    })
}

/// `/plugins`' entry for the plugin named `name`.
pub fn plugin_status(proxy: &Proxy, name: &str) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_str(&admin(proxy, "/plugins").body).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
        .unwrap()
}

pub fn stats(proxy: &Proxy) -> String {
    admin(proxy, "/stats/prometheus").body
}

/// Polls `f` every 10 ms until it holds or `within` passes.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Decodes the `hex:<hex>` values of the hostcalls `properties` scenario.
pub fn unhex(value: &str) -> Vec<u8> {
    let hex = value
        .strip_prefix("hex:")
        .unwrap_or_else(|| panic!("{value}"));
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
