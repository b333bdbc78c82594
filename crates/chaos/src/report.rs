//! The table `make chaos` prints.

use std::fmt::Write as _;

use crate::rig::Outcome;

/// One line per scenario, then the details of the failed ones.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "| {:<32} | {:>9} | {:>17} | {:>15} | {:>10} | {:>9} | {:<6} |",
        "scenario", "lines in", "rows exp / found", "DL exp / found", "DL re-sent", "recovery", "result"
    );
    let _ = writeln!(text, "|{:-<34}|{:->11}|{:->19}|{:->17}|{:->12}|{:->11}|{:-<8}|", "", "", "", "", "", "", "");
    for outcome in outcomes {
        let recovery = outcome.recovered_in.map_or("—".to_string(), |took| format!("{:.1} s", took.as_secs_f64()));
        let _ = writeln!(
            text,
            "| {:<32} | {:>9} | {:>17} | {:>15} | {:>10} | {:>9} | {:<6} |",
            outcome.name,
            outcome.lines_in,
            format!("{} / {}", outcome.rows_expected, outcome.rows_found),
            format!("{} / {}", outcome.dead_letters_expected, outcome.dead_letters_found),
            outcome.dead_letters_resent,
            recovery,
            if outcome.passed { "pass" } else { "FAIL" },
        );
    }
    for outcome in outcomes.iter().filter(|outcome| !outcome.passed) {
        let _ = writeln!(text, "\n{} failed:\n{}", outcome.name, outcome.details);
    }
    text
}

/// One line per scenario with the invariant's verdict, the closing lines of
/// `make chaos-cluster`: `c1 …: 0 lost, 0 doubled, versions never down,
/// offsets never back`.
pub fn verdicts(outcomes: &[Outcome]) -> String {
    outcomes.iter().map(|outcome| format!("{}: {}\n", outcome.name, outcome.verdict)).collect()
}
