use anyhow::Context;
use clap::Parser;
use orderstream_consumer::config::Command;
use orderstream_consumer::{redrive, run, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging();
    let config = Config::parse();
    config.validate().map_err(anyhow::Error::msg).context("invalid configuration")?;
    match config.command.clone() {
        None | Some(Command::Run) => run(config, telemetry::shutdown_signal()).await?,
        Some(Command::Redrive { reason }) => {
            redrive(&config, reason.as_deref()).await?;
        }
    }
    Ok(())
}
