//! `sluice run JOB.toml` and `sluice config example`.

use std::path::PathBuf;

use tokio::sync::watch;

use crate::ExitCode;
use crate::commands::until_interrupted;
use crate::job::{file, runner};

/// Run a job file: dump → import → stream, resuming where a previous run stopped.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The job file (see `sluice config example`).
    #[arg(value_name = "JOB.toml")]
    job: PathBuf,
    /// Print one JSON summary line at the end.
    #[arg(long)]
    json: bool,
}

/// Validate a job file and run the pre-checks against the servers.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[arg(value_name = "JOB.toml")]
    job: PathBuf,
    /// Print the findings as one JSON line.
    #[arg(long)]
    json: bool,
}

pub async fn check(args: CheckArgs) -> ExitCode {
    let job = match file::load(&args.job) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::UsageOrInput;
        }
    };
    let findings = crate::job::check::run(&job).await;
    if args.json {
        println!("{}", serde_json::to_string(&findings).unwrap_or_default());
    } else {
        crate::job::check::print(&findings);
    }
    let failed = findings
        .iter()
        .filter(|f| f.verdict == crate::job::check::Verdict::Fail)
        .count();
    if failed > 0 {
        eprintln!("sluice check: {failed} pre-check(s) failed");
        ExitCode::UsageOrInput
    } else {
        ExitCode::Success
    }
}

/// Job file helpers.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    what: ConfigCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ConfigCommand {
    /// Print a fully commented example job file.
    Example,
    /// Check a job file (keys, types, values) without connecting to anything.
    Validate {
        #[arg(value_name = "JOB.toml")]
        job: PathBuf,
    },
}

pub fn config(args: ConfigArgs) -> ExitCode {
    match args.what {
        ConfigCommand::Example => {
            print!("{}", file::EXAMPLE);
            ExitCode::Success
        }
        ConfigCommand::Validate { job } => match file::load(&job) {
            Ok(j) => {
                println!("{}: job `{}` is valid", job.display(), j.name);
                ExitCode::Success
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::UsageOrInput
            }
        },
    }
}

pub async fn run(args: RunArgs) -> ExitCode {
    let job = match file::load(&args.job) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::UsageOrInput;
        }
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let signals = tokio::spawn(async move {
        let signal = until_interrupted().await;
        eprintln!("sluice run: {signal}: stopping at the next transaction boundary");
        let _ = stop_tx.send(true);
    });
    // Dump and import cannot stop halfway cleanly; an interrupt there ends the process and the
    // next run continues from the recorded phase and checkpoints.
    let result = runner::run(job, args.job.clone(), stop_rx).await;
    signals.abort();
    match result {
        Ok(summary) => {
            if args.json {
                println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            }
            eprintln!(
                "sluice run: job `{}` finished: {} in {:.1} s",
                summary.name,
                summary.phases.join(" → "),
                summary.seconds
            );
            ExitCode::Success
        }
        Err(failed) => {
            eprintln!("sluice run: {}", failed.message);
            failed.code
        }
    }
}
