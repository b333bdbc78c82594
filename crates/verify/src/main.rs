//! `orderstream-verify`: the command line over this crate; its exit code is
//! the verdict (0 every line accounted for, 1 missing or altered, 2 not verifiable).

use orderstream_verify::{run_every, verify, Config, CANNOT_VERIFY};

/// Exit code of a configuration mistake (clap's own): not a verdict.
const INVALID_CONFIGURATION: i32 = 64;

fn main() {
    // Before the runtime starts its threads: the aliases change the environment.
    // Logging only with `--every`, below: a single run prints its verdict alone.
    match telemetry::startup::<Config>(telemetry::Logging::Off) {
        Ok(config) => main_with(config),
        Err(error) => {
            eprintln!("orderstream-verify: invalid configuration: {}", clients::postgres::describe(&error));
            std::process::exit(INVALID_CONFIGURATION);
        }
    }
}

#[tokio::main]
async fn main_with(config: Config) {
    if let Some(every) = config.every {
        telemetry::init_logging();
        if let Err(error) = run_every(&config, every, telemetry::shutdown_signal()).await {
            eprintln!("orderstream-verify: {}", clients::postgres::describe(&error));
            std::process::exit(CANNOT_VERIFY);
        }
        return;
    }
    let report = match verify(&config).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("orderstream-verify: {error}");
            std::process::exit(CANNOT_VERIFY);
        }
    };
    if config.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("the report serialises"));
    } else {
        print!("{}", report.render());
    }
    std::process::exit(report.exit_code());
}
