//! Which proxies and traffic a resource applies to: `selector`, `targetRef(s)`, `match`.

use std::collections::BTreeMap;

use serde_saphyr::Location;

use super::{Attachment, TargetRef, TrafficMatcher, TrafficSelector, WorkloadMode};

use super::raw::*;
use super::{Checker, Result, S};

impl Checker<'_> {
    pub(super) fn attachment(&self, c: &Common) -> Result<Attachment> {
        let set: Vec<(&str, &Location)> = [
            c.selector.as_ref().map(|s| ("selector", &s.referenced)),
            c.target_ref.as_ref().map(|s| ("targetRef", &s.referenced)),
            c.target_refs
                .as_ref()
                .map(|s| ("targetRefs", &s.referenced)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if set.len() > 1 {
            let names: Vec<&str> = set.iter().map(|(n, _)| *n).collect();
            return Err(self.err(
                set[1].1,
                &format!("spec.{}", set[1].0),
                format!(
                    "only one of selector, targetRef or targetRefs can be set (found {})",
                    names.join(" and ")
                ),
            ));
        }
        if let Some(selector) = &c.selector {
            let mut labels = BTreeMap::new();
            let mut entries = selector.value.match_labels.as_ref();
            if let Some(alias) = &selector.value.labels {
                if entries.is_some() {
                    return Err(self.err(
                        &alias.referenced,
                        "spec.selector.labels",
                        "set together with matchLabels: write only matchLabels",
                    ));
                }
                self.accept_spelling(
                    &alias.referenced,
                    "spec.selector.labels",
                    "spec.selector.matchLabels",
                    "WasmPlugin's selector has matchLabels only",
                );
                entries = Some(&alias.value);
            }
            if entries.is_some_and(|m| m.len() > 4096) {
                return Err(self.err(
                    &selector.referenced,
                    "spec.selector.matchLabels",
                    "at most 4096 labels",
                ));
            }
            for (key, value) in entries.into_iter().flatten() {
                let path = format!("spec.selector.matchLabels.{key}");
                if key.is_empty() {
                    return Err(self.err(&value.referenced, &path, "empty label key"));
                }
                if key.contains('*') {
                    return Err(self.err(
                        &value.referenced,
                        &path,
                        "wildcard not allowed in label key match",
                    ));
                }
                if value.value.contains('*') {
                    return Err(self.err(
                        &value.referenced,
                        &path,
                        "wildcard not allowed in label value match",
                    ));
                }
                if value.value.chars().count() > 63 {
                    return Err(self.err(
                        &value.referenced,
                        &path,
                        "label values are at most 63 characters",
                    ));
                }
                labels.insert(key.clone(), value.value.clone());
            }
            return Ok(Attachment::Selector(labels));
        }
        if let Some(single) = &c.target_ref {
            // The legacy singular form is a one-element targetRefs (GetTargetRefs).
            let target = self.target_ref(single, "spec.targetRef")?;
            return Ok(Attachment::TargetRefs(vec![target]));
        }
        if let Some(refs) = &c.target_refs {
            return self.target_refs(refs, "spec.targetRefs");
        }
        Ok(Attachment::All)
    }

    /// `targetRefs` (at most 16; none means every workload).
    pub(in crate::wasmplugin) fn target_refs(
        &self,
        refs: &S<Vec<S<RawTargetRef>>>,
        path: &str,
    ) -> Result<Attachment> {
        if refs.value.len() > 16 {
            return Err(self.err(&refs.referenced, path, "at most 16 entries"));
        }
        let mut out = Vec::with_capacity(refs.value.len());
        for (i, r) in refs.value.iter().enumerate() {
            out.push(self.target_ref(r, &format!("{path}[{i}]"))?);
        }
        if out.is_empty() {
            return Ok(Attachment::All);
        }
        Ok(Attachment::TargetRefs(out))
    }

    /// The CRD's field rules and the webhook's `validatePolicyTargetReference`.
    fn target_ref(&self, r: &S<RawTargetRef>, path: &str) -> Result<TargetRef> {
        let v = &r.value;
        let kind = v
            .kind
            .as_ref()
            .ok_or_else(|| self.err(&r.referenced, &format!("{path}.kind"), "is required"))?;
        let kind_ok = kind.value.len() <= 63
            && kind.value.starts_with(|c: char| c.is_ascii_alphabetic())
            && kind
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !kind.value.ends_with('-');
        if !kind_ok {
            return Err(self.err(
                &kind.referenced,
                &format!("{path}.kind"),
                format!("invalid kind `{}`", kind.value),
            ));
        }
        let name = v
            .name
            .as_ref()
            .ok_or_else(|| self.err(&r.referenced, &format!("{path}.name"), "is required"))?;
        if name.value.is_empty() || name.value.len() > 253 {
            return Err(self.err(
                &name.referenced,
                &format!("{path}.name"),
                "must be 1 to 253 characters long",
            ));
        }
        if let Some(ns) = &v.namespace
            && !ns.value.is_empty()
        {
            return Err(self.err(
                &ns.referenced,
                &format!("{path}.namespace"),
                "cross namespace referencing is not currently supported",
            ));
        }
        let group = v.group.as_ref().map_or("", |g| g.value.as_str());
        let group_ok = group.len() <= 253
            && group
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !group_ok {
            let at = v.group.as_ref().map_or(&r.referenced, |g| &g.referenced);
            return Err(self.err(
                at,
                &format!("{path}.group"),
                format!("invalid group `{group}`"),
            ));
        }
        let group = if group.is_empty() { "core" } else { group };
        let allowed = [
            ("gateway.networking.k8s.io", "Gateway"),
            ("gateway.networking.k8s.io", "GatewayClass"),
            ("core", "Service"),
            ("networking.istio.io", "ServiceEntry"),
        ];
        if !allowed.contains(&(group, kind.value.as_str())) {
            return Err(self.err(
                &kind.referenced,
                &format!("{path}.kind"),
                format!(
                    "targetRef must be to one of gateway.networking.k8s.io/Gateway, \
                     gateway.networking.k8s.io/GatewayClass, core/Service or \
                     networking.istio.io/ServiceEntry, not {group}/{}",
                    kind.value
                ),
            ));
        }
        Ok(TargetRef {
            group: group.to_string(),
            kind: kind.value.clone(),
            name: name.value.clone(),
        })
    }

    pub(super) fn matcher(
        &self,
        raw: Option<&S<Vec<S<RawTrafficSelector>>>>,
    ) -> Result<TrafficMatcher> {
        let mut selectors = Vec::new();
        for (i, sel) in raw
            .map(|r| r.value.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let path = format!("spec.match[{i}]");
            let mode = match &sel.value.mode {
                None => WorkloadMode::Undefined,
                Some(m) => self.enumeration(
                    m,
                    &format!("{path}.mode"),
                    &[
                        ("UNDEFINED", 0, WorkloadMode::Undefined),
                        ("CLIENT", 1, WorkloadMode::Client),
                        ("SERVER", 2, WorkloadMode::Server),
                        ("CLIENT_AND_SERVER", 3, WorkloadMode::ClientAndServer),
                    ],
                )?,
            };
            let mut ports: Vec<u16> = Vec::new();
            let raw_ports = sel.value.ports.as_ref();
            for (j, p) in raw_ports
                .map(|p| p.value.as_slice())
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let ppath = format!("{path}.ports[{j}].number");
                let number = p
                    .value
                    .number
                    .as_ref()
                    .ok_or_else(|| self.err(&p.referenced, &ppath, "is required"))?;
                let port = u16::try_from(number.value)
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        self.err(
                            &number.referenced,
                            &ppath,
                            format!("invalid port {}: expected 1 to 65535", number.value),
                        )
                    })?;
                if ports.contains(&port) {
                    return Err(self.err(
                        &number.referenced,
                        &ppath,
                        format!("duplicate port {port}"),
                    ));
                }
                ports.push(port);
            }
            selectors.push(TrafficSelector { mode, ports });
        }
        Ok(TrafficMatcher { selectors })
    }
}
