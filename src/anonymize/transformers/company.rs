//! `company`: A company name from the locale's lists; the case style is kept.

use super::{Build, Options, Spec, Transform};
use crate::seed::profile::FakeKind;

pub static SPEC: Spec = Spec {
    name: "company",
    summary: "A company name from the locale's lists; the case style is kept.",
    options: &super::fake::OPTIONS,
    examples: &[
        super::Example {
            options: "",
            input: "Acme Corp",
            row: &[],
        },
        super::Example {
            options: "",
            input: "ACME CORP",
            row: &[],
        },
        super::Example {
            options: "locale = \"ro\"",
            input: "Dacia S.A.",
            row: &[],
        },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    super::fake::build(FakeKind::Company, o, b)
}
