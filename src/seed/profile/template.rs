//! Text templates (`{first_name}.{last_name}@{domain}`) and date bounds (`created_at +
//! 30d`) compiled against the entities and columns defined before them.

use super::*;

pub(super) struct TemplateCtx<'a> {
    pub(super) raw: &'a RawFile,
    pub(super) entities: &'a [Entity],
    pub(super) earlier: &'a [Column],
    pub(super) ename: &'a str,
}

impl TemplateCtx<'_> {
    pub(super) fn column(&self, name: &str) -> Result<usize, String> {
        self.earlier
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| {
                format!(
                    "`{name}` is not a column defined above this one in {}",
                    self.ename
                )
            })
    }

    pub(super) fn parent(&self, via: &str, column: &str) -> Result<(usize, usize), String> {
        let vi = self.column(via)?;
        let Gen::Ref { entity, .. } = &self.earlier[vi].gen else {
            return Err(format!("`{via}.{column}`: {via} is not a ref column"));
        };
        let pe = &self.entities[*entity];
        let pc = pe
            .column_index(column)
            .ok_or_else(|| format!("`{via}.{column}`: {} has no column `{column}`", pe.name))?;
        Ok((vi, pc))
    }
}

pub(super) fn compile_template(s: &str, cx: &TemplateCtx) -> Result<Template, String> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Lit(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("template \"{s}\": `{{` without a closing `}}`"))?
            + open;
        let inner = &rest[open + 1..close];
        let mut pieces = inner.split('|');
        let head = pieces.next().unwrap_or("").trim();
        let mut mods = Vec::new();
        for m in pieces {
            mods.push(match m.trim() {
                "lower" => Modifier::Lower,
                "upper" => Modifier::Upper,
                "slug" => Modifier::Slug,
                "dotted" => Modifier::Dotted,
                "year" => Modifier::Year,
                other => return Err(format!("template \"{s}\": unknown modifier `{other}` (lower, upper, slug, dotted, year)")),
            });
        }
        let var = if head == "n" || head.starts_with("n:") {
            let width = match head.strip_prefix("n:") {
                Some(w) => w
                    .trim_start_matches('0')
                    .parse::<usize>()
                    .ok()
                    .filter(|_| w.starts_with('0'))
                    .ok_or_else(|| {
                        format!("template \"{s}\": `{{{head}}}`: write the width as n:05")
                    })?,
                None => 0,
            };
            Var::RowNumber { width }
        } else if head == "id" {
            Var::Id
        } else if let Some(name) = head.strip_prefix("list:") {
            if !cx.raw.lists.contains_key(name) {
                return Err(format!(
                    "template \"{s}\": there is no list `{name}` under [lists]"
                ));
            }
            Var::List(name.to_string())
        } else if let Some(kind) = head.strip_prefix("fake:") {
            Var::Fake(match kind {
                "first_name" => FakeKind::FirstName,
                "last_name" => FakeKind::LastName,
                "city" => FakeKind::City,
                "street" => FakeKind::Street,
                "company" => FakeKind::Company,
                "postal_code" => FakeKind::PostalCode,
                other => {
                    return Err(format!(
                        "template \"{s}\": unknown fake `{other}` (first_name, last_name, city, street, company, postal_code)"
                    ))
                }
            })
        } else if let Some(n) = head.strip_prefix("digits:") {
            Var::Digits(
                n.parse()
                    .ok()
                    .filter(|n| (1..=30).contains(n))
                    .ok_or_else(|| format!("template \"{s}\": digits:N takes N from 1 to 30"))?,
            )
        } else if let Some((via, col)) = head.split_once('.') {
            let (via, column) = cx.parent(via, col)?;
            Var::Parent { via, column }
        } else {
            Var::Column(
                cx.column(head)
                    .map_err(|e| format!("template \"{s}\": {e}"))?,
            )
        };
        parts.push(Part::Var(var, mods));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.to_string()));
    }
    Ok(Template { parts })
}

pub(super) fn compile_bound(s: &str, cx: &TemplateCtx) -> Result<Bound, String> {
    let mut alternatives = Vec::new();
    for alt in s.split('|') {
        let alt = alt.trim();
        if alt.is_empty() {
            return Err(format!(
                "`{s}`: an empty bound; a bound is `anchor` or `@column` (or `@ref.column`), \
                 with an optional offset"
            ));
        }
        // the offset's sign, after the first character (which may be any character)
        let split = alt
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c == '+' || c == '-')
            .map(|(p, _)| p);
        let (base, offset) = match split {
            Some(p) => (
                &alt[..p],
                parse_offset(&alt[p..])
                    .ok_or_else(|| format!("`{alt}`: offsets look like +1d, -2y, +12h, -30m"))?,
            ),
            None => (alt, 0),
        };
        let base = if base == "anchor" {
            BoundBase::Anchor
        } else if let Some(col) = base.strip_prefix('@') {
            match col.split_once('.') {
                Some((via, c)) => {
                    let (via, column) = cx.parent(via, c)?;
                    BoundBase::Parent { via, column }
                }
                None => BoundBase::Column(cx.column(col)?),
            }
        } else {
            return Err(format!("`{alt}`: a bound is `anchor` or `@column` (or `@ref.column`), with an optional offset"));
        };
        alternatives.push((base, offset));
    }
    Ok(Bound { alternatives })
}

/// `+1d`, `-2y`, `+12h`, `-30m` in seconds; a year is 365 days.
pub(super) fn parse_offset(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1i64, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let unit = rest.chars().last()?;
    let n: i64 = rest[..rest.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit {
        'y' => 365 * 86_400,
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        _ => return None,
    };
    sign.checked_mul(n)?.checked_mul(secs)
}

/// `YYYY-MM-DD` to days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s.trim(), &fmt).ok()?;
    Some(
        i64::from(d.to_julian_day())
            - i64::from(time::Date::from_ordinal_date(1970, 1).ok()?.to_julian_day()),
    )
}
