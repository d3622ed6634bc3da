//! `street`: A street address (number and street) from the locale's lists; the case style is kept.

use super::{Build, Options, Spec, Transform};
use crate::seed::profile::FakeKind;

pub static SPEC: Spec = Spec {
    name: "street",
    summary:
        "A street address (number and street) from the locale's lists; the case style is kept.",
    options: &super::fake::OPTIONS,
    examples: &[
        super::Example {
            options: "",
            input: "12 Baker Street",
            row: &[],
        },
        super::Example {
            options: "",
            input: "47 MySakila Drive",
            row: &[],
        },
        super::Example {
            options: "locale = \"ro\"",
            input: "Strada Lipscani 3",
            row: &[],
        },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    super::fake::build(FakeKind::Street, o, b)
}
