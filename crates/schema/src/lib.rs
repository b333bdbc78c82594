//! The order record shared by every orderstream component.
//!
//! The producer turns CSV lines into [`Order`]s and publishes them as
//! [`OrderMessage`]s; the consumer decodes those messages and writes them
//! with the SQL in [`migrations`]. Keeping the record, its parsing and the
//! table it lands in together means a change to the record is one change,
//! reviewed in one place.
//!
//! # Layout
//!
//! | module        | responsibility                                                       |
//! |---------------|----------------------------------------------------------------------|
//! | `order`       | the [`Order`] record itself                                          |
//! | [`columns`]   | the CSV header: which column holds which field; aliases, extra columns |
//! | [`csv_export`]| CSV written for people: formula injection neutralised                |
//! | [`parse`]     | one CSV record's fields → a validated [`Order`], or a [`Rejection`]  |
//! | `flags`       | suspicious but valid orders: kept and flagged                        |
//! | [`message`]   | the Kafka wire format: versioned JSON value and header names         |
//! | [`provenance`]| the record's origin as Kafka headers: encoder and decoder side by side |
//! | [`migrations`]| the PostgreSQL schema as ordered, embedded SQL migrations            |
//!
//! # Guarantee
//!
//! This crate is pure: no I/O, no clock (callers pass "now"), no globals. The
//! same bytes always parse to the same result, so the producer and any
//! checker agree on what is valid.

pub mod columns;
pub mod csv_export;
mod flags;
pub mod message;
pub mod migrations;
mod order;
pub mod parse;
pub mod provenance;
pub mod records;

pub use columns::{ColumnAlias, Columns, Extra, HeaderError, HeaderRules, UnknownColumns};
pub use flags::{Flag, FlagRules};
pub use message::{DecodeError, OrderMessage, SCHEMA_VERSION};
pub use order::Order;
pub use parse::{parse_money, parse_order, parse_timestamp, Rejection, RejectionKind};
pub use provenance::{FoundProvenance, Provenance, ProvenanceError};
