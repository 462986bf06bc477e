//! The `medpdp` binary: all logic lives in the library; see `medpdp::cli`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    medpdp::cli::main()
}
