//! The `sluice` command line as a user meets it.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::process::Command;

fn sluice(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_lists_every_subcommand() {
    let out = sluice(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for cmd in [
        "dump",
        "import",
        "checksum",
        "run",
        "check",
        "status",
        "pause",
        "resume",
        "stop",
        "quickstart",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{cmd} "))),
            "`{cmd}` missing from:\n{help}"
        );
    }
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = sluice(&["dumpp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dump"),
        "no suggestion"
    );
}

#[test]
fn quickstart_runs_a_whole_job_and_finds_the_servers_equal() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .arg("quickstart")
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("checksum: shop.orders: equal"), "{text}");
    assert!(
        text.contains("the checksum found TARGET equal to SOURCE"),
        "{text}"
    );
}
