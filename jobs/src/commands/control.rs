//! `sluice status|pause|resume|stop --control URL`: calls on a running stream's control API.

use std::path::PathBuf;

use crate::ExitCode;
use crate::control::ControlClient;
use crate::password::resolve_password;

/// Where the running stream listens.
#[derive(Debug, clap::Args)]
pub struct ControlArgs {
    /// The stream's control address: http://HOST:PORT (its --control).
    #[arg(long, value_name = "URL")]
    control: String,
    /// The API token, from this file (else SLUICE_CONTROL_TOKEN).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// `stop` and `pause`: do not wait for the target transactions being applied; they are
    /// rolled back. A stop then ends at the last committed checkpoint; a pause holds them and
    /// applies them again on resume.
    #[arg(long)]
    force: bool,
}

/// Which call.
#[derive(Debug, Clone)]
pub enum Call {
    Status,
    Pause,
    Resume,
    Stop,
    /// Switch the stream to another source at the current GTID position.
    UpdateSource(String),
}

/// `sluice update-source --control URL --source NEW_URL`.
#[derive(Debug, clap::Args)]
pub struct UpdateSourceArgs {
    #[command(flatten)]
    control: ControlArgs,
    /// The new source, e.g. another replica of the same replication group (the password
    /// stays when the user is the same).
    #[arg(long, value_name = "URL")]
    source: String,
}

pub async fn update_source(args: UpdateSourceArgs) -> ExitCode {
    run(Call::UpdateSource(args.source), args.control).await
}

pub async fn run(call: Call, args: ControlArgs) -> ExitCode {
    let token = match resolve_password(args.token_file.as_deref(), "SLUICE_CONTROL_TOKEN") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sluice: {e}");
            return ExitCode::UsageOrInput;
        }
    };
    let client = match ControlClient::new(&args.control, token) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice: {e}");
            return ExitCode::UsageOrInput;
        }
    };
    if args.force && !matches!(call, Call::Stop | Call::Pause) {
        eprintln!("sluice: --force applies to `sluice stop` and `sluice pause` only");
        return ExitCode::UsageOrInput;
    }
    let update;
    let (method, path) = match &call {
        Call::Status => ("GET", "/status"),
        Call::Pause if args.force => ("POST", "/pause?force=true"),
        Call::Pause => ("POST", "/pause"),
        Call::Resume => ("POST", "/resume"),
        Call::Stop if args.force => ("POST", "/stop?force=true"),
        Call::Stop => ("POST", "/stop"),
        Call::UpdateSource(url) => {
            update = format!("/update-source?url={}", crate::control::client::encode(url));
            ("POST", update.as_str())
        }
    };
    match client.call(method, path).await {
        Ok((200, body)) => {
            println!("{body}");
            ExitCode::Success
        }
        Ok((401 | 409, body)) => {
            let shown = path.split('?').next().unwrap_or(path);
            eprintln!("sluice: {shown} refused: {body}");
            ExitCode::UsageOrInput
        }
        Ok((code, body)) => {
            eprintln!("sluice: {path}: HTTP {code}: {body}");
            ExitCode::Transient
        }
        Err(e) => {
            eprintln!("sluice: {e}");
            ExitCode::Transient
        }
    }
}
