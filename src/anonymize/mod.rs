//! Anonymization: a config naming a transformer for every column, the keyed transformers
//! themselves, and the streaming pipeline that carries COPY rows from a source through
//! them to a sink.

pub mod key;
pub mod transformers;
