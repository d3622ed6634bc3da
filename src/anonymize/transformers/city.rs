//! `city`: A city name from the locale's list; the case style is kept.

use super::{Build, Options, Spec, Transform};
use crate::seed::profile::FakeKind;

pub static SPEC: Spec = Spec {
    name: "city",
    summary: "A city name from the locale's list; the case style is kept.",
    options: &super::fake::OPTIONS,
    examples: &[
        super::Example {
            options: "",
            input: "Springfield",
            row: &[],
        },
        super::Example {
            options: "",
            input: "Lethbridge",
            row: &[],
        },
        super::Example {
            options: "locale = \"ro\"",
            input: "Cluj-Napoca",
            row: &[],
        },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Text]),
    build,
};

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    super::fake::build(FakeKind::City, o, b)
}
