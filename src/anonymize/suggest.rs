//! Suggesting a transformer for a column from its name and a sample of its values (what
//! they hold, where the name says nothing), for `anonymize init` and the snippet a
//! fail-closed stop prints; [`super::init`] writes the suggestions as config.

use std::collections::BTreeMap;

use crate::pii::detect::{looks_like_email, looks_like_phone};
use crate::pii::names::{found_in, looks_like_person, names_a_person, FIRST_NAMES};

/// A suggestion: the transformer (with inline options, as TOML) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// The TOML value: `"keep"` or `{ transformer = "email" }`.
    pub toml: String,
    pub reason: String,
}

/// What the reason of the weakest suggestion says: a column called `name` whose values
/// might be people's, told by nothing else ([`crate::anonymize::init::keep_catalogue_names`]
/// reads it).
pub const NAME_ONLY: &str = "may hold a person's name; use `keep` if it does not";

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
        // a catalogue's `name` (a category, a genre) is not a person's: only when no
        // sampled value looks like one (a person's name outside the lists is still a name)
        if !nonempty.is_empty() && !nonempty.iter().any(|v| looks_like_person(v)) {
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
            reason: format!("the name `{name}` {NAME_ONLY}"),
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
        if names {
            return Some(Suggestion {
                toml: "\"lorem\"".into(),
                reason: "the sampled lexemes include people's names; lorem replaces the \
                         lexemes and keeps positions and weights (or rebuild the vector from \
                         anonymized columns after loading)"
                    .into(),
            });
        }
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
        if path.contains(".*") || s.toml.contains("\"json\"") {
            return Some(Suggestion {
                toml: "\"null\"".into(),
                reason: format!(
                    "sampled JSON holds personal data at {path}, which a path cannot spell \
                     (a key of odd characters, or JSON inside a string); null clears it"
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

#[cfg(test)]
mod tests {
    use super::*;

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
            "\"lorem\""
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
        // people's names in any case, and last-first, are still people's names
        assert_eq!(
            suggest("ship_name", None, &["MARIA ANDERS", "ANA TRUJILLO"]).toml,
            "\"full-name\""
        );
        assert_eq!(
            suggest("owner_name", None, &["Anders, Maria"]).toml,
            "\"full-name\""
        );
        let s = suggest(
            "doc",
            Some("jsonb"),
            &[r#"{"raw": "{\"email\": \"a@b.example\"}"}"#],
        );
        assert_eq!(s.toml, "\"null\"", "JSON inside a JSON string: {s:?}");
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
}
