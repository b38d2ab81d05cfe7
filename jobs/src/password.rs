//! Passwords from a file or an environment variable, so that they need not sit in a URL, a
//! shell history or a process list.

use std::path::Path;

use sluice_core::{Endpoint, Secret};

/// The password from `file` (its first line) if given, else from the environment variable
/// `env_name` if set, else `None` (the URL's password, if any, stays).
pub fn resolve_password(file: Option<&Path>, env_name: &str) -> Result<Option<String>, String> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--password-file {}: {e}", path.display()))?;
        return Ok(Some(text.lines().next().unwrap_or("").to_owned()));
    }
    Ok(std::env::var(env_name).ok())
}

/// A server given on the command line as `--{flag} URL`, with its password taken from `file`
/// or the environment variable `env_name` when either is set.
pub fn endpoint_arg(
    url: &str,
    flag: &str,
    file: Option<&Path>,
    env_name: &str,
) -> Result<Endpoint, String> {
    let mut endpoint: Endpoint = url.parse().map_err(|e| format!("--{flag}: {e}"))?;
    if let Some(password) = resolve_password(file, env_name)? {
        endpoint = endpoint.with_password(Secret::new(password));
    }
    Ok(endpoint)
}
