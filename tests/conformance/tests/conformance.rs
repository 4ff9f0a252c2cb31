//! One test for the whole suite: every scenario file through Envoy and wasp. Needs Envoy
//! (scripts/setup-toolchains.sh installs it; or set ENVOY) — without it the test fails.

#[test]
fn envoy_and_wasp_agree() {
    let summary = wasp_conformance::run_all().unwrap_or_else(|e| panic!("conformance: {e:#}"));
    assert_eq!(
        summary.failed,
        0,
        "{}\n{}",
        summary.line(),
        summary.failures.concat()
    );
}
