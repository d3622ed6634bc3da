//! Suggesting a transformer for a column from its name and a sample of its values, for
//! `anonymize init` and for the snippet a fail-closed stop prints: fitted to the column's
//! type, both sides of a foreign key alike, written under table keys that read back as
//! the same tables.

use std::collections::BTreeMap;

use super::ddl::ForeignKey;
use super::plan::SourceTable;
use super::transformers;
use super::types::ColumnType;
use crate::pii::detect::{looks_like_email, looks_like_phone};

/// A suggestion: the transformer (with inline options, as TOML) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// The TOML value: `"keep"` or `{ transformer = "email" }`.
    pub toml: String,
    pub reason: String,
}

/// The words of a column name: `ship_name`, `ShipName` and `shipName` are `ship name`.
fn words(name: &str) -> Vec<String> {
    let mut spaced = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_uppercase() && prev_lower {
            spaced.push(' ');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        spaced.push(c);
    }
    spaced
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Name patterns, most specific first: (any of these words or joined names, transformer).
const BY_NAME: &[(&[&str], &str, &str)] = &[
    (
        &["email", "e_mail", "mail", "emailaddress"],
        "email",
        "an email address",
    ),
    (
        &[
            "phone",
            "mobile",
            "telephone",
            "tel",
            "fax",
            "cell",
            "phonenumber",
            "telefon",
        ],
        "phone",
        "a phone number",
    ),
    (
        &[
            "first_name",
            "firstname",
            "given_name",
            "givenname",
            "forename",
            "prenume",
        ],
        "first-name",
        "a first name",
    ),
    (
        &[
            "last_name",
            "lastname",
            "surname",
            "family_name",
            "familyname",
            "nume",
        ],
        "last-name",
        "a last name",
    ),
    (
        &[
            "full_name",
            "fullname",
            "contact_name",
            "person_name",
            "display_name",
            "customer_name",
            "client_name",
        ],
        "full-name",
        "a person's name",
    ),
    (
        &[
            "company",
            "company_name",
            "employer",
            "organisation",
            "organization",
            "firm",
        ],
        "company",
        "a company name",
    ),
    (
        &[
            "address",
            "address1",
            "address2",
            "address_line",
            "street",
            "addr",
            "adresa",
        ],
        "street",
        "a street address",
    ),
    (&["city", "town", "oras", "localitate"], "city", "a city"),
    (
        &[
            "postal_code",
            "postalcode",
            "zip",
            "zipcode",
            "zip_code",
            "postcode",
            "cod_postal",
        ],
        "postal-code",
        "a postal code",
    ),
    (
        &["iban", "bank_account", "account_number"],
        "iban",
        "a bank account",
    ),
    (
        &["card", "card_number", "cc_number", "pan", "credit_card"],
        "card-number",
        "a card number",
    ),
    (
        &[
            "cnp",
            "ssn",
            "national_id",
            "personal_id",
            "personal_number",
            "tax_id",
            "id_number",
        ],
        "national-id",
        "a national id",
    ),
    (
        &[
            "birth",
            "birthday",
            "dob",
            "date_of_birth",
            "birth_date",
            "birthdate",
        ],
        "date-shift",
        "a birth date",
    ),
    (
        &[
            "password",
            "password_hash",
            "token",
            "secret",
            "api_key",
            "salt",
        ],
        "hash",
        "a secret",
    ),
    (
        &["ip", "ip_address", "ipaddress", "last_ip"],
        "hash",
        "an IP address",
    ),
    (
        &[
            "note",
            "notes",
            "comment",
            "comments",
            "description",
            "body",
            "bio",
            "message",
            "remarks",
        ],
        "lorem",
        "free text people write into",
    ),
];

/// The suggestion for a column called `name` of SQL type `sql_type` (if known) whose
/// sampled values are `samples`.
pub fn suggest(name: &str, sql_type: Option<&str>, samples: &[&str]) -> Suggestion {
    let ws = words(name);
    // `Last Name`, `lastName` and `last_name` are one name
    let lname = ws.join("_");
    let by_name = |exact: bool| {
        BY_NAME.iter().find_map(|(patterns, transformer, what)| {
            let hit = patterns.iter().any(|p| {
                if exact {
                    lname == *p
                } else {
                    ws.iter().any(|w| w == p)
                }
            });
            hit.then(|| Suggestion {
                toml: format!("\"{transformer}\""),
                reason: format!("the name `{name}` suggests {what}"),
            })
        })
    };
    if let Some(s) = by_name(true) {
        return s;
    }
    // `firm_id`, `email_verified_at`, `phone_count`: about the thing, not the thing
    let about = [
        "id", "uuid", "key", "count", "at", "type", "status", "verified", "enabled", "flag", "opt",
    ];
    if ws.len() > 1 && ws.iter().skip(1).any(|w| about.contains(&w.as_str())) {
        return Suggestion {
            toml: "\"keep\"".into(),
            reason: format!(
                "`{name}` is a key, timestamp, type, flag or count, not personal data itself"
            ),
        };
    }
    if let Some(s) = by_name(false) {
        return s;
    }
    let nonempty: Vec<&str> = samples.iter().copied().filter(|s| !s.is_empty()).collect();
    if !nonempty.is_empty() {
        let share = |f: &dyn Fn(&str) -> bool| share_of(&nonempty, f);
        if share(&|s| looks_like_email(s)) {
            return Suggestion {
                toml: "\"email\"".into(),
                reason: "most sampled values are email addresses".into(),
            };
        }
        if share(&|s| looks_like_phone(s)) && !ws.iter().any(|w| w == "id") {
            return Suggestion {
                toml: "\"phone\"".into(),
                reason: "most sampled values look like phone numbers".into(),
            };
        }
    }
    if let Some(s) = by_content(sql_type, &nonempty) {
        return s;
    }
    if ws.iter().any(|w| w == "name")
        && !ws.iter().any(|w| {
            [
                "file",
                "table",
                "product",
                "title",
                "category",
                "status",
                "type",
                "migration",
                "schema",
                "column",
                "index",
                "database",
                "host",
                "domain",
                "app",
                "application",
                "service",
                "event",
                "job",
                "project",
                "role",
                "tag",
                "country",
                "language",
                "model",
                "package",
                "branch",
                "step",
                "key",
                "brand",
                "film",
                "city",
            ]
            .contains(&w.as_str())
        })
    {
        // a catalogue's `name` (a category, a genre) is not a person's
        if !nonempty.is_empty() && !share_of(&nonempty, &looks_like_person) {
            return Suggestion {
                toml: "\"keep\"".into(),
                reason: format!(
                    "the name `{name}` says name, but the sampled values do not look like \
                     people's names (catalogue values)"
                ),
            };
        }
        return Suggestion {
            toml: "\"full-name\"".into(),
            reason: format!(
                "the name `{name}` may hold a person's name; use `keep` if it does not"
            ),
        };
    }
    let kind = sql_type.map(|t| format!(" ({t})")).unwrap_or_default();
    Suggestion {
        toml: "\"keep\"".into(),
        reason: format!("no personal-data pattern in the name or sampled values{kind}"),
    }
}

/// Whether more than half of `samples` are `f`.
fn share_of(samples: &[&str], f: &dyn Fn(&str) -> bool) -> bool {
    samples.iter().filter(|s| f(s)).count() * 2 > samples.len()
}

/// Every first name of the generators' lists, folded: a word of text that is one, followed
/// by a capitalised word, names a person.
static FIRST_NAMES: std::sync::LazyLock<std::collections::HashSet<String>> =
    std::sync::LazyLock::new(|| {
        use crate::seed::locale::list;
        use crate::seed::profile::{FakeKind, Locale};
        [Locale::En, Locale::Ro]
            .into_iter()
            .filter_map(|l| list(FakeKind::FirstName, l))
            .flatten()
            .map(|n| n.to_lowercase())
            .collect()
    });

fn capitalised(w: &str) -> bool {
    let mut c = w.chars();
    c.next().is_some_and(char::is_uppercase) && c.any(char::is_lowercase)
}

/// A person's name: a known first name, alone or leading two to four capitalised words
/// (`Maria Anders`; not `Aniseed Syrup`).
fn looks_like_person(s: &str) -> bool {
    let ws: Vec<&str> = s.split_whitespace().collect();
    let known = |w: &str| FIRST_NAMES.contains(&w.to_lowercase());
    match ws.as_slice() {
        [one] => known(one),
        [first, ..] if ws.len() <= 4 => known(first) && ws.iter().all(|w| capitalised(w)),
        _ => false,
    }
}

/// A person named inside text: a known first name, capitalised, and a capitalised word
/// after it (`… called Maria Anders on …`).
fn names_a_person(text: &str) -> bool {
    let ws: Vec<&str> = text
        .split(|c: char| !c.is_alphabetic() && c != '-' && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    ws.windows(2).any(|p| {
        capitalised(p[0]) && capitalised(p[1]) && FIRST_NAMES.contains(&p[0].to_lowercase())
    })
}

/// The kinds of personal data in `text` (`email`, `phone` …, `people's names`), for
/// what init says of text outside columns (comments).
pub fn personal_in(text: &str) -> Vec<&'static str> {
    let mut found = found_in(text);
    if names_a_person(text) {
        found.push("people's names");
    }
    found
}

/// What the detectors find in `text`, as `email`, `phone` …, without repeats.
fn found_in(text: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    crate::pii::detect::detect(text, &mut |d, _| {
        if !found.contains(&d) {
            found.push(d);
        }
    });
    found
}

/// A suggestion from what sampled values hold when their column's name said nothing:
/// personal data inside JSON documents (per path, as the `json` transformer takes them),
/// inside bytea that decodes to text, inside free text, or people's names among a
/// tsvector's lexemes (issue 14: init used to leave all of these as `keep`).
fn by_content(sql_type: Option<&str>, samples: &[&str]) -> Option<Suggestion> {
    if samples.is_empty() {
        return None;
    }
    let json: Vec<serde_json::Value> = samples
        .iter()
        .filter_map(|s| {
            let t = s.trim();
            (t.starts_with('{') || t.starts_with('['))
                .then(|| serde_json::from_str(t).ok())
                .flatten()
        })
        .collect();
    if json.len() * 2 > samples.len() {
        return json_paths(&json);
    }
    if sql_type == Some("tsvector") {
        // the lists hold common words too ("grace", "general"): most vectors, not one
        let names = share_of(samples, &|s| {
            s.split_whitespace().any(|lexeme| {
                let word = lexeme.split('\'').nth(1).unwrap_or("");
                FIRST_NAMES.contains(word)
            })
        });
        return names.then(|| Suggestion {
            toml: "\"null\"".into(),
            reason: "the sampled lexemes include people's names; no transformer rewrites a \
                     tsvector, null clears it (rebuild it from anonymized columns after \
                     loading if it is needed)"
                .into(),
        });
    }
    if share_of(samples, &looks_like_person) {
        return Some(Suggestion {
            toml: "\"full-name\"".into(),
            reason: "most sampled values are people's names".into(),
        });
    }
    let texts: Vec<(String, bool)> = samples
        .iter()
        .map(|s| {
            match s
                .strip_prefix("\\x")
                .and_then(|h| crate::pii::detect::bytea_text(h.as_bytes()))
            {
                Some(t) => (t, true),
                None => (s.to_string(), false),
            }
        })
        .collect();
    let mut found: Vec<&'static str> = Vec::new();
    let mut binary = false;
    for (t, bytea) in &texts {
        for d in found_in(t) {
            binary |= *bytea;
            if !found.contains(&d) {
                found.push(d);
            }
        }
    }
    // a name inside text counts when most samples hold one ("Grace period" is no person)
    let texts_only: Vec<&str> = texts.iter().map(|(t, _)| t.as_str()).collect();
    if share_of(&texts_only, &|t| names_a_person(t)) {
        binary |= texts.iter().any(|(_, b)| *b);
        found.push("people's names");
    }
    if found.is_empty() {
        return None;
    }
    let what = found.join(", ");
    Some(if binary {
        Suggestion {
            toml: "\"null\"".into(),
            reason: format!(
                "sampled values are binary data whose text holds {what}; no transformer \
                 rewrites inside binary data, null clears it"
            ),
        }
    } else {
        Suggestion {
            toml: "\"lorem\"".into(),
            reason: format!("sampled text holds {what}"),
        }
    })
}

/// A `json` transformer for the paths of sampled documents whose leaves hold personal
/// data (each judged by [`suggest`] on its key and its sampled values), or `None` when
/// no path does. A key that a path cannot spell makes the whole document `null`.
fn json_paths(docs: &[serde_json::Value]) -> Option<Suggestion> {
    fn walk(
        v: &serde_json::Value,
        path: String,
        key: &str,
        out: &mut BTreeMap<String, (String, Vec<String>)>,
    ) {
        match v {
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    let spelled = !k.is_empty()
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && !k.starts_with(|c: char| c.is_ascii_digit());
                    let p = if spelled {
                        format!("{path}.{k}")
                    } else {
                        format!("{path}.*")
                    };
                    walk(x, p, k, out);
                }
            }
            serde_json::Value::Array(a) => {
                for x in a {
                    walk(x, format!("{path}[*]"), key, out);
                }
            }
            serde_json::Value::String(s) => out
                .entry(path)
                .or_insert_with(|| (key.to_string(), Vec::new()))
                .1
                .push(s.clone()),
            serde_json::Value::Number(n) => out
                .entry(path)
                .or_insert_with(|| (key.to_string(), Vec::new()))
                .1
                .push(n.to_string()),
            _ => {}
        }
    }
    let mut leaves = BTreeMap::new();
    for d in docs {
        walk(d, "$".into(), "", &mut leaves);
    }
    let mut paths = Vec::new();
    let mut why = Vec::new();
    for (path, (key, values)) in &leaves {
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let s = suggest(key, None, &refs);
        if s.toml == "\"keep\"" {
            continue;
        }
        if path.contains(".*") {
            return Some(Suggestion {
                toml: "\"null\"".into(),
                reason: format!(
                    "sampled JSON holds personal data under a key no path can spell ({path}); \
                     null clears it"
                ),
            });
        }
        paths.push(format!("\"{path}\" = {}", s.toml));
        why.push(format!("{path} ({})", s.reason));
    }
    if paths.is_empty() {
        return None;
    }
    Some(Suggestion {
        toml: format!(
            "{{ transformer = \"json\", paths = {{ {} }} }}",
            paths.join(", ")
        ),
        reason: format!("sampled JSON holds personal data: {}", why.join("; ")),
    })
}

/// The `[tables.…]` key that reads back (through [`qualified`](super::config::qualified))
/// as the table `name` (`schema.table`): a part holding `.` or `"` is quoted as SQL quotes
/// it, so `public."a.b"` and `a.b` stay two tables and `we"ird` stays `we"ird`.
pub fn table_key(name: &str) -> String {
    let (schema, table) = name.split_once('.').unwrap_or(("public", name));
    let part = |p: &str| {
        if p.contains(['.', '"']) {
            format!("\"{}\"", p.replace('"', "\"\""))
        } else {
            p.to_string()
        }
    };
    toml_key(&if schema == "public" {
        part(table)
    } else {
        format!("{}.{}", part(schema), part(table))
    })
}

/// A TOML key, quoted when it needs to be.
pub fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        format!("\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// `columns.x = "…"   # why`, for column `i` of `t` (the fail-closed snippet).
pub(super) fn column_line(t: &SourceTable, i: usize) -> String {
    line(&t.columns[i], &suggestion(t, i, &[]))
}

fn line(column: &str, s: &Suggestion) -> String {
    format!(
        "columns.{} = {}   # {}\n",
        toml_key(column),
        s.toml,
        s.reason
    )
}

/// A whole `[tables.x]` section for `t`; `samples[i]` are sampled values of column i.
pub fn table_section(t: &SourceTable, samples: &[Vec<String>]) -> String {
    section(t, &suggestions(t, samples))
}

/// A suggestion for every column of `t`; `samples[i]` are sampled values of column i.
pub fn suggestions(t: &SourceTable, samples: &[Vec<String>]) -> Vec<Suggestion> {
    (0..t.columns.len())
        .map(|i| {
            let sample: Vec<&str> = samples
                .get(i)
                .map(|v| v.iter().map(String::as_str).collect())
                .unwrap_or_default();
            suggestion(t, i, &sample)
        })
        .collect()
}

/// The suggestion for column `i` of `t`, from its name, type and samples, and one its
/// type can take.
fn suggestion(t: &SourceTable, i: usize, samples: &[&str]) -> Suggestion {
    let ty = t.types.get(i).and_then(Option::as_ref);
    let s = suggest(&t.columns[i], ty.map(|t| t.sql.as_str()), samples);
    match ty {
        Some(ty) => fit_suggestion(s, ty),
        None => s,
    }
}

/// A suggestion the column's type can take: one whose transformer cannot write the type
/// becomes `null`, saying why (issue 14: init never suggests an incompatible pair).
fn fit_suggestion(s: Suggestion, ty: &ColumnType) -> Suggestion {
    let name = toml::from_str::<toml::Table>(&format!("x = {}", s.toml))
        .ok()
        .and_then(|t| match t.get("x")? {
            toml::Value::String(n) => Some(n.clone()),
            toml::Value::Table(t) => t.get("transformer")?.as_str().map(str::to_string),
            _ => None,
        });
    let Some(spec) = name.as_deref().and_then(transformers::find) else {
        return s;
    };
    if spec.accepts.takes(ty.kind) {
        return s;
    }
    Suggestion {
        toml: "\"null\"".into(),
        reason: format!(
            "{}, but `{}` cannot write {} ({}); null clears it (on a NOT NULL column use \
             {{ transformer = \"constant\", value = \"…\" }} with a valid {})",
            s.reason,
            spec.name,
            ty.sql,
            ty.kind.describe(),
            ty.kind.describe()
        ),
    }
}

/// A `[tables.x]` section writing `suggestions[i]` for column i.
pub fn section(t: &SourceTable, suggestions: &[Suggestion]) -> String {
    let mut s = format!("\n[tables.{}]\n", table_key(&t.name));
    for (c, sg) in t.columns.iter().zip(suggestions) {
        s.push_str(&line(c, sg));
    }
    s
}

/// Gives the referencing column of every foreign key the referenced column's suggestion
/// (through chains of keys), so the config `init` writes keeps every reference.
pub fn align_foreign_keys(
    suggested: &mut BTreeMap<String, Vec<Suggestion>>,
    tables: &[SourceTable],
    keys: &[ForeignKey],
) {
    let index = |table: &str, col: &str| {
        let t = tables.iter().find(|t| t.name == table)?;
        Some((t.name.clone(), t.columns.iter().position(|c| c == col)?))
    };
    // a chain of n keys settles in n rounds; cycles settle in one more
    for _ in 0..=keys.len().min(64) {
        let mut changed = false;
        for k in keys {
            for (col, pcol) in k.columns.iter().zip(&k.parent_columns) {
                let (Some((ct, ci)), Some((pt, pi))) =
                    (index(&k.table, col), index(&k.parent, pcol))
                else {
                    continue;
                };
                let Some(parent) = suggested
                    .get(&pt)
                    .and_then(|s| s.get(pi))
                    .map(|s| s.toml.clone())
                else {
                    continue;
                };
                if let Some(child) = suggested.get_mut(&ct).and_then(|s| s.get_mut(ci)) {
                    if child.toml != parent {
                        child.toml = parent;
                        child.reason = format!(
                            "references {}.{pcol} (foreign key {}): mapped alike so the reference holds",
                            k.parent, k.name
                        );
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::config::Config;

    #[test]
    fn names_and_samples_suggest_transformers() {
        assert_eq!(suggest("email", None, &[]).toml, "\"email\"");
        assert_eq!(suggest("customer_email", None, &[]).toml, "\"email\"");
        assert_eq!(suggest("first_name", None, &[]).toml, "\"first-name\"");
        assert_eq!(
            suggest("contact", None, &["ana@firm.ro", "bo@x.org"]).toml,
            "\"email\""
        );
        assert_eq!(
            suggest("contact", None, &["+40 721 234 567", "0721 234 568"]).toml,
            "\"phone\""
        );
        assert_eq!(
            suggest("last_update", Some("timestamp"), &["2006-02-15 09:34:33"]).toml,
            "\"keep\""
        );
        assert_eq!(
            suggest("create_date", None, &["2006-02-14", "2006-02-15"]).toml,
            "\"keep\""
        );
        assert_eq!(suggest("name", None, &[]).toml, "\"full-name\"");
        assert_eq!(suggest("file_name", None, &[]).toml, "\"keep\"");
        assert_eq!(suggest("migration_name", None, &[]).toml, "\"keep\"");
        assert_eq!(suggest("firm_id", None, &[]).toml, "\"keep\"");
        assert_eq!(suggest("national_id", None, &[]).toml, "\"national-id\"");
        assert_eq!(suggest("email_verified_at", None, &[]).toml, "\"keep\"");
    }

    /// Values speak where names do not (issue 14): personal data inside JSON (per path),
    /// inside bytea that decodes to text, inside free text, and a catalogue's `name`.
    #[test]
    fn content_suggests_what_names_cannot() {
        let profile = [
            r#"{"contact": {"name": "Maria Anders", "phones": ["+49 30 5550001"]}, "newsletter": true}"#,
            r#"{"contact": {"name": "Ana Trujillo", "phones": ["+49 30 5550002"]}, "newsletter": false}"#,
        ];
        let s = suggest("profile", Some("jsonb"), &profile);
        assert_eq!(
            s.toml,
            r#"{ transformer = "json", paths = { "$.contact.name" = "full-name", "$.contact.phones[*]" = "phone" } }"#,
            "{s:?}"
        );
        assert!(
            s.reason.starts_with("sampled JSON holds personal data"),
            "{s:?}"
        );
        let settings = [
            r#"{"theme": "dark", "page_size": 50}"#,
            r#"{"theme": "light"}"#,
        ];
        assert_eq!(
            suggest("settings", Some("jsonb"), &settings).toml,
            "\"keep\""
        );

        let vcard = "\\x424547494e3a56434152440a454d41494c3a616e6140686f6d652e6578616d706c650a454e443a5643415244";
        let s = suggest("vcard", Some("bytea"), &[vcard]);
        assert_eq!(s.toml, "\"null\"", "{s:?}");
        assert!(
            s.reason.contains("binary data whose text holds email"),
            "{s:?}"
        );
        assert_eq!(
            suggest("thumbnail", Some("bytea"), &["\\x89504e470d0a"]).toml,
            "\"keep\""
        );

        let log = [
            "User logged in from 10.0.0.1",
            "Password reset sent to ann.lee@firm.example",
        ];
        let s = suggest("details", Some("text"), &log);
        assert_eq!(
            (s.toml.as_str(), s.reason.as_str()),
            ("\"lorem\"", "sampled text holds email")
        );
        let called = [
            "Called Maria Anders about the lease",
            "Met Thomas Hardy at the office",
        ];
        assert_eq!(suggest("summary", Some("text"), &called).toml, "\"lorem\"");
        assert_eq!(
            suggest("summary", Some("text"), &["Grace period ends", "Paid"]).toml,
            "\"keep\""
        );

        let lexemes = ["'anders':2 'maria':1 'loyal':3", "'ana':1 'trujillo':2"];
        assert_eq!(
            suggest("search", Some("tsvector"), &lexemes).toml,
            "\"null\""
        );

        // a catalogue's name, and a person's
        let s = suggest(
            "name",
            Some("text"),
            &["Action", "Animation", "Children", "Classics"],
        );
        assert_eq!(s.toml, "\"keep\"", "{s:?}");
        assert_eq!(
            suggest("name", Some("text"), &["Maria Anders", "Ana Trujillo"]).toml,
            "\"full-name\""
        );
        // names are read as words: spaces, capitals and underscores alike
        assert_eq!(
            suggest("Last Name", None, &["Anders", "Trujillo"]).toml,
            "\"last-name\""
        );
        assert_eq!(
            suggest("First Name", None, &["Maria", "Ana"]).toml,
            "\"first-name\""
        );
        assert_eq!(suggest("lastName", None, &[]).toml, "\"last-name\"");
        assert_eq!(
            suggest("ShipName", None, &["Maria Anders", "Ana Trujillo"]).toml,
            "\"full-name\""
        );
        assert_eq!(suggest("contactEmail", None, &[]).toml, "\"email\"");
    }

    /// init writes the referencing column of a foreign key like the referenced one,
    /// through a chain of keys, saying why (issue 14).
    #[test]
    fn init_maps_both_sides_of_a_foreign_key_alike() {
        let table = |name: &str, cols: &[&str]| SourceTable {
            name: name.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            types: vec![None; cols.len()],
        };
        let tables = [
            table("public.people", &["email"]),
            table("public.subscribers", &["contact"]),
            table("public.bounces", &["address"]),
        ];
        let fk = |t: &str, c: &str, p: &str, pc: &str| ForeignKey {
            table: t.into(),
            name: format!("{t}_fk"),
            columns: vec![c.into()],
            parent: p.into(),
            parent_columns: vec![pc.into()],
        };
        // listed child-first, so one round is not enough
        let keys = [
            fk("public.bounces", "address", "public.subscribers", "contact"),
            fk("public.subscribers", "contact", "public.people", "email"),
        ];
        let sg = |toml: &str| {
            vec![Suggestion {
                toml: toml.into(),
                reason: "by name".into(),
            }]
        };
        let mut suggested = BTreeMap::from([
            ("public.people".to_string(), sg("\"email\"")),
            ("public.subscribers".to_string(), sg("\"hash\"")),
            ("public.bounces".to_string(), sg("\"keep\"")),
        ]);
        align_foreign_keys(&mut suggested, &tables, &keys);
        for t in ["public.subscribers", "public.bounces"] {
            assert_eq!(suggested[t][0].toml, "\"email\"", "{t}");
        }
        assert!(
            suggested["public.bounces"][0]
                .reason
                .contains("references public.subscribers.contact"),
            "{:?}",
            suggested["public.bounces"][0]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// The config `init` writes reads back as the same tables, whatever their names:
        /// quotes, dots, spaces, unicode, a table named like another schema's (issue 14).
        #[test]
        fn table_keys_read_back_as_the_same_tables(
            schema in "public|[a-zA-Z_ \"ăș€-]{1,8}",
            table in "[a-zA-Z_ .\"ăș€;-]{1,12}",
        ) {
            let dotted = format!("{schema}.{table}");
            let mut names = vec![dotted.clone()];
            // the table `x.y` of public beside the table `y` of schema `x`
            if let Some((a, b)) = table.split_once('.') {
                if !a.is_empty() && !b.is_empty() {
                    names.push(format!("{a}.{b}"));
                }
            }
            names.push(format!("public.{table}"));
            names.sort();
            names.dedup();
            let text: String = names
                .iter()
                .map(|n| format!("[tables.{}]\ncolumns.x = \"keep\"\n", table_key(n)))
                .collect();
            let config = Config::parse(&text, "anonymize.toml").map_err(|e| {
                proptest::test_runner::TestCaseError::fail(format!("{e}\n{text}"))
            })?;
            let read: Vec<&String> = config.tables.keys().collect();
            proptest::prop_assert_eq!(read, names.iter().collect::<Vec<_>>(), "{}", text);
        }
    }
}
