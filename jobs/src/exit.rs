//! The exit codes every subcommand shares (see ARCHITECTURE.md, conventions).

/// What a `sluice` process tells its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// The work is done (or the check found the two sides equal).
    Success = 0,
    /// A checksum found differences.
    Differences = 1,
    /// Usage, configuration or input error: retrying the same command will not help.
    UsageOrInput = 2,
    /// A source, target or storage failure that retrying may fix.
    Transient = 3,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}
