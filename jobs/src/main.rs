fn main() -> std::process::ExitCode {
    sluice_jobs::main()
}
