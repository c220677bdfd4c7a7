//! Compiles the containerd version API radar calls (protox, no system protoc) and stamps the
//! build with its git commit for `GetVersion`.

include!("../build/git_commit.rs");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "containerd/version.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["containerd"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(descriptors)?;

    stamp_git_commit("RADAR_GIT_COMMIT", "..");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../build/git_commit.rs");
    Ok(())
}
