//! The `sluice` command line: one subcommand per stage plus the job runner's controls.

use clap::{Parser, Subcommand};

use crate::commands::control::Call;
use crate::{ExitCode, commands};

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Move a MySQL or MariaDB database into a MySQL-protocol target and keep it in step",
    long_about = "Sluice dumps a MySQL or MariaDB database consistently (local disk or S3; SQL, CSV \
                  or Parquet), bulk-imports it in primary-key order, streams the binlog from the \
                  dump's exact position, and proves source and target equal with an online \
                  chunked checksum. One job file drives it all.\n\n\
                  Exit codes: 0 success; 1 the check found differences; 2 usage, configuration or \
                  input error; 3 a source/target/storage failure that retrying may fix."
)]
pub struct Cli {
    /// Log lines (on stderr) as text or as one JSON object per line.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Dump databases and tables consistently to local disk or S3 (SQL, CSV, Parquet).
    Dump(commands::dump::DumpArgs),
    /// Bulk-import a dump (Sluice, Dumpling, mydumper) in primary-key order.
    Import(commands::import::ImportArgs),
    /// Stream the binlog from a position or GTID set into the target, exactly once.
    Stream(commands::stream::StreamArgs),
    /// Pull a source's binlog into a relay log folder (read by `sluice stream --relay-dir`).
    Relay(commands::relay::RelayArgs),
    /// Compare source and target chunk by chunk and locate differing rows.
    Checksum(commands::checksum::ChecksumArgs),
    /// Run a job file: dump → import → stream, resuming where a previous run stopped.
    Run(commands::run::RunArgs),
    /// Job files: `sluice config example` prints a commented one; `validate FILE` checks one.
    Config(commands::run::ConfigArgs),
    /// Validate a job file and run the pre-checks against the servers.
    Check(commands::run::CheckArgs),
    /// Show the state of a running stream (its --control API).
    Status(commands::control::ControlArgs),
    /// Pause a running stream at the next transaction boundary.
    Pause(commands::control::ControlArgs),
    /// Resume a paused stream.
    Resume(commands::control::ControlArgs),
    /// Stop a running stream at the next transaction boundary.
    Stop(commands::control::ControlArgs),
    /// Switch a running stream to another source at its current GTID position.
    UpdateSource(commands::control::UpdateSourceArgs),
    /// Start two throwaway local MariaDB servers and run a whole job between them.
    Quickstart,
}

/// The `sluice` binary's entry point.
pub fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                ExitCode::UsageOrInput
            } else {
                ExitCode::Success
            };
            let _ = e.print();
            return code.into();
        }
    };
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice: cannot start the async runtime: {e}");
            return ExitCode::Transient.into();
        }
    };
    let code = match cli.command {
        Command::Dump(args) => runtime.block_on(commands::dump::run(args)),
        Command::Checksum(args) => runtime.block_on(commands::checksum::run(args)),
        Command::Import(args) => runtime.block_on(commands::import::run(args)),
        Command::Stream(args) => runtime.block_on(commands::stream::run(args)),
        Command::Relay(args) => runtime.block_on(commands::relay::run(args)),
        Command::Run(args) => runtime.block_on(commands::run::run(args)),
        Command::Check(args) => runtime.block_on(commands::run::check(args)),
        Command::Quickstart => runtime.block_on(commands::quickstart::run()),
        Command::Config(args) => commands::run::config(args),
        Command::Status(args) => runtime.block_on(commands::control::run(Call::Status, args)),
        Command::Pause(args) => runtime.block_on(commands::control::run(Call::Pause, args)),
        Command::Resume(args) => runtime.block_on(commands::control::run(Call::Resume, args)),
        Command::Stop(args) => runtime.block_on(commands::control::run(Call::Stop, args)),
        Command::UpdateSource(args) => runtime.block_on(commands::control::update_source(args)),
    };
    // Workers aborted by an interrupt may still hold sockets: do not wait for them.
    runtime.shutdown_background();
    code.into()
}

/// Log lines to stderr; `SLUICE_LOG` (e.g. `debug`, `sluice_dumper=debug`) sets the level.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,mysql_async=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}
