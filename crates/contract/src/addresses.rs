//! Where each process serves `/metrics` and `/status` unless told otherwise
//! (`--metrics-addr`): the processes bind them, `orderstream-status` asks
//! them, and `make run`'s stack and the docs assume them.

/// The producer's `/metrics` and `/status`.
pub const PRODUCER_METRICS_ADDR: &str = "127.0.0.1:9101";

/// The consumer's `/metrics` and `/status`.
pub const CONSUMER_METRICS_ADDR: &str = "127.0.0.1:9102";

/// The lag exporter's `/metrics`.
pub const LAG_EXPORTER_METRICS_ADDR: &str = "127.0.0.1:9103";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_address_is_a_loopback_socket_address_of_its_own() {
        let addresses = [PRODUCER_METRICS_ADDR, CONSUMER_METRICS_ADDR, LAG_EXPORTER_METRICS_ADDR]
            .map(|addr| addr.parse::<std::net::SocketAddr>().unwrap());
        assert!(addresses.iter().all(|addr| addr.ip().is_loopback()), "{addresses:?}");
        let ports: std::collections::BTreeSet<u16> = addresses.iter().map(|addr| addr.port()).collect();
        assert_eq!(ports.len(), 3, "one port per process");
    }
}
