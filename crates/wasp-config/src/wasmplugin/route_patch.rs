//! EnvoyFilter `HTTP_ROUTE` patches that set a Lua filter's per-route settings: `MERGE` of
//! `typed_per_filter_config` with Envoy's `LuaPerRoute` (`disabled`, `name` of one of the
//! filter's `source_codes`, `source_code`) or `FilterConfig` (`disabled`), on the routes named
//! by `match.routeConfiguration.vhost.route.name` (or every route of `vhost.name`, or every
//! route).

use serde_json::Value;
use serde_saphyr::Spanned;

use super::LuaRouteSetting;
use super::envoy_filter::{LUA_FILTER_NAMES, RawPatch, inline_source};
use super::resource::Checker;
use crate::error::ConfigError;

type Result<T> = std::result::Result<T, ConfigError>;

const LUA_PER_ROUTE: &str = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute";
const FILTER_CONFIG: &str = "type.googleapis.com/envoy.config.route.v3.FilterConfig";

/// One filter's setting from a route patch.
pub(super) struct RouteSettingPatch {
    pub filter_name: String,
    pub setting: LuaRouteSetting,
    pub routes: Vec<String>,
    pub virtual_hosts: Vec<String>,
}

impl Checker<'_> {
    pub(super) fn route_patch(
        &self,
        patch: Spanned<RawPatch>,
        field: &str,
    ) -> Result<Vec<RouteSettingPatch>> {
        let at = patch.referenced;
        let patch = patch.value;
        let mut routes = Vec::new();
        let mut virtual_hosts = Vec::new();
        if let Some(m) = &patch.matcher {
            if let Some(l) = &m.value.listener {
                return Err(self.err(
                    &l.referenced,
                    &format!("{field}.match.listener"),
                    "an HTTP_ROUTE patch matches routes (routeConfiguration); this field does not apply",
                ));
            }
            if let Some(rc) = &m.value.route_configuration {
                let rc = &rc.value;
                for (present, name) in [
                    (rc.port_number.as_ref().map(|x| x.referenced), "portNumber"),
                    (rc.port_name.as_ref().map(|x| x.referenced), "portName"),
                    (rc.gateway.as_ref().map(|x| x.referenced), "gateway"),
                    (rc.name.as_ref().map(|x| x.referenced), "name"),
                ] {
                    if let Some(at) = present {
                        return Err(self.err(
                            &at,
                            &format!("{field}.match.routeConfiguration.{name}"),
                            "not supported: a route patch selects routes by vhost.name and vhost.route.name",
                        ));
                    }
                }
                if let Some(vhost) = &rc.vhost {
                    if let Some(d) = &vhost.value.domain_name {
                        return Err(self.err(
                            &d.referenced,
                            &format!("{field}.match.routeConfiguration.vhost.domainName"),
                            "not supported: select the host by vhost.name",
                        ));
                    }
                    if let Some(name) = &vhost.value.name {
                        virtual_hosts.push(name.value.clone());
                    }
                    if let Some(name) = vhost
                        .value
                        .route
                        .as_ref()
                        .and_then(|r| r.value.name.as_ref())
                    {
                        routes.push(name.value.clone());
                    }
                }
            }
        }
        let body = patch
            .patch
            .ok_or_else(|| self.err(&at, &format!("{field}.patch"), "is required"))?;
        let body_at = body.referenced;
        let body = body.value;
        match &body.operation {
            Some(op) if op.value == "MERGE" => {}
            Some(op) => {
                return Err(self.err(
                    &op.referenced,
                    &format!("{field}.patch.operation"),
                    format!(
                        "operation {} is not supported on routes; use MERGE",
                        op.value
                    ),
                ));
            }
            None => {
                return Err(self.err(&body_at, &format!("{field}.patch.operation"), "is required"));
            }
        }
        let value = body
            .value
            .ok_or_else(|| self.err(&body_at, &format!("{field}.patch.value"), "is required"))?;
        let vat = value.referenced;
        let path = format!("{field}.patch.value");
        let err = |sub: &str, message: String| self.err(&vat, &format!("{path}{sub}"), message);
        let Some(object) = value.value.as_object() else {
            return Err(err("", "must be a mapping".into()));
        };
        let mut out = Vec::new();
        for (key, settings) in object {
            if key != "typed_per_filter_config" && key != "typedPerFilterConfig" {
                return Err(err(
                    &format!(".{key}"),
                    "not supported: a route patch sets typed_per_filter_config of Lua filters"
                        .into(),
                ));
            }
            let Some(settings) = settings.as_object() else {
                return Err(err(
                    &format!(".{key}"),
                    "must be a mapping of filter names".into(),
                ));
            };
            for (filter, config) in settings {
                let sub = format!(".{key}.{filter}");
                if !LUA_FILTER_NAMES.contains(&filter.as_str()) {
                    return Err(err(
                        &sub,
                        format!(
                            "`{filter}`: wasp applies per-route settings of Lua filters ({}); give a Wasm plugin's in wasp.yaml (route `plugins:`) or with Higress matchRules",
                            LUA_FILTER_NAMES[0]
                        ),
                    ));
                }
                out.push(RouteSettingPatch {
                    filter_name: filter.clone(),
                    setting: lua_setting(config).map_err(|m| err(&sub, m))?,
                    routes: routes.clone(),
                    virtual_hosts: virtual_hosts.clone(),
                });
            }
        }
        Ok(out)
    }
}

/// `LuaPerRoute` or `FilterConfig` as a setting.
fn lua_setting(config: &Value) -> std::result::Result<LuaRouteSetting, String> {
    let ty = config.get("@type").and_then(Value::as_str).unwrap_or("");
    let disabled = config.get("disabled").and_then(Value::as_bool) == Some(true);
    match ty {
        FILTER_CONFIG if disabled => Ok(LuaRouteSetting::Disabled),
        FILTER_CONFIG => {
            Err("a FilterConfig here only turns the filter off (disabled: true)".into())
        }
        LUA_PER_ROUTE => {
            if disabled {
                return Ok(LuaRouteSetting::Disabled);
            }
            if let Some(name) = config.get("name").and_then(Value::as_str) {
                return Ok(LuaRouteSetting::Named(name.to_string()));
            }
            match inline_source(config, ["source_code", "sourceCode"]) {
                Some(code) => {
                    wasp_lua::LuaScript::compile("LuaPerRoute", code).map_err(|e| e.to_string())?;
                    Ok(LuaRouteSetting::Source(code.to_string()))
                }
                None => Err(
                    "LuaPerRoute needs disabled: true, name, or source_code.inline_string".into(),
                ),
            }
        }
        other => Err(format!(
            "`{other}`: expected {LUA_PER_ROUTE} or {FILTER_CONFIG}"
        )),
    }
}
