//! The output's large objects and comments, scanned: no column check sees them, and a copy that kept
//! a vCard verbatim must not pass (issue 14). Each object's content is read from the
//! output itself — `lo_get` inside a live copy's snapshot, pg_dump's `lowrite` lines in a
//! dump — decoded as text where it decodes, and searched by the detectors (e-mail, phone,
//! IBAN, card number, national id). What the config said it did with them is not trusted.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::report::{Check, Status};
use crate::pg::{PgContext as _, PgError};
use crate::pii::detect;
use crate::source::dump::{walk, Line};
use crate::source::Source;

/// Bytes of one object searched at most (the rest is said to be unsearched).
const SCANNED: i32 = 64 << 20;

/// What the detectors found in the objects.
#[derive(Debug, Default)]
struct Found {
    objects: u64,
    with_content: u64,
    /// Per object: the findings, masked, as `detector m***d`.
    hits: BTreeMap<String, Vec<String>>,
}

impl Found {
    fn scan(&mut self, oid: &str, content: &[u8]) {
        if content.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(content);
        for line in text.split(['\n', '\r']) {
            detect::detect(line, &mut |d, m| {
                let found = self.hits.entry(oid.to_string()).or_default();
                if found.len() < 5 {
                    found.push(format!("{d} {}", detect::mask(m)));
                }
            });
        }
    }
}

/// The check on the output's large objects, or none when it holds none.
pub async fn check(dst: &Source) -> anyhow::Result<Option<Check>> {
    let found = match dst {
        Source::Live(live) => {
            if live.large_objects.is_empty() {
                return Ok(None);
            }
            read_live(&live.reader().await?, &live.large_objects).await?
        }
        Source::Dump(d, scan) => {
            if scan.ddl.large_objects == 0 {
                return Ok(None);
            }
            let reader = d.reader()?;
            let name = d.name.clone();
            tokio::task::block_in_place(|| read_dump(reader, &name))?
        }
    };
    let fail = !found.hits.is_empty();
    let detail = if fail {
        let each: Vec<String> = found
            .hits
            .iter()
            .map(|(oid, h)| format!("object {oid}: {}", h.join(", ")))
            .collect();
        format!(
            "personal data in {} of {} large objects: {}; set [large_objects] action = \
             \"empty\" or \"drop\" in the config",
            found.hits.len(),
            found.objects,
            each.join("; ")
        )
    } else {
        format!(
            "{} large objects, {} with content: no e-mail, phone, IBAN, card number or \
             national id in them",
            found.objects, found.with_content
        )
    };
    Ok(Some(Check {
        status: if fail { Status::Fail } else { Status::Pass },
        check: "large_objects".into(),
        table: "(large objects)".into(),
        column: None,
        measured: Some(found.hits.len() as f64),
        threshold: Some(0.0),
        detail,
        chart: None,
    }))
}

/// The check on the output's comments (`COMMENT ON` text, which no column check sees),
/// or none when it has none.
pub fn comments(dst: &Source) -> Option<Check> {
    let comments = dst.comments();
    if comments.is_empty() {
        return None;
    }
    let mut found = Found::default();
    for (i, c) in comments.iter().enumerate() {
        found.objects += 1;
        let at = format!("#{}", i + 1);
        found.scan(&at, c.as_bytes());
        // a comment is prose: a person named in it counts too ("Owner: Maria Anders")
        if crate::pii::names::personal_in(c).contains(&"people's names") {
            found
                .hits
                .entry(at)
                .or_default()
                .push("a person's name".into());
        }
    }
    let fail = !found.hits.is_empty();
    Some(Check {
        status: if fail { Status::Fail } else { Status::Pass },
        check: "comments".into(),
        table: "(comments)".into(),
        column: None,
        measured: Some(found.hits.len() as f64),
        threshold: Some(0.0),
        detail: if fail {
            let each: Vec<String> = found.hits.values().map(|h| h.join(", ")).collect();
            format!(
                "personal data in {} of {} comments: {}; set [comments] action = \"drop\" in \
                 the config",
                found.hits.len(),
                found.objects,
                each.join("; ")
            )
        } else {
            format!(
                "{} comments: no e-mail, phone, IBAN, card number or national id in them",
                found.objects
            )
        },
        chart: None,
    })
}

async fn read_live(reader: &Client, oids: &[u32]) -> Result<Found, PgError> {
    let mut found = Found::default();
    for &oid in oids {
        let content: Vec<u8> = reader
            .query_one("SELECT pg_catalog.lo_get($1, 0, $2)", &[&oid, &SCANNED])
            .await
            .pg(|| format!("reading large object {oid} of the output"))?
            .get(0);
        found.objects += 1;
        found.with_content += u64::from(!content.is_empty());
        found.scan(&oid.to_string(), &content);
    }
    Ok(found)
}

/// A plain dump's objects: `lo_open('OID', …)` names the object the `lowrite` lines up to
/// `lo_close` write, each as hex.
fn read_dump(input: impl std::io::BufRead, name: &str) -> anyhow::Result<Found> {
    let mut found = Found::default();
    let mut open: Option<(String, bool)> = None;
    walk(input, name, |_, raw, line| {
        if !matches!(line, Line::Other) {
            return Ok(());
        }
        let l = String::from_utf8_lossy(raw);
        if crate::source::catalog::large_object_created(&l).is_some() {
            found.objects += 1;
        } else if let Some(rest) = l.strip_prefix("SELECT pg_catalog.lo_open('") {
            let oid = rest.split('\'').next().unwrap_or("").to_string();
            open = Some((oid, false));
        } else if let Some(hex) = l
            .strip_prefix("SELECT pg_catalog.lowrite(0, '\\x")
            .and_then(|r| r.split('\'').next())
        {
            if let Some((oid, seen)) = open.as_mut() {
                let bytes: Vec<u8> = (0..hex.len() / 2)
                    .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                    .collect();
                if !*seen && !bytes.is_empty() {
                    *seen = true;
                    found.with_content += 1;
                }
                found.scan(oid, &bytes);
            }
        } else if l.starts_with("SELECT pg_catalog.lo_close(") {
            open = None;
        }
        Ok(())
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pg_dump's lines for a kept vCard: the detectors see through the hex.
    #[test]
    fn a_dumps_kept_vcard_is_found_and_an_empty_object_is_not() {
        let vcard = b"BEGIN:VCARD\nFN:Maria Anders\nTEL:+49 30 5550001\nEMAIL:maria.anders@alfki.example\nEND:VCARD";
        let hex: String = vcard.iter().map(|b| format!("{b:02x}")).collect();
        let dump = format!(
            "SELECT pg_catalog.lo_create('424242');\nSELECT pg_catalog.lo_create('7');\n\
             BEGIN;\nSELECT pg_catalog.lo_open('424242', 131072);\n\
             SELECT pg_catalog.lowrite(0, '\\x{hex}');\nSELECT pg_catalog.lo_close(0);\nCOMMIT;\n"
        );
        let found = read_dump(dump.as_bytes(), "dump.sql").unwrap();
        assert_eq!((found.objects, found.with_content), (2, 1));
        let hits = &found.hits["424242"];
        assert!(hits.iter().any(|h| h.starts_with("email ")), "{hits:?}");
        assert!(hits.iter().any(|h| h.starts_with("phone ")), "{hits:?}");
        assert!(
            !hits.iter().any(|h| h.contains("anders@")),
            "masked: {hits:?}"
        );
        assert!(!found.hits.contains_key("7"));
    }
}
