//! The `sluice` binary, built once more inside this package so that the end-to-end tests can
//! name it with `env!("CARGO_BIN_EXE_sluice-under-test")`: cargo then always rebuilds it before
//! the tests run, which it does not promise for a binary of another package.

fn main() -> std::process::ExitCode {
    sluice_jobs::main()
}
