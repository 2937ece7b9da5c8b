//! The enabled rules' `when` conditions as Athena SQL: Athena filters, Rust aggregates.
//!
//! One query per account and window (`sql/rule_events.sql`, the same objects as the activity
//! query) returns the records that some enabled rule's `when` may hold for, each as a JSON
//! object shaped like the CloudTrail record. The hunt feeds them to the same
//! [`RuleEngine`](crate::detect::rules::RuleEngine) the direct scan feeds; the engine tests
//! `when` again on every record, so the SQL only has to keep every record the rules need.
//!
//! What compiles, and how:
//! - Paths into struct columns (`userIdentity.sessionContext.sessionIssuer.arn`) become struct
//!   access, by the table's own column names; a key must be spelled exactly as CloudTrail
//!   spells it (rules compare keys case-sensitively, the table does not).
//! - Paths into the columns the table keeps as JSON text (`requestParameters`,
//!   `responseElements`, `additionalEventData`, `serviceEventDetails`, `edgeDeviceDetails`)
//!   walk the parsed value key by key with `json_extract` and a `$["key"]` path, crossing an
//!   array element by element as the engine does (a path through `instancesSet.items` reaches
//!   every item's `minCount`); the test holds when it holds for any value reached,
//!   through `cardinality(filter(..., x -> ...)) > 0` (Trino's `any_match` would read better,
//!   but DuckDB, which runs the tests, has no such function). The JSON type of each value is
//!   checked, so the string `"10"` does not equal the number 10, as in the engine.
//! - `resources` (an array of structs) is tested element by element the same way.
//! - Arrays are crossed one level per step; an array inside an array (which CloudTrail does not
//!   write on the paths rules read) makes the test SQL NULL, "cannot tell here", instead of
//!   true or false. Conditions combine in SQL's three-valued logic and the query keeps every
//!   record whose condition is not false, so such records are returned and the engine decides:
//!   the filter is exact everywhere else, and never narrower than the rules.
//! - `regex` becomes `regexp_like` anchored with `\A(?:...)\z`, rewritten from the engine's
//!   syntax subset into one every engine reads alike (`.` as `[^\n]`, `\d` `\w` `\s` as
//!   ASCII classes, `^` `$` as `\A` `\z`, metacharacters escaped, controls as `\xHH`).
//! - `wildcard` and `prefix` become `LIKE ... ESCAPE '\'`; `ignore_case` compares `lower()`.
//! - `gt`/`gte`/`lt`/`lte` read numbers with `TRY_CAST(... AS DOUBLE)`, finite only.
//!
//! What does not compile is an error naming the rule, the field and why, never a silently
//! different filter: paths the table has no column for, keys that are not plain names (see
//! [`check_key`]), tests that can never hold on how the table types a field (a number
//! compared with a text column), and case-insensitive patterns with non-ASCII letters.
//!
//! Every literal goes through [`literal`] (quotes doubled, NUL refused); column names come only
//! from the static schema below, never from a rule.
//!
//! Where SQL and the engine can still differ, on values CloudTrail does not write: `?` in a
//! wildcard is one character in SQL and one byte in the engine (non-ASCII text); `TRY_CAST` may
//! read numbers Rust's parser refuses (surrounding spaces); `lower()` and Rust's lowercase may
//! fold rare Unicode letters differently; `readOnly` and `managementEvent` are rebuilt as
//! JSON bools, as CloudTrail writes them. The engine's second look catches any row SQL keeps
//! too many; none of these can make SQL drop a record the engine would match, except the
//! wildcard and case-folding ones on non-ASCII text.

use std::collections::BTreeSet;

use serde_json::Value;

use super::rows::ResultTable;
use super::sql::{Day, SqlSettings};
use crate::cloudtrail::{AccountId, Span, Timestamp};
use crate::detect::rules::{Condition, FieldPath, FieldTest, Key, Op, Rule, RuleKind, RuleSet};
use crate::detect::rules::{Group, Scalar};
use crate::window::Window;

/// Why the rules cannot run as Athena SQL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleSqlError {
    #[error(
        "rule `{rule}` ({origin}), field `{field}`: {why}; this rule cannot run on Athena \
         (disable it, or hunt with the folder or S3 source)"
    )]
    Test {
        rule: String,
        origin: String,
        field: String,
        why: String,
    },
    #[error(
        "rule `{rule}` ({origin}), key `{key}`: {why}; this rule cannot run on Athena \
         (disable it, or hunt with the folder or S3 source)"
    )]
    Key {
        rule: String,
        origin: String,
        key: String,
        why: String,
    },
    #[error("no rule is enabled, so there is no rule query to run")]
    NoRules,
    #[error("SQL template rule_events.sql: {0}")]
    Template(String),
}

/// A result row of the rule query that is not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule query result row {row}: {problem}")]
pub struct RuleRowError {
    pub row: usize,
    pub problem: String,
}

// --- The table, as CloudTrail names its fields -----------------------------------------------

/// How the table (sql/fragments/cloudtrail_columns.sql) holds a CloudTrail field.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// STRING holding a JSON string.
    Text,
    /// STRING holding a JSON bool (`readOnly`, `managementEvent`) as `true`/`false`.
    Bool,
    /// STRING holding a JSON object as its text.
    Json,
    Struct(&'static [Field]),
    /// ARRAY<STRUCT<...>> of text fields.
    Structs(&'static [Field]),
    /// MAP<STRING, STRING>: not rebuilt, not testable.
    Map,
}

#[derive(Debug)]
struct Field {
    /// The record's key, as CloudTrail spells it.
    key: &'static str,
    /// The column or struct field name in the table.
    column: &'static str,
    shape: Shape,
}

const fn f(key: &'static str, column: &'static str, shape: Shape) -> Field {
    Field { key, column, shape }
}

use Shape::{Bool, Json, Map, Struct, Structs, Text};

const SESSION_ISSUER: &[Field] = &[
    f("type", "type", Text),
    f("principalId", "principalid", Text),
    f("arn", "arn", Text),
    f("accountId", "accountid", Text),
    f("userName", "username", Text),
];

const SESSION_CONTEXT: &[Field] = &[
    f(
        "attributes",
        "attributes",
        Struct(&[
            f("mfaAuthenticated", "mfaauthenticated", Text),
            f("creationDate", "creationdate", Text),
        ]),
    ),
    f("sessionIssuer", "sessionissuer", Struct(SESSION_ISSUER)),
    f(
        "webIdFederationData",
        "webidfederationdata",
        Struct(&[
            f("federatedProvider", "federatedprovider", Text),
            f("attributes", "attributes", Map),
        ]),
    ),
    f("sourceIdentity", "sourceidentity", Text),
    f("ec2RoleDelivery", "ec2roledelivery", Text),
    f("ec2IssuedInVPC", "ec2issuedinvpc", Text),
    f("assumedRoot", "assumedroot", Text),
];

const USER_IDENTITY: &[Field] = &[
    f("type", "type", Text),
    f("principalId", "principalid", Text),
    f("arn", "arn", Text),
    f("accountId", "accountid", Text),
    f("invokedBy", "invokedby", Text),
    f("accessKeyId", "accesskeyid", Text),
    f("userName", "username", Text),
    f("identityProvider", "identityprovider", Text),
    f("credentialId", "credentialid", Text),
    f(
        "onBehalfOf",
        "onbehalfof",
        Struct(&[
            f("userId", "userid", Text),
            f("identityStoreArn", "identitystorearn", Text),
        ]),
    ),
    f(
        "inScopeOf",
        "inscopeof",
        Struct(&[
            f("sourceArn", "sourcearn", Text),
            f("sourceAccount", "sourceaccount", Text),
            f("issuerType", "issuertype", Text),
            f("credentialsIssuedTo", "credentialsissuedto", Text),
        ]),
    ),
    f("sessionContext", "sessioncontext", Struct(SESSION_CONTEXT)),
];

/// The table's columns, in its order.
const COLUMNS: &[Field] = &[
    f("eventVersion", "eventversion", Text),
    f("userIdentity", "useridentity", Struct(USER_IDENTITY)),
    f("eventTime", "eventtime", Text),
    f("eventSource", "eventsource", Text),
    f("eventName", "eventname", Text),
    f("awsRegion", "awsregion", Text),
    f("sourceIPAddress", "sourceipaddress", Text),
    f("userAgent", "useragent", Text),
    f("errorCode", "errorcode", Text),
    f("errorMessage", "errormessage", Text),
    f("requestParameters", "requestparameters", Json),
    f("responseElements", "responseelements", Json),
    f("additionalEventData", "additionaleventdata", Json),
    f("requestID", "requestid", Text),
    f("eventID", "eventid", Text),
    f("readOnly", "readonly", Bool),
    f(
        "resources",
        "resources",
        Structs(&[
            f("ARN", "arn", Text),
            f("accountId", "accountid", Text),
            f("type", "type", Text),
        ]),
    ),
    f("eventType", "eventtype", Text),
    f("apiVersion", "apiversion", Text),
    f("managementEvent", "managementevent", Bool),
    f("recipientAccountId", "recipientaccountid", Text),
    f("serviceEventDetails", "serviceeventdetails", Json),
    f("sharedEventID", "sharedeventid", Text),
    f("vpcEndpointId", "vpcendpointid", Text),
    f("vpcEndpointAccountId", "vpcendpointaccountid", Text),
    f("eventCategory", "eventcategory", Text),
    f(
        "addendum",
        "addendum",
        Struct(&[
            f("reason", "reason", Text),
            f("updatedFields", "updatedfields", Text),
            f("originalRequestID", "originalrequestid", Text),
            f("originalEventID", "originaleventid", Text),
        ]),
    ),
    f(
        "sessionCredentialFromConsole",
        "sessioncredentialfromconsole",
        Text,
    ),
    f("edgeDeviceDetails", "edgedevicedetails", Json),
    f(
        "tlsDetails",
        "tlsdetails",
        Struct(&[
            f("tlsVersion", "tlsversion", Text),
            f("cipherSuite", "ciphersuite", Text),
            f("clientProvidedHostHeader", "clientprovidedhostheader", Text),
        ]),
    ),
];

/// The top-level fields every returned record carries: what the engine reads for time,
/// de-duplication, principals and evidence.
const ALWAYS: &[&str] = &[
    "eventTime",
    "eventID",
    "eventName",
    "eventSource",
    "eventType",
    "userIdentity",
    "sourceIPAddress",
    "userAgent",
    "awsRegion",
    "errorCode",
    "recipientAccountId",
    "readOnly",
];

fn column(key: &str) -> Option<&'static Field> {
    COLUMNS.iter().find(|c| c.key == key)
}

// --- Literals and keys -----------------------------------------------------------------------

/// `text` as one SQL string literal: quotes doubled; NUL refused (Athena cannot carry it, and
/// a truncating layer would end the literal early).
pub fn literal(text: &str) -> Result<String, String> {
    if text.contains('\0') {
        return Err("holds a NUL character, which an SQL string cannot carry".into());
    }
    Ok(format!("'{}'", text.replace('\'', "''")))
}

/// Most characters of one key in a JSON path.
pub const MAX_KEY_CHARS: usize = 128;

/// Checks one key of a path into a JSON-text column: 1 to 128 of ASCII letters, digits and
/// `_ - . : @ /`. Quotes, backslashes, brackets and spaces are refused rather than escaped:
/// JSON-path escaping differs between Trino and the engines the tests use, and CloudTrail's
/// keys never need them.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_CHARS
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:@/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the key `{}` cannot be written into a JSON path: keys must be 1 to \
             {MAX_KEY_CHARS} of ASCII letters, digits and _ - . : @ /",
            key.chars().take(80).collect::<String>()
        ))
    }
}

/// `$["a"]["b"]` as a literal, every key checked.
fn json_path(keys: &[String]) -> Result<String, String> {
    let mut path = String::from("$");
    for key in keys {
        check_key(key)?;
        path.push_str("[\"");
        path.push_str(key);
        path.push_str("\"]");
    }
    literal(&path)
}

/// A number as a DOUBLE expression, through a literal so that no formatting reaches SQL bare.
fn double(n: f64) -> Result<String, String> {
    if !n.is_finite() {
        return Err(format!("{n} is not a finite number"));
    }
    Ok(format!("CAST({} AS DOUBLE)", literal(&n.to_string())?))
}

/// A LIKE pattern (escape character `\`) from literal text.
fn like_escape(text: &str, out: &mut String) {
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

fn glob_to_like(glob: &str) -> String {
    let mut out = String::new();
    for c in glob.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            c => like_escape(&c.to_string(), &mut out),
        }
    }
    out
}

// --- Regex -----------------------------------------------------------------------------------

const DIGIT: &str = "0-9";
const WORD: &str = "0-9A-Za-z_";
const SPACE: &str = "\\x09-\\x0D ";

fn hex(c: char) -> String {
    format!("\\x{:02X}", c as u32)
}

/// One literal character: metacharacters escaped, ASCII controls as `\xHH`.
fn regex_char(c: char, in_class: bool, out: &mut String) {
    let meta = "\\^$.|?*+()[]{}-";
    if c.is_ascii_control() {
        out.push_str(&hex(c));
    } else if meta.contains(c) || (in_class && c == '&') {
        out.push('\\');
        out.push(c);
    } else {
        out.push(c);
    }
}

/// What `\c` means in the engine's syntax, written for Trino/RE2: a class body or a char.
enum Escape {
    Class(&'static str, bool),
    Char(char),
}

fn escape(c: char) -> Result<Escape, String> {
    Ok(match c {
        'd' => Escape::Class(DIGIT, false),
        'w' => Escape::Class(WORD, false),
        's' => Escape::Class(SPACE, false),
        'D' => Escape::Class(DIGIT, true),
        'W' => Escape::Class(WORD, true),
        'S' => Escape::Class(SPACE, true),
        'n' => Escape::Char('\n'),
        'r' => Escape::Char('\r'),
        't' => Escape::Char('\t'),
        c if c.is_ascii_punctuation() || c == ' ' => Escape::Char(c),
        c => return Err(format!("unsupported escape `\\{c}`")),
    })
}

/// Rewrites a pattern the engine accepted (`crate::detect::rules::regex`) into one that Trino
/// (Joni, Java syntax) and RE2 read alike, anchored to the whole value.
pub fn regex_to_sql(pattern: &str, ignore_case: bool) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    if ignore_case {
        if chars.iter().any(|c| !c.is_ascii() && c.is_alphabetic()) {
            return Err(
                "an ignore_case pattern with non-ASCII letters: Athena's (?i) folds ASCII only"
                    .into(),
            );
        }
        out.push_str("(?i)");
    }
    out.push_str("\\A(?:");
    let mut i = 0;
    let end = |what: &str| format!("the pattern ends inside {what}");
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\\' => {
                let e = *chars.get(i).ok_or_else(|| end("an escape"))?;
                i += 1;
                match escape(e)? {
                    Escape::Class(body, negated) => {
                        out.push_str(if negated { "[^" } else { "[" });
                        out.push_str(body);
                        out.push(']');
                    }
                    Escape::Char(c) => regex_char(c, false, &mut out),
                }
            }
            '[' => i = regex_class(&chars, i, &mut out)?,
            '.' => out.push_str("[^\\x0A]"),
            '^' => out.push_str("\\A"),
            '$' => out.push_str("\\z"),
            '(' => {
                if chars.get(i) == Some(&'?') && chars.get(i + 1) == Some(&':') {
                    i += 2;
                }
                out.push_str("(?:");
            }
            ')' | '|' | '*' | '+' | '?' => out.push(c),
            '{' => {
                // A count `{m}`, `{m,}`, `{m,n}`: digits and a comma only, as the engine checked.
                out.push('{');
                loop {
                    let d = *chars.get(i).ok_or_else(|| end("a count"))?;
                    i += 1;
                    if !(d.is_ascii_digit() || d == ',' || d == '}') {
                        return Err(format!("`{d}` inside a count"));
                    }
                    out.push(d);
                    if d == '}' {
                        break;
                    }
                }
            }
            c => regex_char(c, false, &mut out),
        }
    }
    out.push_str(")\\z");
    Ok(out)
}

/// A class from after its `[`; returns the position after its `]`. Parsed as the engine parses
/// it (a `]` first is literal; `a-z` unless the `-` is last) and written item by item.
fn regex_class(chars: &[char], mut i: usize, out: &mut String) -> Result<usize, String> {
    let unclosed = || "a `[` is never closed".to_string();
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let c = *chars.get(i).ok_or_else(unclosed)?;
        i += 1;
        if c == ']' && !first {
            break;
        }
        first = false;
        let lo = if c == '\\' {
            let e = *chars.get(i).ok_or_else(unclosed)?;
            i += 1;
            match escape(e)? {
                Escape::Class(body, false) => {
                    out.push_str(body);
                    continue;
                }
                Escape::Class(..) => return Err(format!("`\\{e}` inside [ ]")),
                Escape::Char(c) => c,
            }
        } else {
            c
        };
        regex_char(lo, true, out);
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|n| *n != ']') {
            i += 1;
            let mut hi = *chars.get(i).ok_or_else(unclosed)?;
            i += 1;
            if hi == '\\' {
                let e = *chars.get(i).ok_or_else(unclosed)?;
                i += 1;
                match escape(e)? {
                    Escape::Char(c) => hi = c,
                    Escape::Class(..) => return Err("a class cannot end a range".into()),
                }
            }
            out.push('-');
            regex_char(hi, true, out);
        }
    }
    out.push(']');
    Ok(i)
}

// --- Conditions ------------------------------------------------------------------------------

/// Where a field test's path leads in the table.
enum Target<'p> {
    /// A text or bool value: the SQL expression of it.
    Scalar(String, Shape),
    /// A struct or map: only `exists` can test it.
    Object(String),
    /// Keys inside a JSON-text column (none: the column itself).
    Json(&'static str, &'p [String]),
    /// Keys inside the elements of an array of structs (none: the array itself).
    Structs(&'static str, &'static [Field], &'p [String]),
}

fn resolve(keys: &[String]) -> Result<Target<'_>, String> {
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

fn not_text(what: &str) -> String {
    format!("{what}; the table holds this field as text, so the test could never hold")
}

fn finite(n: &str) -> String {
    format!("({n} BETWEEN -1.7976931348623157E308 AND 1.7976931348623157E308)")
}

fn comparison(op: &Op) -> Option<(&'static str, f64)> {
    match op {
        Op::Gt(n) => Some((">", *n)),
        Op::Gte(n) => Some((">=", *n)),
        Op::Lt(n) => Some(("<", *n)),
        Op::Lte(n) => Some(("<=", *n)),
        _ => None,
    }
}

/// Text tests on the SQL text `t` (already lowered for ignore_case): `None` for other ops.
fn text_op(op: &Op, t: &str, icase: bool) -> Result<Option<String>, String> {
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
fn scalar_test(x: &str, shape: Shape, test: &FieldTest) -> Result<String, String> {
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
fn reached(col: &str, keys: &[String]) -> Result<Vec<String>, String> {
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
fn nested_arrays(values: &str) -> String {
    format!(
        "coalesce(cardinality(filter({values}, n -> (coalesce(cardinality(filter(\
         TRY_CAST(n AS ARRAY(JSON)), m -> (coalesce(json_format(m) LIKE '[%', FALSE)))) > 0, \
         FALSE)))) > 0, FALSE)"
    )
}

/// "Some element of `list` passes `test`" (`test` on the lambda variable `x`), never NULL.
fn any_of(list: &str, test: &str) -> String {
    format!("coalesce(cardinality(filter({list}, x -> (coalesce({test}, FALSE)))) > 0, FALSE)")
}

/// A test on `keys` inside the JSON-text column `col`, with the engine's semantics: a path
/// that crosses arrays holds when the test holds for any element reached, and a value test
/// looks into an array at the end of the path element by element. Exact up to one array per
/// step (CloudTrail nests no deeper); where arrays nest in arrays the answer is SQL NULL, and
/// the engine decides.
fn json_test(col: &str, keys: &[String], test: &FieldTest) -> Result<String, String> {
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
                let op =
                    text_op(op, &t, icase)?.ok_or("an operator this compiler does not know")?;
                any_of(&flat, &format!("({is_string} AND {op})"))
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
fn structs_test(
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

fn field_test(test: &FieldTest) -> Result<String, String> {
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

fn condition(c: &Condition, rule: &Rule) -> Result<String, RuleSqlError> {
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

fn group(g: &Group, rule: &Rule) -> Result<String, RuleSqlError> {
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

// --- The record ------------------------------------------------------------------------------

/// Every path a rule reads: its `when` paths, group keys, terms and counted field.
fn paths_of(rule: &Rule) -> Vec<(&'static str, &FieldPath)> {
    fn walk<'r>(c: &'r Condition, out: &mut Vec<(&'static str, &'r FieldPath)>) {
        match c {
            Condition::Test(t) => out.push(("when", &t.path)),
            Condition::Group(g) => g
                .all
                .iter()
                .chain(&g.any)
                .chain(&g.none)
                .for_each(|c| walk(c, out)),
        }
    }
    let mut out = Vec::new();
    walk(&rule.when, &mut out);
    let mut keys: Vec<(&'static str, &Key)> =
        rule.group_by.iter().map(|k| ("group_by", k)).collect();
    match &rule.kind {
        RuleKind::Cardinality { field, .. } => keys.push(("field", field)),
        RuleKind::NewTerms { terms, .. } => keys.extend(terms.iter().map(|k| ("terms", k))),
        RuleKind::Match { .. } | RuleKind::Threshold { .. } => {}
    }
    for (what, key) in keys {
        if let Key::Path(p) = key {
            out.push((what, p));
        }
    }
    out
}

/// The JSON of one field for `json_object`. Trino's `json_object` embeds the value of a
/// JSON-returning function as JSON and quotes any other text, and its own result is text; so
/// every nested object or array is handed over as `json_query(<JSON text>, 'lax $')`, which
/// also turns JSON text that does not parse into NULL instead of failing the query. (Trino's
/// SQL/JSON paths need the mode; sqlglot hands it to DuckDB unchanged, which reads it as no
/// path, so tests/athena_rules_sql.rs writes `'$'` there before running the text on DuckDB.)
fn rebuild(expr: &str, shape: Shape, lambda_depth: usize) -> Result<Option<String>, String> {
    Ok(Some(match shape {
        Text => expr.to_string(),
        Bool => format!("TRY_CAST({expr} AS BOOLEAN)"),
        Json => format!("json_query({expr}, 'lax $')"),
        Map => return Ok(None),
        Struct(fields) => format!(
            "json_query(CASE WHEN {expr} IS NULL THEN NULL ELSE {} END, 'lax $')",
            object(expr, fields, lambda_depth)?
        ),
        Structs(fields) => {
            let el = format!("el{lambda_depth}");
            format!(
                "json_query(CASE WHEN {expr} IS NULL THEN NULL WHEN cardinality({expr}) = 0 \
                 THEN '[]' ELSE '[' || array_join(transform({expr}, {el} -> {}), ',') || ']' \
                 END, 'lax $')",
                object(&el, fields, lambda_depth + 1)?
            )
        }
    }))
}

fn object(expr: &str, fields: &[Field], lambda_depth: usize) -> Result<String, String> {
    let mut members = Vec::new();
    for field in fields {
        let sub = format!("{expr}.{}", field.column);
        if let Some(value) = rebuild(&sub, field.shape, lambda_depth)? {
            members.push(format!("{}: {value}", literal(field.key)?));
        }
    }
    Ok(format!("json_object({})", members.join(", ")))
}

/// The JSON object each returned row carries: the fields of [`ALWAYS`] and every top-level
/// field a rule reads, whole (a rule reading `requestParameters.x` gets all of
/// `requestParameters`), in the table's column order.
pub fn compile_record(rules: &RuleSet) -> Result<String, RuleSqlError> {
    let mut wanted: BTreeSet<&str> = ALWAYS.iter().copied().collect();
    for rule in rules.enabled() {
        for (what, path) in paths_of(rule) {
            let checked = match resolve(path.keys()) {
                Ok(Target::Json(_, keys)) => keys.iter().try_for_each(|k| check_key(k)),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(why) = checked {
                return Err(if what == "when" {
                    RuleSqlError::Test {
                        rule: rule.id.clone(),
                        origin: rule.origin.clone(),
                        field: path.as_str().to_string(),
                        why,
                    }
                } else {
                    RuleSqlError::Key {
                        rule: rule.id.clone(),
                        origin: rule.origin.clone(),
                        key: format!("{what} {}", path.as_str()),
                        why,
                    }
                });
            }
            if let Some(first) = path.keys().first() {
                if let Some(c) = column(first) {
                    wanted.insert(c.key);
                }
            }
        }
    }
    let mut members = Vec::new();
    for field in COLUMNS.iter().filter(|c| wanted.contains(c.key)) {
        let value = rebuild(field.column, field.shape, 0).map_err(RuleSqlError::Template)?;
        if let Some(value) = value {
            let key = literal(field.key).map_err(RuleSqlError::Template)?;
            members.push(format!("{key}: {value}"));
        }
    }
    Ok(format!(
        "json_object(\n    {}\n  )",
        members.join(",\n    ")
    ))
}

// --- The query -------------------------------------------------------------------------------

const TEMPLATE: &str = include_str!("../../../sql/rule_events.sql");

/// The compiled rule query of one rule set, rendered per account and window.
#[derive(Clone, Debug)]
pub struct RuleQuery {
    condition: String,
    record: String,
}

impl RuleQuery {
    pub fn compile(rules: &RuleSet) -> Result<RuleQuery, RuleSqlError> {
        Ok(RuleQuery {
            condition: compile_where(rules)?,
            record: compile_record(rules)?,
        })
    }

    /// The query of `account` in `window`, over the table of `settings`.
    pub fn render(
        &self,
        settings: &SqlSettings,
        account: &AccountId,
        window: &Window,
    ) -> Result<String, RuleSqlError> {
        let quote = |t: &str| literal(t).map_err(RuleSqlError::Template);
        let days: Result<Vec<String>, RuleSqlError> = Day::covering(window)
            .iter()
            .map(|d| quote(&d.to_string()))
            .collect();
        let table = format!(
            "\"{}\".\"{}\"",
            settings.database().as_str(),
            settings.table().as_str()
        );
        let bindings: [(&str, String); 7] = [
            ("table", table),
            ("account", quote(account.as_str())?),
            ("days", days?.join(", ")),
            ("delivered_from", quote(&delivery_bound(window.start))?),
            ("delivered_until", quote(&delivery_bound(window.end))?),
            ("record", self.record.clone()),
            ("condition", self.condition.clone()),
        ];
        fill(TEMPLATE, &bindings)
    }
}

/// The full rule query of `rules` for `account` in `window`.
pub fn render(
    settings: &SqlSettings,
    rules: &RuleSet,
    account: &AccountId,
    window: &Window,
) -> Result<String, RuleSqlError> {
    RuleQuery::compile(rules)?.render(settings, account, window)
}

/// As sql.rs: object names carry whole minutes, so a bound is rounded up to the minute.
fn delivery_bound(t: Timestamp) -> String {
    let floor = t.floor_to(Span::minutes(1));
    let minute = if floor == t {
        t
    } else {
        floor.saturating_add(Span::minutes(1))
    };
    minute.compact()
}

/// Drops whole-line `--` comments (as the template renderer does) and fills `{{name}}` tags
/// with already-quoted values.
fn fill(template: &str, bindings: &[(&str, String)]) -> Result<String, RuleSqlError> {
    let mut text = String::new();
    for line in template.lines() {
        if !line.trim().starts_with("--") {
            text.push_str(line);
            text.push('\n');
        }
    }
    let mut out = String::with_capacity(text.len() * 4);
    let mut rest = text.as_str();
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| RuleSqlError::Template("a `{{` is never closed".into()))?;
        let name = after[..close].trim();
        let value = bindings
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| RuleSqlError::Template(format!("no value for `{{{{{name}}}}}`")))?;
        out.push_str(&value.1);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out.trim().to_string())
}

// --- Rows ------------------------------------------------------------------------------------

/// The record of one result row, as the engine reads records.
pub fn row_to_record(table: &ResultTable, row: usize) -> Result<Value, RuleRowError> {
    let error = |problem: String| RuleRowError { row, problem };
    let index = table
        .columns
        .iter()
        .position(|c| c == "record")
        .ok_or_else(|| error("the result has no `record` column".into()))?;
    let text = table
        .rows
        .get(row)
        .ok_or_else(|| error("no such row".into()))?
        .get(index)
        .and_then(Option::as_deref)
        .ok_or_else(|| error("`record` is NULL".into()))?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| error(format!("`record` is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(error("`record` is not a JSON object".into()));
    }
    Ok(value)
}

/// Every row's record as JSON text, for `ActivityBatch::rule_records`.
pub fn rule_records(table: &ResultTable) -> Result<Vec<String>, RuleRowError> {
    (0..table.rows.len())
        .map(|row| row_to_record(table, row).map(|v| v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(when: &str) -> RuleSet {
        RuleSet::parse(
            &format!(
                "[[rule]]\nid = \"r\"\ntitle = \"R\"\nseverity = \"low\"\nkind = \"match\"\n\
                 [rule.when]\n{when}\n"
            ),
            "test.toml",
        )
        .unwrap()
    }

    fn compile(when: &str) -> Result<String, RuleSqlError> {
        compile_where(&rules(when))
    }

    #[test]
    fn literals_double_quotes_and_refuse_nul() {
        assert_eq!(literal("it's").unwrap(), "'it''s'");
        assert_eq!(literal("a\\'b").unwrap(), "'a\\''b'");
        assert!(literal("a\0b").is_err());
    }

    #[test]
    fn json_keys_are_plain_names_only() {
        for good in ["instancesSet", "x-amz-acl", "a.b", "aws:SourceIp", "0"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in ["", "a\"b", "a'b", "a]b", "a b", "a\\b", "$..*", "ключ"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key(&"a".repeat(129)).is_err());
    }

    #[test]
    fn values_cannot_leave_their_literal() {
        let sql = compile(r#"all = [{ field = "eventName", equals = "x') OR TRUE --" }]"#).unwrap();
        assert!(sql.contains("'x'') OR TRUE --'"), "{sql}");
        let e = compile("all = [{ field = \"eventName\", equals = \"a\\u0000b\" }]").unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
    }

    #[test]
    fn paths_cannot_reach_sql_unchecked() {
        let e = compile(
            r#"all = [{ field = "requestParameters.\"a\\\"]') OR 1=1 --\"", exists = true }]"#,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("rule `r`") && text.contains("cannot be written"),
            "{text}"
        );
        let e =
            compile(r#"all = [{ field = "eventName; DROP TABLE x", exists = true }]"#).unwrap_err();
        assert!(e.to_string().contains("no column"), "{e}");
        let e = compile(r#"all = [{ field = "userIdentity.Type", equals = "Root" }]"#).unwrap_err();
        assert!(e.to_string().contains("no field `Type`"), "{e}");
    }

    #[test]
    fn tests_that_the_table_cannot_answer_name_rule_and_field() {
        let e = compile(r#"all = [{ field = "eventName", equals = 10 }]"#).unwrap_err();
        match e {
            RuleSqlError::Test {
                rule, field, why, ..
            } => {
                assert_eq!(rule, "r");
                assert_eq!(field, "eventName");
                assert!(why.contains("number"), "{why}");
            }
            other => panic!("{other}"),
        }
        assert!(compile(r#"all = [{ field = "readOnly", equals = "true" }]"#).is_err());
        assert!(compile(r#"all = [{ field = "eventName", length_gte = 2 }]"#).is_err());
        assert!(compile(r#"all = [{ field = "userIdentity", equals = "x" }]"#).is_err());
        assert!(compile(
            r#"all = [{ field = "userIdentity.sessionContext.webIdFederationData.attributes.x", exists = true }]"#
        )
        .is_err());
        assert!(
            compile(r#"all = [{ field = "errorCode", regex = "É.*", ignore_case = true }]"#)
                .is_err()
        );
    }

    #[test]
    fn regexes_are_anchored_and_rewritten_for_every_engine() {
        let r = |p: &str| regex_to_sql(p, false).unwrap();
        assert_eq!(r("a.b"), "\\A(?:a[^\\x0A]b)\\z");
        assert_eq!(r("\\d+x"), "\\A(?:[0-9]+x)\\z");
        assert_eq!(r("^a$"), "\\A(?:\\Aa\\z)\\z");
        assert_eq!(r("(a|b){2,3}"), "\\A(?:(?:a|b){2,3})\\z");
        assert_eq!(r("(?:a)"), "\\A(?:(?:a))\\z");
        assert_eq!(r("[]a-c\\d&]"), "\\A(?:[\\]a-c0-9\\&])\\z");
        assert_eq!(r("[a-]"), "\\A(?:[a\\-])\\z");
        assert_eq!(r("[^\\.]"), "\\A(?:[^\\.])\\z");
        assert_eq!(r("\\S"), "\\A(?:[^\\x09-\\x0D ])\\z");
        assert_eq!(r("a\\tb"), "\\A(?:a\\x09b)\\z");
        assert_eq!(regex_to_sql("ab", true).unwrap(), "(?i)\\A(?:ab)\\z");
    }

    #[test]
    fn the_shipped_pack_compiles() {
        let set = RuleSet::shipped().unwrap();
        let sql = compile_where(&set).unwrap();
        assert!(sql.contains("json_extract(responseelements, '$')"), "{sql}");
        assert!(sql.contains("'$[\"ConsoleLogin\"]'"), "{sql}");
        let record = compile_record(&set).unwrap();
        for key in [
            "'requestParameters'",
            "'responseElements'",
            "'additionalEventData'",
        ] {
            assert!(record.contains(key), "{key}");
        }
        let mut off = rules(r#"all = [{ field = "eventName", equals = "X" }]"#);
        off.disable(&["r".to_string()]);
        assert!(matches!(compile_where(&off), Err(RuleSqlError::NoRules)));
    }

    #[test]
    fn rows_become_records() {
        let table = ResultTable {
            columns: vec!["record".into()],
            rows: vec![
                vec![Some(
                    r#"{"eventName":"X","requestParameters":{"a":[1]}}"#.into(),
                )],
                vec![None],
            ],
        };
        let v = row_to_record(&table, 0).unwrap();
        assert_eq!(v["requestParameters"]["a"][0], 1);
        assert!(row_to_record(&table, 1).is_err());
        assert!(rule_records(&table).is_err());
    }
}
