//! Higress's WasmPlugin (`extensions.higress.io/v1alpha1`) beside Istio's: `defaultConfig` as
//! the plugin's configuration, `defaultConfigDisable`, and `matchRules` by domain, service and
//! ingress as the plugin's routing; its fields refused on Istio's apiVersion with where they
//! belong.

mod common;

use std::sync::Arc;

use common::*;
use wasp_config::spec::{PluginRouting, PluginSetting};

fn higress(spec: &str) -> String {
    wp("shop", "auth", spec).replace(
        "extensions.istio.io/v1alpha1",
        "extensions.higress.io/v1alpha1",
    )
}

#[test]
fn match_rules_become_the_plugins_routing() {
    let set = parse(&higress(
        "defaultConfig: { realm: all }\ndefaultConfigDisable: true\nmatchRules:\n- domain: [\"*.example.com\", shop.test]\n  config: { realm: shop }\n- service: [reviews.shop.svc.cluster.local]\n  configDisable: true\n- ingress: [shop/checkout]\n",
    ))
    .unwrap();
    let decls = plugins(&set, &workload("shop", &[]));
    let decl = &decls[0];
    assert_eq!(wasm(decl).configuration, br#"{"realm":"all"}"#);
    let PluginRouting {
        default_disabled,
        rules,
    } = &decl.routing;
    assert!(default_disabled);
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[0].domains, ["*.example.com", "shop.test"]);
    assert_eq!(
        rules[0].setting,
        PluginSetting::Configuration(Arc::from(&br#"{"realm":"shop"}"#[..]))
    );
    assert_eq!(rules[1].services, ["reviews.shop.svc.cluster.local"]);
    assert_eq!(rules[1].setting, PluginSetting::Disabled);
    assert_eq!(rules[2].routes, ["shop/checkout"]);
    assert_eq!(rules[2].setting, PluginSetting::Enabled);
}

#[test]
fn higress_fields_are_checked_where_they_are() {
    let e = error(&wp("shop", "auth", "defaultConfig: { realm: all }\n"));
    assert!(
        e.contains("spec.defaultConfig: `defaultConfig` is Higress's: use apiVersion extensions.higress.io/v1alpha1 for it"),
        "{e}"
    );
    let e = error(&higress("matchRules:\n- config: { a: 1 }\n"));
    assert!(
        e.contains("spec.matchRules[0]: a rule needs at least one of ingress, domain or service"),
        "{e}"
    );
    let e = error(&higress(
        "defaultConfig: { a: 1 }\npluginConfig: { a: 2 }\n",
    ));
    assert!(
        e.contains("spec.pluginConfig: set together with defaultConfig"),
        "{e}"
    );
    let e = error(&higress("matchRules:\n- domain: [a.*.test]\n"));
    assert!(e.contains("spec.matchRules[0].domain[0]"), "{e}");
    let e = error(&higress("matchRules:\n- domain: [a.test]\n  config: [1]\n"));
    assert!(
        e.contains("spec.matchRules[0].config: must be a mapping"),
        "{e}"
    );
}
