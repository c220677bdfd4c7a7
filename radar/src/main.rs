//! The `radar` binary. Everything happens in [`radar::cli::main`].

fn main() -> std::process::ExitCode {
    radar::cli::main()
}
