//! `last-name`: A last name from the locale's list, chosen by the keyed hash of the input; the input's case style is kept.

use super::{Build, Options, Spec, Transform};
use crate::seed::profile::FakeKind;

pub static SPEC: Spec = Spec {
    name: "last-name",
    summary: "A last name from the locale's list, chosen by the keyed hash of the input; the input's case style is kept.",
    options: &super::fake::OPTIONS,
    examples: &[
        super::Example { options: "", input: "Doe", row: &[] },
        super::Example { options: "", input: "GUINESS", row: &[] },
        super::Example { options: "locale = \"ro\"", input: "Popescu", row: &[] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    super::fake::build(FakeKind::LastName, o, b)
}
