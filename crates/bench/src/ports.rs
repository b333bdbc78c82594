//! The ports' defaults, from the repository's `ports.env` (the file the
//! Makefile and the scripts read), compiled in: one place for every port.

/// The file's text.
const PORTS_ENV: &str = include_str!("../../../ports.env");

/// The value of `name` in `ports.env`. Panics if it is missing: a renamed
/// entry is a bug a unit test catches.
pub fn port(name: &str) -> u16 {
    PORTS_ENV
        .lines()
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| key.trim() == name)
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("ports.env has no port {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_ports_come_from_ports_env() {
        assert_eq!(
            [
                port("PORT_BENCH_PG"),
                port("PORT_BENCH_KAFKA"),
                port("PORT_BENCH_KAFKA_CONTROLLER"),
                port("PORT_BENCH_CONNECT")
            ],
            [25452, 29132, 29133, 29134]
        );
    }
}
