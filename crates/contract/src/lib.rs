//! What orderstream's processes read of each other, defined once: the
//! writer and every reader link the same types, so `orderstream-status`
//! depends on no other binary's crate.
//!
//! # Layout
//!
//! | module        | responsibility                                                         |
//! |---------------|------------------------------------------------------------------------|
//! | [`addresses`] | where each process serves `/metrics` and `/status` unless told otherwise |
//! | [`status`]    | the producer's and the consumer's `/status` documents                  |
//! | [`identity`]  | which file a path holds: device, inode, checksum of the first bytes    |
//! | [`positions`] | the producer's positions file: its format, and reading it without the producer |
//! | [`lag`]       | lag arithmetic: records written and not yet applied, records lost to retention |
//!
//! # Guarantee
//!
//! The bytes do not change with this crate: a `/status` document and a
//! positions file are the same whichever version of a reader reads them,
//! and the tests pin both. It only describes and reads; it holds no Kafka or
//! PostgreSQL client.

pub mod addresses;
pub mod identity;
pub mod lag;
pub mod positions;
pub mod status;
