//! `sluice-sandbox`: starts the harness's throwaway SOURCE and TARGET MariaDB servers (and the
//! S3 endpoint with `--s3`), prints them as shell variables, and keeps them running until its
//! standard input closes. Used by `ci/quickstart.sh` and for trying Sluice by hand:
//!
//! ```sh
//! coproc SANDBOX { target/debug/sluice-sandbox; }
//! read -r line <&"${SANDBOX[0]}"; eval "$line"   # SOURCE=mysql://root@127.0.0.1:PORT …
//! ```

use std::io::{Read, Write};

fn main() {
    let with_s3 = std::env::args().any(|a| a == "--s3");
    let source = sluice_tests::source();
    let target = sluice_tests::target();
    let mut line = format!(
        "SOURCE={} TARGET={} SOURCE_DATADIR={}",
        source.url(),
        target.url(),
        source.datadir().display()
    );
    if with_s3 {
        let s3 = sluice_tests::s3();
        for (k, v) in s3.env() {
            line.push_str(&format!(" {k}={v}"));
        }
        line.push_str(&format!(" S3_URL={}", s3.url("quickstart")));
    }
    println!("{line}");
    let _ = std::io::stdout().flush();
    // Block until the caller closes our stdin (or dies); the watchdog then stops the servers.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
