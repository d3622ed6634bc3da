//! Anonymization: a config naming a transformer for every column, the keyed transformers
//! themselves, and the streaming pipeline that carries COPY rows from a source through
//! them to a sink.

pub mod comments;
pub mod config;
pub mod dump;
mod for_source;
pub mod guard;
pub mod init;
pub mod key;
pub mod large_objects;
pub mod load;
mod memo;
pub mod pipeline;
pub mod plan;
pub mod real;
pub mod suggest;
pub mod transformers;

// column types, their values' validity and schema objects are the source's vocabulary;
// anonymize reads them there
pub use crate::source::{schema_objects, types, valid};
