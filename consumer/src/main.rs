use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use orderstream_consumer::config::Command;
use orderstream_consumer::{redrive, run, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let config = Config::parse();
    config.validate().map_err(anyhow::Error::msg).context("invalid configuration")?;
    match config.command.clone() {
        None | Some(Command::Run) => run(config, shutdown_signal()).await?,
        Some(Command::Redrive { reason }) => {
            redrive(&config, reason.as_deref()).await?;
        }
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM, so that either stops the consumer cleanly.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
