//! The `medpdp` binary: all logic lives in the library; see `medpdp::cli`.
#![forbid(unsafe_code)]

/// mimalloc rather than glibc's allocator: Cedar's evaluator and request building allocate per
/// node, and under load glibc's malloc and free took ≈ 15 % of the server's core; mimalloc
/// serves ≈ 15 % more decisions per second (BENCHMARKS.md). Built without transparent huge
/// pages (`no_thp`), which would add ≈ 25 MiB of resident memory for no measured gain.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    medpdp::cli::main()
}
