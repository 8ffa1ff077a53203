//! Empty on purpose: Cargo resolves `[build-dependencies]` only for a package with a build
//! script, and Companin's exists to unify syn's features between `cargo run` and `cargo test`
//! (see Cargo.toml).

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
}
