//! The business analysis as code.
//!
//! The shop's "Orders and baskets analysis" used to live only inside
//! Metabase's own database, with `CURRENT_DATE` windows that went blank as
//! time passed. Here every question is a SQL file in the repository, reading
//! views anchored on the data, and two things are built from those files: the
//! Metabase dashboard (provisioned over its REST API) and a self-contained
//! HTML report that needs no BI server.
//!
//! # Layout
//!
//! | module        | responsibility                                              |
//! |---------------|-------------------------------------------------------------|
//! | [`questions`] | the question files: header, SQL, Metabase optional clauses  |
//! | [`presentation`] | the header keys saying how an answer is shown and where |
//! | [`labels`]    | each column's heading, axis title and format: one vocabulary for the report and Metabase |
//! | [`answers`]   | running a question against PostgreSQL                       |
//! | [`report`]    | the HTML report with SVG charts                             |
//! | [`metabase`]  | idempotent provisioning of Metabase over its REST API       |
//! | [`visualization`] | a card's Metabase `visualization_settings`, from its presentation |
//! | [`unchanged`] | the version a provisioned object carries, and the SQL read back in either query shape |

pub mod answers;
pub mod labels;
pub mod metabase;
pub mod presentation;
pub mod questions;
pub mod report;
pub mod unchanged;
pub mod visualization;
