//! Stamps the git revision into the build, for `orderstream_build_info`:
//! which commit a running process was built from, seen on a dashboard.
//!
//! `ORDERSTREAM_REVISION` in the build environment wins (an image built
//! without `.git` passes it in); else `git rev-parse`; else `unknown`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ORDERSTREAM_REVISION");
    // Re-run when a commit moves the checkout's HEAD; only paths that exist,
    // since a missing one would re-run (and rebuild every binary) each time.
    for path in ["../../.git/HEAD", "../../.git/refs/heads"] {
        if Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let revision = std::env::var("ORDERSTREAM_REVISION").ok().filter(|value| !value.is_empty()).unwrap_or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".to_string())
    });
    println!("cargo:rustc-env=ORDERSTREAM_REVISION={revision}");
}
