//! The `ksync` binary. Everything happens in [`ksync::cli::main`].

fn main() -> std::process::ExitCode {
    ksync::cli::main()
}
