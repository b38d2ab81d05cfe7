//! Starts the harness's SOURCE MariaDB and S3 endpoint, prints their pids, and waits forever.
//! The harness's own test kills this process with SIGKILL and checks that both servers die with
//! it: the proof that a crashed test run leaves no server behind.

use std::io::Write;

fn main() {
    let db = sluice_tests::source();
    let s3 = sluice_tests::s3();
    println!("mariadbd {}", db.pid);
    println!("moto_server {}", s3.pid);
    let _ = std::io::stdout().flush();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
