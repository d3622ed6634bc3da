//! Suggesting a transformer for a column from its name and a sample of its values, for
//! `anonymize init` and for the snippet a fail-closed stop prints.

/// A suggestion: the transformer (with inline options, as TOML) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// The TOML value: `"keep"` or `{ transformer = "email" }`.
    pub toml: String,
    pub reason: String,
}

fn words(name: &str) -> Vec<String> {
    name.to_lowercase()
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
    let lname = name.to_lowercase();
    let ws = words(name);
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
        let share = |f: &dyn Fn(&str) -> bool| {
            nonempty.iter().filter(|s| f(s)).count() * 2 > nonempty.len()
        };
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

pub fn looks_like_email(s: &str) -> bool {
    let s = s.trim();
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

pub fn looks_like_phone(s: &str) -> bool {
    let s = s.trim();
    let b = s.as_bytes();
    // 2006-02-14, 2006-02-14 22:04:36: dates, not numbers to call
    let date =
        b.len() >= 10 && b[4] == b'-' && b[7] == b'-' && b[..4].iter().all(u8::is_ascii_digit);
    if date {
        return false;
    }
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (7..=15).contains(&digits)
        && s.chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        && (s.starts_with('+') || s.starts_with('0') || s.contains([' ', '-', '(']))
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
}
