//! Writes the 2.5 MiB of pseudo-random padding (xorshift64, fixed seed: reproducible builds).
fn main() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut bytes = Vec::with_capacity(2_621_440);
    while bytes.len() < 2_621_440 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("padding.bin");
    std::fs::write(out, bytes).unwrap();
    println!("cargo::rerun-if-changed=build.rs");
}
