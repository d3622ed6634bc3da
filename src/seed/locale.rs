//! Locale data for the `{fake:…}` template values. English comes from the `fake` crate
//! (pinned with `=`, since its word lists decide the output); Romanian lists live here,
//! with the diacritics (ș ț ă î â) that real Romanian data carries.

use fake::faker::address::en::{CityName, StreetSuffix, ZipCode};
use fake::faker::company::en::CompanyName;
use fake::faker::name::en::{FirstName, LastName};
use fake::{Fake, Faker};
use rand::RngExt;

use super::profile::{FakeKind, Locale};

const RO_FIRST: &[&str] = &[
    "Andrei",
    "Ștefan",
    "Mihai",
    "Ioana",
    "Ana-Maria",
    "Cătălina",
    "Răzvan",
    "Bogdan",
    "Elena",
    "Irina",
    "Tudor",
    "Ionuț",
    "Alexandra",
    "Cristina",
    "Gheorghe",
    "Florin",
    "Diana",
    "Roxana",
    "Oana",
    "Mădălina",
    "Sorin",
    "Vlad",
    "Dănuț",
    "Lucian",
    "Ilinca",
    "Tănase",
    "Ștefania",
    "Cosmin",
    "Iulia",
    "Radu",
    "Maria",
    "Teodora",
    "Bianca",
    "Matei",
    "Sânziana",
    "Aurelian",
];

const RO_LAST: &[&str] = &[
    "Popescu",
    "Ionescu",
    "Popa",
    "Dumitrescu",
    "Stoica",
    "Stan",
    "Gheorghiu",
    "Rusu",
    "Munteanu",
    "Matei",
    "Constantinescu",
    "Mureșan",
    "Țurcanu",
    "Răducanu",
    "Șerban",
    "Neagu",
    "Bălan",
    "Moldovan",
    "Lazăr",
    "Ciobanu",
    "Dinu",
    "Toma",
    "Știrbu",
    "Vlădescu",
    "Năstase",
    "Păun",
    "Tănăsescu",
    "Crăciun",
    "Ștefănescu",
    "Bârsan",
    "Oprea",
    "Zamfir",
];

const RO_CITY: &[&str] = &[
    "București",
    "Cluj-Napoca",
    "Timișoara",
    "Iași",
    "Constanța",
    "Brașov",
    "Craiova",
    "Galați",
    "Ploiești",
    "Oradea",
    "Sibiu",
    "Bacău",
    "Târgu Mureș",
    "Pitești",
    "Arad",
    "Suceava",
    "Botoșani",
    "Râmnicu Vâlcea",
];

const RO_STREET: &[&str] = &[
    "Strada Mihai Eminescu",
    "Bulevardul Unirii",
    "Calea Victoriei",
    "Strada Lipscani",
    "Strada Ștefan cel Mare",
    "Bulevardul Independenței",
    "Strada Avram Iancu",
    "Calea Dorobanților",
    "Strada Tudor Vladimirescu",
    "Aleea Trandafirilor",
    "Strada Mărășești",
    "Strada Câmpineanu",
    "Bulevardul Țării",
    "Strada Învățătorului",
];

const RO_COMPANY_WORD: &[&str] = &[
    "Construct",
    "Impex",
    "Logistic",
    "Consult",
    "Agro",
    "Tehnologii",
    "Distribuție",
    "Medical",
    "Imobiliare",
    "Energie",
    "Transport",
    "Soluții",
    "Grădina",
    "Pâine",
];

const RO_COMPANY_FORM: &[&str] = &["S.R.L.", "S.A.", "S.R.L.", "S.R.L.-D"];

/// The one list a value of `kind` in `locale` is drawn from, where it is one list (a
/// street, a company or an English city is put together from several).
pub fn list(kind: FakeKind, locale: Locale) -> Option<&'static [&'static str]> {
    use fake::locales::{Data as _, EN};
    match (locale, kind) {
        (Locale::Ro, FakeKind::FirstName) => Some(RO_FIRST),
        (Locale::Ro, FakeKind::LastName) => Some(RO_LAST),
        (Locale::Ro, FakeKind::City) => Some(RO_CITY),
        (Locale::En, FakeKind::FirstName) => Some(EN::NAME_FIRST_NAME),
        (Locale::En, FakeKind::LastName) => Some(EN::NAME_LAST_NAME),
        _ => None,
    }
}

fn pick<'a>(rng: &mut impl RngExt, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// One value of `kind` in `locale`, appended to `out`.
pub fn fake_into(out: &mut String, kind: FakeKind, locale: Locale, rng: &mut impl RngExt) {
    match locale {
        Locale::Ro => match kind {
            FakeKind::FirstName => out.push_str(pick(rng, RO_FIRST)),
            FakeKind::LastName => out.push_str(pick(rng, RO_LAST)),
            FakeKind::City => out.push_str(pick(rng, RO_CITY)),
            FakeKind::Street => {
                out.push_str(pick(rng, RO_STREET));
                out.push_str(" nr. ");
                out.push_str(&rng.random_range(1..200u32).to_string());
            }
            FakeKind::Company => {
                out.push_str(pick(rng, RO_LAST));
                out.push(' ');
                out.push_str(pick(rng, RO_COMPANY_WORD));
                out.push(' ');
                out.push_str(pick(rng, RO_COMPANY_FORM));
            }
            FakeKind::PostalCode => {
                out.push_str(&format!("{:06}", rng.random_range(10_000..999_999u32)));
            }
        },
        Locale::En => match kind {
            // fake's `&str` forms: the same draws as its `String` ones, without a copy
            FakeKind::FirstName => out.push_str(FirstName().fake_with_rng::<&str, _>(rng)),
            FakeKind::LastName => out.push_str(LastName().fake_with_rng::<&str, _>(rng)),
            FakeKind::City => out.push_str(&CityName().fake_with_rng::<String, _>(rng)),
            FakeKind::Street => {
                let n = rng.random_range(1..2000u32);
                out.push_str(itoa::Buffer::new().format(n));
                out.push(' ');
                // fake's StreetName ("{StreetName} {StreetSuffix}"), with the same draws in
                // the same order, pushed instead of two template replaces
                let name: &str = if Faker.fake_with_rng::<bool, _>(rng) {
                    FirstName().fake_with_rng(rng)
                } else {
                    LastName().fake_with_rng(rng)
                };
                out.push_str(name);
                out.push(' ');
                out.push_str(StreetSuffix().fake_with_rng::<&str, _>(rng));
            }
            FakeKind::Company => out.push_str(&CompanyName().fake_with_rng::<String, _>(rng)),
            FakeKind::PostalCode => out.push_str(&ZipCode().fake_with_rng::<String, _>(rng)),
        },
    }
}

/// ASCII slug of a value: Romanian and other Latin diacritics folded, lowercase,
/// non-alphanumerics collapsed to one `-` (or `.` when `sep` says so).
pub fn slug_into(out: &mut String, s: &str, sep: char) {
    let mut last_sep = true;
    for ch in s.chars() {
        let folded = match ch {
            'ș' | 'ş' | 'Ș' | 'Ş' => "s",
            'ț' | 'ţ' | 'Ț' | 'Ţ' => "t",
            'ă' | 'â' | 'Ă' | 'Â' | 'á' | 'à' | 'ä' | 'Á' | 'À' | 'Ä' => "a",
            'î' | 'Î' | 'í' | 'ï' | 'Í' => "i",
            'é' | 'è' | 'ë' | 'ê' | 'É' | 'È' => "e",
            'ó' | 'ö' | 'ô' | 'Ó' | 'Ö' => "o",
            'ú' | 'ü' | 'û' | 'Ú' | 'Ü' => "u",
            _ => "",
        };
        if !folded.is_empty() {
            out.push_str(folded);
            last_sep = false;
        } else if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
            last_sep = false;
        } else if !last_sep {
            out.push(sep);
            last_sep = true;
        }
    }
    if out.ends_with(sep) {
        out.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_fold_romanian_diacritics() {
        let mut s = String::new();
        slug_into(&mut s, "Ștefan Țurcanu & Asociații S.R.L.", '-');
        assert_eq!(s, "stefan-turcanu-asociatii-s-r-l");
    }
}
