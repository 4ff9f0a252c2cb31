//! Compiles the Rust test plugins (tests/plugins, a workspace of their own) for
//! wasm32-wasip1 whenever the tests are built, so tests always run against current sources.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("../..").canonicalize().unwrap();
    let plugins = root.join("tests/plugins");
    println!("cargo:rerun-if-changed={}", plugins.display());
    let target_dir = plugins.join("target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins)
        .args(["build", "--release", "--target", "wasm32-wasip1"])
        .env("CARGO_TARGET_DIR", &target_dir);
    // Flags meant for the host build must not leak into the wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("cannot run cargo for the test plugins");
    if !status.success() {
        panic!(
            "building the test plugins failed; is the wasm32-wasip1 target installed? (rustup target add wasm32-wasip1)"
        );
    }
    println!(
        "cargo:rustc-env=WASP_RUST_PLUGINS={}",
        target_dir.join("wasm32-wasip1/release").display()
    );
    println!(
        "cargo:rustc-env=WASP_FOREIGN_PLUGINS={}",
        plugins.join("out").display()
    );
}
