//! Where the pipeline's records live in Kafka: the orders topic, the
//! dead-letter topic and the consumer group, declared once for every binary
//! that names them (producer, consumer, lag exporter, status), so their
//! flags, variables and defaults cannot drift apart.

/// `--topic`: the topic the orders go through.
#[derive(Debug, Clone, clap::Args)]
pub struct TopicArgs {
    /// Topic the orders are published to and read from.
    #[arg(
        help_heading = "Kafka",
        id = "topic",
        value_name = "TOPIC",
        long = "topic",
        global = true,
        env = "ORDERSTREAM_TOPIC",
        default_value = "orders"
    )]
    pub name: String,
}

/// `--dlq-topic`: the dead-letter topic.
#[derive(Debug, Clone, clap::Args)]
pub struct DeadLetterTopicArgs {
    /// Topic records that can never be written go to, with the reason in headers.
    #[arg(
        help_heading = "Kafka",
        id = "dlq_topic",
        value_name = "DLQ_TOPIC",
        long = "dlq-topic",
        global = true,
        env = "ORDERSTREAM_DLQ_TOPIC",
        default_value = "orders.dlq"
    )]
    pub name: String,
}

/// `--group`: the consumer group.
#[derive(Debug, Clone, clap::Args)]
pub struct GroupArgs {
    /// Consumer group: consumers sharing it split the partitions between
    /// them; its lag is what the lag exporter and status show.
    #[arg(
        help_heading = "Kafka",
        id = "group",
        value_name = "GROUP",
        long = "group",
        global = true,
        env = "ORDERSTREAM_GROUP",
        default_value = "orderstream"
    )]
    pub name: String,
}
