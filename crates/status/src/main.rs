//! `orderstream-status`: the command line over this crate; its exit code is
//! the verdict (0 caught up, 1 behind, 2 unreachable).

use orderstream_status::{ask_alertmanager, gather, progress_line, Config, Report};

/// Exit code of a configuration mistake (clap's own): not a pipeline state.
const INVALID_CONFIGURATION: i32 = 64;

fn main() {
    // Before the runtime starts its threads: the aliases change the environment.
    // No logging: standard error holds only this command's own messages.
    match telemetry::startup::<Config>(telemetry::Logging::Off) {
        Ok(config) => main_with(config),
        Err(error) => {
            eprintln!("orderstream-status: invalid configuration: {}", clients::postgres::describe(&error));
            std::process::exit(INVALID_CONFIGURATION);
        }
    }
}

#[tokio::main]
async fn main_with(config: Config) {
    let report = Report::new(gather(&config).await, &config.topics(), &config.group.name);
    if let Some(state_file) = &config.progress {
        println!("{}", progress_line(&report, state_file, &config.inbox, &config.inbox_matcher()));
    } else {
        // Shown beside the verdict, never part of it.
        let alerts = ask_alertmanager(config.alertmanager_url.as_deref(), config.timeout).await;
        if config.json {
            let mut document = serde_json::to_value(&report).expect("the report serialises");
            document["alerts"] = serde_json::to_value(&alerts).expect("the alerts serialise");
            println!("{}", serde_json::to_string_pretty(&document).expect("the report serialises"));
        } else {
            print!("{}{}", report.render(), alerts.render());
        }
    }
    std::process::exit(report.exit_code());
}
