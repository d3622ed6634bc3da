//! Compiling a profile: names resolved to indexes, every reference checked, each
//! column turned into the generator it runs; a message names the file, line and column.

use super::*;

// ---------------------------------------------------------------------------------------
// Compiling: names resolved to indexes, every reference checked

pub(super) struct Ctx<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a str,
    /// Where the file's keys are written, for messages.
    pub(super) spans: KeySpans<'a>,
}

impl Ctx<'_> {
    pub(super) fn err(&self, span: Range<usize>, message: impl Into<String>) -> ProfileError {
        let (line, col) = line_col(self.text, span.start);
        ProfileError::Invalid {
            file: self.file.to_string(),
            line,
            col,
            message: message.into(),
        }
    }

    /// The span of `key` inside the table that spans `table_span` (toml's own spans), or
    /// the table's.
    pub(super) fn key_span(&self, table_span: &Range<usize>, key: &str) -> Range<usize> {
        self.spans
            .key(table_span, key)
            .unwrap_or_else(|| table_span.clone())
    }
}

pub(super) fn compile(
    raw: RawFile,
    text: &str,
    file: &str,
    migrations: Vec<Migration>,
) -> Result<Profile, ProfileError> {
    let cx = Ctx {
        text,
        file,
        spans: KeySpans::parse(text),
    };
    let anchor = parse_date(raw.profile.anchor.get_ref()).ok_or_else(|| {
        cx.err(
            raw.profile.anchor.span(),
            "anchor must be a date written YYYY-MM-DD",
        )
    })?;
    let locale = match raw.profile.locale.get_ref().as_str() {
        "en" => Locale::En,
        "ro" => Locale::Ro,
        other => {
            return Err(cx.err(
                raw.profile.locale.span(),
                format!("unknown locale `{other}`; expected one of: en, ro"),
            ))
        }
    };
    if raw.entity.is_empty() {
        return Err(cx.err(0..0, "a profile needs at least one [[entity]]"));
    }
    let mut entities: Vec<Entity> = Vec::new();
    for re in &raw.entity {
        let ename = re.name.get_ref().clone();
        if entities.iter().any(|e| e.name == ename) {
            return Err(cx.err(
                re.name.span(),
                format!("entity `{ename}` is declared twice"),
            ));
        }
        if re.scale < 0.0 || !re.scale.is_finite() {
            return Err(cx.err(
                re.name.span(),
                format!("entity `{ename}`: scale must be 0 or more"),
            ));
        }
        let table_span = re.columns.span();
        let mut columns: Vec<Column> = Vec::new();
        for (cname, value) in re.columns.get_ref() {
            let span = cx.key_span(&table_span, cname);
            if *cname == re.id {
                return Err(cx.err(
                    span,
                    format!("{ename}.{cname} is the id column: dataforge derives it (UUIDv5 of the natural key)"),
                ));
            }
            let column =
                compile_column(&cx, &raw, &entities, &columns, &ename, cname, value, span)?;
            columns.push(column);
        }
        let key = match &re.key {
            Some(k) => Some(
                columns
                    .iter()
                    .position(|c| &c.name == k.get_ref())
                    .ok_or_else(|| {
                        cx.err(
                            k.span(),
                            format!("key `{}` is not a column of {ename}", k.get_ref()),
                        )
                    })?,
            ),
            None => None,
        };
        if (re.rows.len() as u64) > re.count {
            return Err(cx.err(
                re.name.span(),
                format!(
                    "entity `{ename}` lists {} rows but count is {}",
                    re.rows.len(),
                    re.count
                ),
            ));
        }
        let mut overrides = Vec::new();
        for row in &re.rows {
            let mut m = BTreeMap::new();
            let rspan = row.span();
            for (cname, value) in row.get_ref() {
                let span = cx.key_span(&rspan, cname);
                let Some(ci) = columns.iter().position(|c| &c.name == cname) else {
                    return Err(cx.err(
                        span,
                        format!("{ename}.{cname} is not a column declared under [entity.columns]"),
                    ));
                };
                let c = compile_column(
                    &cx,
                    &raw,
                    &entities,
                    &columns[..ci],
                    &ename,
                    cname,
                    value,
                    span,
                )?;
                m.insert(ci, c);
            }
            overrides.push(m);
        }
        let entity = Entity {
            name: ename.clone(),
            table: re.table.clone().unwrap_or_else(|| ename.clone()),
            id_column: re.id.clone(),
            key,
            count: re.count,
            scale: re.scale,
            columns,
            overrides,
        };
        // `{id}` needs the key computed first
        if let Some(k) = entity.key {
            for (ci, c) in entity.columns.iter().enumerate() {
                if ci <= k && gen_uses_id(&c.gen) {
                    return Err(cx.err(
                        cx.key_span(&table_span, &c.name),
                        format!("{ename}.{}: `{{id}}` is used before the key column `{}` is defined; move it below", c.name, entity.columns[k].name),
                    ));
                }
            }
        }
        entities.push(entity);
    }
    Ok(Profile {
        name: raw.profile.name.clone(),
        description: raw.profile.description.clone(),
        origin: file.to_string(),
        anchor,
        default_seed: raw.profile.seed,
        locale,
        lists: raw.lists,
        entities,
        migrations,
        source_text: text.to_string(),
    })
}

pub(super) fn gen_uses_id(g: &Gen) -> bool {
    let t_uses = |t: &Template| t.parts.iter().any(|p| matches!(p, Part::Var(Var::Id, _)));
    match g {
        Gen::Template(t) => t_uses(t),
        Gen::OneOf(ts) => ts.iter().any(t_uses),
        _ => false,
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn compile_column(
    cx: &Ctx,
    raw: &RawFile,
    entities: &[Entity],
    earlier: &[Column],
    ename: &str,
    cname: &str,
    value: &toml::Value,
    span: Range<usize>,
) -> Result<Column, ProfileError> {
    let at = |msg: String| cx.err(span.clone(), format!("{ename}.{cname}: {msg}"));
    let mut column = Column {
        name: cname.to_string(),
        gen: Gen::Null,
        nulls: None,
        when: None,
        length: None,
        max_length: None,
    };
    let table = match value {
        toml::Value::Table(t) => t,
        toml::Value::Array(_) => {
            return Err(at(
                "a list is not a value; use { one_of = [...] } or { mix = {...} }".into(),
            ))
        }
        literal => {
            column.gen = Gen::Const(literal_text(literal).map_err(at)?);
            return Ok(column);
        }
    };
    let find_col = |name: &str| -> Result<usize, ProfileError> {
        earlier.iter().position(|c| c.name == name).ok_or_else(|| {
            at(format!(
                "`{name}` is not a column defined above this one in {ename} (columns are made in the order written)"
            ))
        })
    };
    let tctx = TemplateCtx {
        raw,
        entities,
        earlier,
        ename,
    };
    let mut kinds = Vec::new();
    for (k, v) in table {
        match k.as_str() {
            "nulls" => {
                let rate = v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
                let rate = rate.filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| at("nulls must be a number from 0 to 1".into()))?;
                column.nulls = Some(rational(rate));
            }
            "when" => {
                let t = v.as_table().filter(|t| t.len() == 1).ok_or_else(|| {
                    at("when takes one column and its values, e.g. when = { status = [\"Closed\"] }".into())
                })?;
                let (wc, wv) = t.iter().next().expect("one entry");
                let idx = find_col(wc)?;
                column.when = Some((idx, string_list(wv).map_err(at)?));
            }
            "length" | "max_length" => {
                let n = v
                    .as_integer()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| at(format!("{k} must be a positive whole number")))? as usize;
                if k == "length" {
                    column.length = Some(n);
                } else {
                    column.max_length = Some(n);
                }
            }
            "null" | "value" | "template" | "one_of" | "mix" | "ref" | "date" | "timestamp" | "lorem"
            | "integer" => kinds.push(k.as_str()),
            other => {
                return Err(at(format!(
                    "unknown setting `{other}`; expected a generator (value, template, one_of, mix, ref, \
                     date, timestamp, lorem, integer, null) and options (nulls, when, length, max_length)"
                )))
            }
        }
    }
    let kind = match kinds.as_slice() {
        [k] => *k,
        [] => return Err(at("no generator given (value, template, one_of, mix, ref, date, timestamp, lorem, integer, null)".into())),
        many => return Err(at(format!("give one generator, not {}", many.join(" and ")))),
    };
    let v = &table[kind];
    column.gen = match kind {
        "null" => Gen::Null,
        "value" => Gen::Const(literal_text(v).map_err(at)?),
        "template" => Gen::Template(
            compile_template(
                v.as_str()
                    .ok_or_else(|| at("template must be a string".into()))?,
                &tctx,
            )
            .map_err(at)?,
        ),
        "one_of" => {
            let items = string_list(v).map_err(at)?;
            if items.is_empty() {
                return Err(at("one_of needs at least one template".into()));
            }
            Gen::OneOf(
                items
                    .iter()
                    .map(|s| compile_template(s, &tctx))
                    .collect::<Result<_, _>>()
                    .map_err(at)?,
            )
        }
        "mix" => {
            let t = v
                .as_table()
                .ok_or_else(|| at("mix takes a table of value = weight".into()))?;
            let mut items = Vec::new();
            for (val, w) in t {
                let w = w
                    .as_integer()
                    .filter(|w| *w > 0 && *w <= 1_000_000)
                    .ok_or_else(|| {
                        at(format!(
                            "mix weight for `{val}` must be a whole number from 1 to 1000000"
                        ))
                    })?;
                items.push((val.clone(), w as u32));
            }
            if items.is_empty() {
                return Err(at("mix needs at least one value".into()));
            }
            Gen::Mix(items)
        }
        "ref" => {
            let (target, filter, childless) = match v {
                toml::Value::String(s) => (s.clone(), None, 0),
                toml::Value::Table(t) => {
                    let target = t
                        .get("entity")
                        .and_then(|e| e.as_str())
                        .ok_or_else(|| at("ref = { entity = \"…\", where = {…}, childless = N }: entity is missing".into()))?
                        .to_string();
                    let childless = t
                        .get("childless")
                        .map(|c| {
                            c.as_integer()
                                .filter(|c| *c >= 0)
                                .ok_or_else(|| at("childless must be a whole number".into()))
                        })
                        .transpose()?
                        .unwrap_or(0) as u64;
                    let filter = t.get("where").map(|w| -> Result<(String, Vec<String>), ProfileError> {
                        let wt = w.as_table().filter(|t| t.len() == 1).ok_or_else(|| {
                            at("where takes one column and its values, e.g. where = { role = [\"Associate\"] }".into())
                        })?;
                        let (c, vals) = wt.iter().next().expect("one entry");
                        Ok((c.clone(), string_list(vals).map_err(&at)?))
                    }).transpose()?;
                    for k in t.keys() {
                        if !["entity", "where", "childless"].contains(&k.as_str()) {
                            return Err(at(format!(
                                "unknown ref setting `{k}` (entity, where, childless)"
                            )));
                        }
                    }
                    (target, filter, childless)
                }
                _ => {
                    return Err(at(
                        "ref takes an entity name or { entity, where, childless }".into(),
                    ))
                }
            };
            let entity = entities
                .iter()
                .position(|e| e.name == target)
                .ok_or_else(|| {
                    at(format!(
                        "ref to `{target}`, which is not an entity declared above this one"
                    ))
                })?;
            let filter = match filter {
                Some((c, vals)) => Some((
                    entities[entity]
                        .column_index(&c)
                        .ok_or_else(|| at(format!("{target} has no column `{c}`")))?,
                    vals,
                )),
                None => None,
            };
            Gen::Ref {
                entity,
                filter,
                childless,
            }
        }
        "date" | "timestamp" => {
            let t = v
                .as_table()
                .ok_or_else(|| at(format!("{kind} takes {{ from = \"…\", to = \"…\" }}")))?;
            let bound = |name: &str| -> Result<Bound, ProfileError> {
                let s = t.get(name).and_then(|b| b.as_str()).ok_or_else(|| {
                    at(format!(
                        "{kind}.{name} is missing (e.g. \"anchor-2y\", \"@opened_at+1d\")"
                    ))
                })?;
                compile_bound(s, &tctx).map_err(&at)
            };
            Gen::Time {
                from: bound("from")?,
                to: bound("to")?,
                kind: if kind == "date" {
                    TimeKind::Date
                } else {
                    TimeKind::Timestamp
                },
            }
        }
        "lorem" => {
            let t = v.as_table().ok_or_else(|| {
                at("lorem takes { words = [MIN, MAX] } (or sentences, paragraphs)".into())
            })?;
            let (unit_name, r) = t
                .iter()
                .next()
                .ok_or_else(|| at("lorem needs words, sentences or paragraphs".into()))?;
            let unit = match unit_name.as_str() {
                "words" => LoremUnit::Words,
                "sentences" => LoremUnit::Sentences,
                "paragraphs" => LoremUnit::Paragraphs,
                other => {
                    return Err(at(format!(
                        "unknown lorem unit `{other}` (words, sentences, paragraphs)"
                    )))
                }
            };
            let (lo, hi) = int_pair(r).map_err(at)?;
            if lo < 1 {
                return Err(at("lorem needs at least 1".into()));
            }
            Gen::Lorem {
                unit,
                range: lo as usize..hi as usize + 1,
            }
        }
        "integer" => {
            let (lo, hi) = int_pair(v).map_err(at)?;
            Gen::Integer { range: lo..hi + 1 }
        }
        _ => unreachable!("kinds are filtered above"),
    };
    Ok(column)
}

pub(super) fn literal_text(v: &toml::Value) -> Result<String, String> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        _ => return Err("expected a string, number, boolean or date".into()),
    })
}

pub(super) fn string_list(v: &toml::Value) -> Result<Vec<String>, String> {
    match v {
        toml::Value::Array(a) => a.iter().map(literal_text).collect(),
        other => Ok(vec![literal_text(other)?]),
    }
}

pub(super) fn int_pair(v: &toml::Value) -> Result<(i64, i64), String> {
    let a = v
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or("expected [MIN, MAX]")?;
    let lo = a[0]
        .as_integer()
        .ok_or("expected whole numbers [MIN, MAX]")?;
    let hi = a[1]
        .as_integer()
        .ok_or("expected whole numbers [MIN, MAX]")?;
    if hi < lo {
        return Err(format!("[{lo}, {hi}]: MAX is below MIN"));
    }
    Ok((lo, hi))
}

/// The closest fraction to `rate` with a small denominator, so `nulls = 0.3` means exactly
/// 3 NULLs in every 10 rows.
pub(super) fn rational(rate: f64) -> (u32, u32) {
    let mut best = (0u32, 1u32);
    let mut best_err = f64::MAX;
    for den in 1..=100u32 {
        let num = (rate * f64::from(den)).round() as u32;
        let err = (f64::from(num) / f64::from(den) - rate).abs();
        if err + 1e-12 < best_err {
            best = (num, den);
            best_err = err;
        }
    }
    best
}
