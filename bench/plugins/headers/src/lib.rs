//! The header plugin of the benchmarks: adds one request header (`x-bench-req: 1`, seen by the
//! upstream) and one response header, named by the plugin configuration (default
//! `x-bench-headers`), whose value is `1`. bench/run checks that response header to prove the
//! plugin ran. Three instances with three names make the chained-plugins workload.

include!("plugin.rs");

/// Nothing to touch: see bench/plugins/large for the padded variant.
fn touch_padding() -> u8 {
    0
}
