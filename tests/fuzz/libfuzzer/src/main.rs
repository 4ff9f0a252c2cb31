//! libFuzzer's entry point for every wasp fuzz target: `WASP_FUZZ_TARGET` names which one
//! (a corpus folder name of `tests/fuzz/corpus`).
#![no_main]

use std::sync::OnceLock;

static TARGET: OnceLock<wasp_fuzz::Check> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let check = TARGET.get_or_init(|| {
        let name = std::env::var("WASP_FUZZ_TARGET").unwrap_or_default();
        match wasp_fuzz::TARGETS.iter().find(|(n, _)| *n == name) {
            Some((_, check)) => *check,
            None => {
                let names: Vec<&str> = wasp_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
                eprintln!("WASP_FUZZ_TARGET must be one of: {}", names.join(", "));
                std::process::exit(2);
            }
        }
    });
    check(data);
});
