//! `orderstream-bench` (`make bench`): see the library's documentation for
//! the phases. Prints the report (its last line machine-readable) and
//! writes it to `<local>/report.txt`; exits 1 if a phase fails.

use std::process::ExitCode;

use clap::Parser;
use orderstream_bench::Settings;

fn main() -> ExitCode {
    let settings = Settings::parse();
    let work = settings.work_dir();
    // Before any thread starts (setting the environment is only sound
    // then): the harness finds the binaries through ORDERSTREAM_BIN_DIR,
    // and puts its processes' logs and its scenarios' inboxes in the
    // temporary folder, which here is the work folder, kept until the next run.
    std::env::set_var("ORDERSTREAM_BIN_DIR", settings.bin_dir());
    std::env::set_var("TMPDIR", &work);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = orderstream_bench::run(&settings) => outcome,
            // Dropping the run stops every process and service it started.
            () = interrupted() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    match outcome {
        Ok(report) => {
            print!("{report}");
            let name = if settings.compare_with.is_some() { "compare.txt" } else { "report.txt" };
            let path = settings.local.join(name);
            if let Err(error) = std::fs::write(&path, &report) {
                eprintln!("bench: error: cannot write {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("bench: error: {error:#}");
            eprintln!("bench: failed; logs in {}/", work.display());
            ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
