//! `first-name`: a realistic first name.

use super::{Build, Options, Spec, Transform};
use crate::seed::profile::FakeKind;

pub static SPEC: Spec = Spec {
    name: "first-name",
    summary: "A first name from the locale's list, chosen by the keyed hash of the input; the input's case style (UPPER, lower) is kept.",
    options: &super::fake::OPTIONS,
    examples: &[
        super::Example { options: "", input: "Jane", row: &[] },
        super::Example { options: "", input: "PENELOPE", row: &[] },
        super::Example { options: "locale = \"ro\"", input: "Ioana", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    super::fake::build(FakeKind::FirstName, o, b)
}
