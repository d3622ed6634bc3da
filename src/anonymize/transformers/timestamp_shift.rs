//! `timestamp-shift`: timestamps moved by a keyed number of whole days.

use super::{Build, OptionDoc, Options, Spec, Transform};

pub static SPEC: Spec = Spec {
    name: "timestamp-shift",
    summary: "Moves a timestamp (`YYYY-MM-DD HH:MM:SS[.ffffff][±zone]`) by a keyed number of whole days, as `date-shift` does; the time of day and the zone stay, so an entity's events keep their order, spacing and daily rhythm.",
    options: &[
        OptionDoc { name: "days", kind: "integer", default: "30", doc: "the largest shift, 1 to 3650" },
        OptionDoc { name: "by", kind: "string", default: "the value itself", doc: "a column of the same row whose source value picks the shift" },
    ],
    examples: &[
        super::Example { options: "", input: "2006-02-15 09:34:33", row: &[] },
        super::Example { options: "by = \"customer_id\"", input: "2022-05-24 23:53:30+00", row: &[("customer_id", "130")] },
    ],
    accepts: super::Accepts::Only(&[super::Kind::Timestamp, super::Kind::Text]),
    build,
};

fn build(o: &mut Options, b: &Build<'_>) -> Result<Box<dyn Transform>, String> {
    Ok(Box::new(super::date_shift::Shift::build(o, b)?))
}
