//! Stamps the build with its git commit and target triple for `ksync version`.

include!("build/git_commit.rs");

fn main() {
    stamp_git_commit("KSYNC_GIT_COMMIT", ".");
    println!(
        "cargo:rustc-env=KSYNC_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/git_commit.rs");
}
