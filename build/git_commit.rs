// Shared by the build scripts of ksync (`build.rs`) and radar (`radar/build.rs`), through
// `include!`: both stamp their binaries with the commit they were built from.

/// Sets the compile-time variable `var` to the short commit of HEAD ("unknown" outside a
/// checkout), and reruns the build script when HEAD moves. `repo_root` is the workspace root,
/// relative to the crate being built.
fn stamp_git_commit(var: &str, repo_root: &str) {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env={var}={commit}");
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        let path = std::path::Path::new(repo_root).join(path);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
