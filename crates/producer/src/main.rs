//! `orderstream-producer`: the command line over this crate (run, `replay
//! FILE`). Parsing, validation and error reporting only; the work is in the
//! library, where tests can call it.

use anyhow::Context;
use orderstream_producer::config::Command;
use orderstream_producer::{replay, run, Config};

/// See `telemetry::allocator`: glibc's malloc cost a tenth of the CPU.
#[global_allocator]
static ALLOCATOR: telemetry::allocator::Allocator = telemetry::allocator::Allocator;

fn main() -> anyhow::Result<()> {
    telemetry::allocator::tune();
    telemetry::allocator::without_fastbins();
    // Before the runtime starts its threads: the aliases change the environment.
    let config: Config = telemetry::startup(telemetry::Logging::On).context("invalid configuration")?;
    main_with(config)
}

#[tokio::main]
async fn main_with(config: Config) -> anyhow::Result<()> {
    // Reads FAILPOINTS in test builds with the `failpoints` feature; does nothing otherwise.
    let _failpoints = fail::FailScenario::setup();
    match config.command.clone() {
        None => run(config, telemetry::shutdown_signal()).await?,
        Some(Command::Replay(args)) => println!("{}", replay::replay(&config, &args).await?),
    }
    Ok(())
}
