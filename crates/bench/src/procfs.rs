//! CPU time and peak memory of processes, from `/proc`: which component
//! sets the ceiling, and what each costs.

use std::process::Command;

/// A `stat` file of proc(5), a process's or a thread's, split into the
/// command name (which may hold spaces and parentheses) and the fields
/// after it, so that field N of proc(5) is `fields[N - 3]`.
fn parse_stat(stat: &str) -> Option<(&str, Vec<u64>)> {
    let (before, after_name) = stat.rsplit_once(')')?;
    let (_, name) = before.split_once('(')?;
    Some((name, after_name.split_whitespace().map(|field| field.parse().unwrap_or(0)).collect()))
}

/// The fields of `/proc/PID/stat` after the command name (see [`parse_stat`]).
fn stat_fields(pid: u32) -> Vec<u64> {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return Vec::new() };
    parse_stat(&stat).map(|(_, fields)| fields).unwrap_or_default()
}

fn field(fields: &[u64], number: usize) -> u64 {
    fields.get(number - 3).copied().unwrap_or(0)
}

/// User + system CPU ticks of a process so far (0 once it is gone).
pub fn cpu_ticks(pid: u32) -> u64 {
    let fields = stat_fields(pid);
    field(&fields, 14) + field(&fields, 15)
}

/// User + system CPU ticks so far of a process's threads whose name
/// contains `name` (a JVM's `C2 CompilerThread0`, …).
pub fn thread_ticks(pid: u32, name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok())
        .filter_map(|stat| {
            let (thread_name, fields) = parse_stat(&stat)?;
            thread_name.contains(name).then(|| field(&fields, 14) + field(&fields, 15))
        })
        .sum()
}

/// Like [`cpu_ticks`], plus the ticks of children it has waited for
/// (PostgreSQL's postmaster reaps its backends).
pub fn cpu_ticks_with_reaped_children(pid: u32) -> u64 {
    let fields = stat_fields(pid);
    (14..=17).map(|number| field(&fields, number)).sum()
}

/// The live children of a process.
pub fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| field(&stat_fields(pid), 4) == u64::from(parent))
        .collect()
}

/// Ticks per second of the counters above (`getconf CLK_TCK`; 100 on Linux
/// if that fails).
pub fn clock_ticks_per_second() -> f64 {
    let output = Command::new("getconf").arg("CLK_TCK").output().ok();
    output.and_then(|output| String::from_utf8(output.stdout).ok()?.trim().parse().ok()).unwrap_or(100.0)
}

/// CPU cores of this machine.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_splits_at_its_last_parenthesis() {
        let stat = "42 (C2 CompilerThre) S 1 2 3 4 5 6 7 8 9 10 120 30 0 0";
        let (name, fields) = parse_stat(stat).unwrap();
        assert_eq!(name, "C2 CompilerThre");
        assert_eq!((field(&fields, 14), field(&fields, 15)), (120, 30), "utime and stime");
        let (odd, _) = parse_stat("7 (a) b) R 1").unwrap();
        assert_eq!(odd, "a) b", "a name may hold a parenthesis");
    }
}
