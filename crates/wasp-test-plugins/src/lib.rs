//! Where the test plugins are. Rust plugins are compiled by this crate's build script;
//! AssemblyScript and Go plugins by `scripts/build-foreign-plugins.sh` (the README's test
//! command runs it first).

use std::path::PathBuf;

/// The path of a test plugin by its name (`hostcalls`, `as_hostcalls`, `go_hostcalls`, …).
pub fn path(name: &str) -> PathBuf {
    let file = format!("{name}.wasm");
    let rust = PathBuf::from(env!("WASP_RUST_PLUGINS")).join(&file);
    if rust.exists() {
        return rust;
    }
    PathBuf::from(env!("WASP_FOREIGN_PLUGINS")).join(&file)
}

/// The bytes of a test plugin; panics with what to run if it was not built.
pub fn bytes(name: &str) -> Vec<u8> {
    let path = path(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "test plugin {} is missing ({e}); run scripts/build-foreign-plugins.sh (AssemblyScript and Go plugins) or ./scripts/test",
            path.display()
        )
    })
}
