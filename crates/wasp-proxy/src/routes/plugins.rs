//! Which plugins of a listener's chain run for one request, and with which configuration:
//! the route's setting for the plugin, else its virtual host's, else the first of the plugin's
//! own rules that matches (Higress `matchRules`, Istio `targetRefs` of kind Service), else its
//! default (on, unless `default_disabled`) — the most specific wins, as Envoy's
//! `typed_per_filter_config`.

use crate::plugins::set::PluginSet;
use crate::spec::{MatchRule, PluginSetting, RouteAction};

use super::Matched;
use super::hosts::domain_matches;

/// What the request is matched on.
pub(crate) struct RequestFacts<'a> {
    pub authority: &'a str,
    pub matched: Option<&'a Matched<'a>>,
}

/// The filters of one stream: each plugin of `chain` that runs, with its setting for the
/// request (`Enabled`: its own configuration), in chain order.
pub(crate) fn plan(
    set: &PluginSet,
    chain: &[usize],
    request: &RequestFacts<'_>,
) -> Vec<(usize, PluginSetting)> {
    chain
        .iter()
        .filter_map(|&plugin| {
            let setting = setting_for(set, plugin, request);
            (setting != PluginSetting::Disabled).then_some((plugin, setting))
        })
        .collect()
}

fn setting_for(set: &PluginSet, plugin: usize, request: &RequestFacts<'_>) -> PluginSetting {
    let spec = &set.plugins[plugin].spec;
    if let Some(m) = request.matched {
        if let Some(s) = m.route.plugins.get(&spec.name) {
            return s.clone();
        }
        if let Some(s) = m.host.and_then(|h| h.plugins.get(&spec.name)) {
            return s.clone();
        }
    }
    let routing = &spec.routing;
    if let Some(rule) = routing.rules.iter().find(|r| rule_matches(r, request)) {
        return rule.setting.clone();
    }
    if routing.default_disabled {
        PluginSetting::Disabled
    } else {
        PluginSetting::Enabled
    }
}

fn rule_matches(rule: &MatchRule, request: &RequestFacts<'_>) -> bool {
    if rule
        .domains
        .iter()
        .any(|d| domain_matches(d, request.authority))
    {
        return true;
    }
    let Some(m) = request.matched else {
        return false;
    };
    if m.host.is_some_and(|h| rule.virtual_hosts.contains(&h.name)) {
        return true;
    }
    let by_route = !m.route.name.is_empty()
        && rule.routes.iter().any(|r| {
            r == &m.route.name
                || r.rsplit_once('/')
                    .is_some_and(|(_, name)| name == m.route.name)
        });
    let cluster = match &m.route.action {
        RouteAction::Cluster { name, .. } => Some(name.as_str()),
        RouteAction::Direct { .. } => None,
    };
    by_route || cluster.is_some_and(|c| rule.services.iter().any(|s| service_matches(s, c)))
}

/// Whether a rule's service names cluster `cluster`: by name, or by host (with or without
/// `:port`) in Istio's cluster naming (`outbound|PORT|SUBSET|HOST`).
fn service_matches(service: &str, cluster: &str) -> bool {
    if service == cluster {
        return true;
    }
    let (host, port) = match cluster.split('|').collect::<Vec<_>>()[..] {
        [_, port, _, host] => (host, Some(port)),
        _ => (cluster, None),
    };
    match service.rsplit_once(':') {
        Some((want, want_port)) if want_port.bytes().all(|b| b.is_ascii_digit()) => {
            want == host && port == Some(want_port)
        }
        _ => service == host,
    }
}

#[cfg(test)]
mod tests {
    use super::service_matches;

    #[test]
    fn services_by_name_host_and_port() {
        assert!(service_matches("reviews", "reviews"));
        let istio = "outbound|9080||reviews.default.svc.cluster.local";
        assert!(service_matches("reviews.default.svc.cluster.local", istio));
        assert!(service_matches(
            "reviews.default.svc.cluster.local:9080",
            istio
        ));
        assert!(!service_matches(
            "reviews.default.svc.cluster.local:80",
            istio
        ));
        assert!(!service_matches("ratings.default.svc.cluster.local", istio));
    }
}
