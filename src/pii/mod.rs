//! Shapes of personal data, shared by the three places that look for it: `anonymize init`
//! (what to suggest for a column), the transformers, and `verify` (what must not be in a
//! copy). One definition each, so init never calls `keep` what verify then fails.

pub mod detect;
pub mod names;
pub mod validate;
