//! Rule conditions as one SQL boolean: the union of the enabled rules' `when`.

use super::literal::*;
use super::regex::*;
use super::table::*;
use super::RuleSqlError;
use crate::detect::rules::{Condition, FieldTest, Op, Rule, RuleSet};
use crate::detect::rules::{Group, Scalar};

/// Where a field test's path leads in the table.
pub(super) enum Target<'p> {
    /// A text or bool value: the SQL expression of it.
    Scalar(String, Shape),
    /// A struct or map: only `exists` can test it.
    Object(String),
    /// Keys inside a JSON-text column (none: the column itself).
    Json(&'static str, &'p [String]),
    /// Keys inside the elements of an array of structs (none: the array itself).
    Structs(&'static str, &'static [Field], &'p [String]),
}

pub(super) fn resolve(keys: &[String]) -> Result<Target<'_>, String> {
    let (first, rest) = keys.split_first().ok_or("an empty path")?;
    let top = column(first).ok_or_else(|| {
        format!(
            "the Athena table has no column for `{first}` (keys are case-sensitive; see \
             sql/fragments/cloudtrail_columns.sql)"
        )
    })?;
    let mut expr = top.column.to_string();
    let mut field = top;
    let mut rest = rest;
    loop {
        match field.shape {
            Json => return Ok(Target::Json(field.column, rest)),
            Structs(fields) => return Ok(Target::Structs(field.column, fields, rest)),
            Text | Bool if rest.is_empty() => return Ok(Target::Scalar(expr, field.shape)),
            Text | Bool => {
                return Err(format!(
                    "`{}` is a single value in CloudTrail, it has no field `{}`",
                    field.key, rest[0]
                ))
            }
            Map | Struct(_) if rest.is_empty() => return Ok(Target::Object(expr)),
            Map => {
                return Err(format!(
                    "`{}` is a map the table cannot test inside",
                    field.key
                ))
            }
            Struct(fields) => {
                let key = &rest[0];
                field = fields.iter().find(|f| f.key == key).ok_or_else(|| {
                    format!(
                        "the table's `{}` has no field `{key}` (it has {}; keys are \
                         case-sensitive)",
                        field.key,
                        fields.iter().map(|f| f.key).collect::<Vec<_>>().join(", ")
                    )
                })?;
                expr.push('.');
                expr.push_str(field.column);
                rest = &rest[1..];
            }
        }
    }
}

pub(super) fn not_text(what: &str) -> String {
    format!("{what}; the table holds this field as text, so the test could never hold")
}

pub(super) fn finite(n: &str) -> String {
    format!("({n} BETWEEN -1.7976931348623157E308 AND 1.7976931348623157E308)")
}

pub(super) fn comparison(op: &Op) -> Option<(&'static str, f64)> {
    match op {
        Op::Gt(n) => Some((">", *n)),
        Op::Gte(n) => Some((">=", *n)),
        Op::Lt(n) => Some(("<", *n)),
        Op::Lte(n) => Some(("<=", *n)),
        _ => None,
    }
}

/// Text tests on the SQL text `t` (already lowered for ignore_case): `None` for other ops.
pub(super) fn text_op(op: &Op, t: &str, icase: bool) -> Result<Option<String>, String> {
    Ok(Some(match op {
        Op::Wildcard(glob) => format!(
            "{t} LIKE {} ESCAPE '\\'",
            literal(&glob_to_like(glob.as_str()))?
        ),
        Op::Prefix(p) => {
            let mut pattern = String::new();
            like_escape(p, &mut pattern);
            pattern.push('%');
            format!("{t} LIKE {} ESCAPE '\\'", literal(&pattern)?)
        }
        Op::Regex(r) => format!(
            "regexp_like({t}, {})",
            literal(&regex_to_sql(r.as_str(), icase)?)?
        ),
        _ => return Ok(None),
    }))
}

/// A test on a text or bool value `x` (SQL NULL: absent). Never NULL itself.
pub(super) fn scalar_test(x: &str, shape: Shape, test: &FieldTest) -> Result<String, String> {
    let icase = test.ignore_case;
    let t = if icase {
        format!("lower({x})")
    } else {
        x.to_string()
    };
    let equals = |s: &Scalar| -> Result<String, String> {
        match (s, shape) {
            (Scalar::Str(s), Text) => Ok(format!("{t} = {}", literal(s)?)),
            (Scalar::Bool(b), Bool) => Ok(format!("lower({x}) = '{b}'")),
            (Scalar::Bool(_), _) => Err(not_text("compares with a bool")),
            (Scalar::Str(_), _) => Err(
                "compares a bool field with a string; CloudTrail writes it as true or false".into(),
            ),
            _ => Err(not_text("compares with a number")),
        }
    };
    let text_only = |what: &str| -> Result<(), String> {
        match shape {
            Text => Ok(()),
            _ => Err(format!(
                "`{what}` looks at strings and this field is a bool"
            )),
        }
    };
    let exact = match &test.op {
        Op::Equals(s) => equals(s)?,
        Op::OneOf(list) => {
            let parts: Result<Vec<String>, String> = list.iter().map(equals).collect();
            format!("({})", parts?.join(" OR "))
        }
        Op::Exists(true) => return Ok(format!("({x} IS NOT NULL)")),
        Op::Exists(false) => return Ok(format!("({x} IS NULL)")),
        Op::LengthEq(_) | Op::LengthGte(_) | Op::LengthLte(_) => {
            return Err("a length test on a field that is never an array".into())
        }
        op => {
            if let Some((cmp, n)) = comparison(op) {
                text_only("gt/gte/lt/lte")?;
                let v = format!("TRY_CAST({x} AS DOUBLE)");
                format!("{} AND {v} {cmp} {}", finite(&v), double(n)?)
            } else {
                text_only("wildcard/prefix/regex")?;
                text_op(op, &t, icase)?.ok_or("an operator this compiler does not know")?
            }
        }
    };
    Ok(format!("coalesce({exact}, FALSE)"))
}

/// The values `keys` reach inside the JSON-text column `col`, as the engine walks them
/// (`crate::detect::rules::field`): one ARRAY(JSON) per number of keys walked, from the column
/// itself (index 0) to the end of the path (index `keys.len()`). An array met on the way is
/// crossed element by element, one level deep; what sits in an array inside an array is lost
/// here, and [`nested_arrays`] says where that happened. Lambda bodies are parenthesised so
/// that DuckDB does not read `e -> e -> '$.k'` (sqlglot's json_extract) as one chain.
pub(super) fn reached(col: &str, keys: &[String]) -> Result<Vec<String>, String> {
    let mut values = vec![format!("ARRAY[json_extract({col}, '$')]")];
    for (i, key) in keys.iter().enumerate() {
        let path = json_path(std::slice::from_ref(key))?;
        let before = &values[i];
        values.push(format!(
            "flatten(transform({before}, v{i} -> (coalesce(transform(TRY_CAST(v{i} AS ARRAY(JSON)), \
             e{i} -> (json_extract(e{i}, {path}))), ARRAY[json_extract(v{i}, {path})]))))"
        ));
    }
    Ok(values)
}

/// Whether some value of `values` is an array holding an array: there the walk above (and the
/// leaf flattening) stops short of what the engine reaches.
pub(super) fn nested_arrays(values: &str) -> String {
    format!(
        "coalesce(cardinality(filter({values}, n -> (coalesce(cardinality(filter(\
         TRY_CAST(n AS ARRAY(JSON)), m -> (coalesce(json_format(m) LIKE '[%', FALSE)))) > 0, \
         FALSE)))) > 0, FALSE)"
    )
}

/// "Some element of `list` passes `test`" (`test` on the lambda variable `x`), never NULL.
pub(super) fn any_of(list: &str, test: &str) -> String {
    format!("coalesce(cardinality(filter({list}, x -> (coalesce({test}, FALSE)))) > 0, FALSE)")
}

/// A test on `keys` inside the JSON-text column `col`, with the engine's semantics: a path
/// that crosses arrays holds when the test holds for any element reached, and a value test
/// looks into an array at the end of the path element by element. Exact up to one array per
/// step (CloudTrail nests no deeper); where arrays nest in arrays the answer is SQL NULL, and
/// the engine decides.
pub(super) fn json_test(col: &str, keys: &[String], test: &FieldTest) -> Result<String, String> {
    let values = reached(col, keys)?;
    let leaves = &values[keys.len()];
    let is_array = |v: &str| format!("coalesce(json_format({v}) LIKE '[%', FALSE)");
    let kind = "substr(json_format(x), 1, 1)";
    let is_string = format!("{kind} = '\"'");
    let is_number = format!("{kind} IN ('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9')");
    let scalar = "json_extract_scalar(x, '$')";
    let icase = test.ignore_case;
    let t = if icase {
        format!("lower({scalar})")
    } else {
        scalar.to_string()
    };
    let equals = |s: &Scalar| -> Result<String, String> {
        Ok(match s {
            Scalar::Str(s) => format!("({is_string} AND {t} = {})", literal(s)?),
            Scalar::Bool(b) => format!("(json_format(x) = '{b}')"),
            Scalar::Int(i) => {
                // Like serde_json: an integer equals the same integer, or a float of its value.
                let text = literal(&i.to_string())?;
                format!(
                    "({is_number} AND ({scalar} = {text} OR (regexp_like({scalar}, '[.eE]') AND \
                     TRY_CAST({scalar} AS DOUBLE) = {})))",
                    double(*i as f64)?
                )
            }
            Scalar::Float(f) => format!(
                "({is_number} AND TRY_CAST({scalar} AS DOUBLE) = {})",
                double(*f)?
            ),
        })
    };
    let length = |cmp: &str, n: u64| {
        any_of(
            leaves,
            &format!("({} AND json_array_length(x) {cmp} {n})", is_array("x")),
        )
    };
    // Value tests see the elements of a leaf array (the engine's `scalars`), one level deep.
    let flat = format!(
        "flatten(transform({leaves}, l -> (coalesce(TRY_CAST(l AS ARRAY(JSON)), ARRAY[l]))))"
    );
    // How many of `values` must hold no array in an array for the answer to be exact: value
    // tests look into the leaves too, exists and length tests take them whole.
    let mut checked = keys.len() + 1;
    let exact = match &test.op {
        Op::Equals(s) => any_of(&flat, &equals(s)?),
        Op::OneOf(list) => {
            let parts: Result<Vec<String>, String> = list.iter().map(equals).collect();
            any_of(&flat, &format!("({})", parts?.join(" OR ")))
        }
        Op::Exists(want) => {
            checked = keys.len();
            let exists = if keys.is_empty() {
                format!("({col} IS NOT NULL)")
            } else {
                any_of(leaves, "(coalesce(json_format(x), 'null') <> 'null')")
            };
            if *want {
                exists
            } else {
                format!("(NOT {exists})")
            }
        }
        Op::LengthEq(n) => {
            checked = keys.len();
            length("=", *n)
        }
        Op::LengthGte(n) => {
            checked = keys.len();
            length(">=", *n)
        }
        Op::LengthLte(n) => {
            checked = keys.len();
            length("<=", *n)
        }
        op => {
            if let Some((cmp, n)) = comparison(op) {
                let v = format!("TRY_CAST({scalar} AS DOUBLE)");
                any_of(
                    &flat,
                    &format!(
                        "(({is_string} OR {is_number}) AND {} AND {v} {cmp} {})",
                        finite(&v),
                        double(n)?
                    ),
                )
            } else {
                let unknown = "an operator this compiler does not know";
                let on_text = text_op(op, &t, icase)?.ok_or(unknown)?;
                // As in the engine, a pattern also reads an object as its compact JSON text
                // (Trino's JSON keeps keys sorted, as serde_json does).
                let object_text = if icase {
                    "lower(json_format(x))"
                } else {
                    "json_format(x)"
                };
                let on_object = text_op(op, object_text, icase)?.ok_or(unknown)?;
                any_of(
                    &flat,
                    &format!("(({is_string} AND {on_text}) OR ({kind} = '{{' AND {on_object}))"),
                )
            }
        }
    };
    let unknown: Vec<String> = values[..checked].iter().map(|v| nested_arrays(v)).collect();
    Ok(if unknown.is_empty() {
        exact
    } else {
        format!(
            "CASE WHEN {} THEN NULL ELSE {exact} END",
            unknown.join(" OR ")
        )
    })
}

/// A test on the elements of an array of structs (`resources`).
pub(super) fn structs_test(
    col: &str,
    fields: &'static [Field],
    keys: &[String],
    test: &FieldTest,
) -> Result<String, String> {
    let Some((key, rest)) = keys.split_first() else {
        return match &test.op {
            Op::Exists(true) => Ok(format!("({col} IS NOT NULL)")),
            Op::Exists(false) => Ok(format!("({col} IS NULL)")),
            Op::LengthEq(n) => Ok(format!("coalesce(cardinality({col}) = {n}, FALSE)")),
            Op::LengthGte(n) => Ok(format!("coalesce(cardinality({col}) >= {n}, FALSE)")),
            Op::LengthLte(n) => Ok(format!("coalesce(cardinality({col}) <= {n}, FALSE)")),
            _ => Err("a list of objects; only exists and length tests apply to it".into()),
        };
    };
    let field = fields.iter().find(|f| f.key == key).ok_or_else(|| {
        format!(
            "the table's elements have no field `{key}` (they have {}; keys are case-sensitive)",
            fields.iter().map(|f| f.key).collect::<Vec<_>>().join(", ")
        )
    })?;
    if !rest.is_empty() {
        return Err(format!(
            "`{key}` is a single value, it has no field `{}`",
            rest[0]
        ));
    }
    let element = format!("el.{}", field.column);
    let any = |t: &FieldTest| -> Result<String, String> {
        Ok(format!(
            "coalesce(cardinality(filter({col}, el -> {})) > 0, FALSE)",
            scalar_test(&element, field.shape, t)?
        ))
    };
    match &test.op {
        // "No element has it" is the negation of "some element has it".
        Op::Exists(false) => {
            let has = FieldTest {
                op: Op::Exists(true),
                ..test.clone()
            };
            Ok(format!("(NOT {})", any(&has)?))
        }
        _ => any(test),
    }
}

pub(super) fn field_test(test: &FieldTest) -> Result<String, String> {
    match resolve(test.path.keys())? {
        Target::Scalar(x, shape) => scalar_test(&x, shape, test),
        Target::Object(x) => match test.op {
            Op::Exists(true) => Ok(format!("({x} IS NOT NULL)")),
            Op::Exists(false) => Ok(format!("({x} IS NULL)")),
            _ => Err("an object in the table; only exists applies to it".into()),
        },
        Target::Json(col, keys) => json_test(col, keys, test),
        Target::Structs(col, fields, keys) => structs_test(col, fields, keys, test),
    }
}

pub(super) fn condition(c: &Condition, rule: &Rule) -> Result<String, RuleSqlError> {
    match c {
        Condition::Test(t) => field_test(t).map_err(|why| RuleSqlError::Test {
            rule: rule.id.clone(),
            origin: rule.origin.clone(),
            field: t.path.as_str().to_string(),
            why,
        }),
        Condition::Group(g) => group(g, rule),
    }
}

pub(super) fn group(g: &Group, rule: &Rule) -> Result<String, RuleSqlError> {
    let list = |items: &[Condition]| -> Result<Vec<String>, RuleSqlError> {
        items.iter().map(|c| condition(c, rule)).collect()
    };
    let mut parts = list(&g.all)?;
    if !g.any.is_empty() {
        parts.push(format!("({})", list(&g.any)?.join(" OR ")));
    }
    if !g.none.is_empty() {
        parts.push(format!("(NOT ({}))", list(&g.none)?.join(" OR ")));
    }
    Ok(if parts.is_empty() {
        "TRUE".into()
    } else {
        format!("({})", parts.join(" AND "))
    })
}

/// The union of the enabled rules' `when`, as an SQL condition in three-valued logic: false
/// where no rule can hold, true or NULL (cannot tell in SQL) otherwise. Keep rows where it is
/// not false: `coalesce(condition, TRUE)`.
pub fn compile_where(rules: &RuleSet) -> Result<String, RuleSqlError> {
    let mut enabled: Vec<&Rule> = rules.enabled().collect();
    enabled.sort_by(|a, b| a.id.cmp(&b.id));
    if enabled.is_empty() {
        return Err(RuleSqlError::NoRules);
    }
    let mut parts = Vec::new();
    for rule in enabled {
        let sql = condition(&rule.when, rule)?;
        parts.push(format!("-- {}\n  {sql}", rule.id));
    }
    Ok(format!("(\n  {}\n)", parts.join("\n  OR ")))
}
