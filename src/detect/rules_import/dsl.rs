//! Elasticsearch query DSL → trailhound conditions.
//!
//! Supported: `bool` (must, filter, must_not, should with minimum_should_match), `match_all`
//! and `constant_score` here; the single-field queries (`term`, `terms`, `wildcard`, `prefix`,
//! `match`, `match_phrase`, `range`, `exists`) in [`super::leaf`]. Anything else is a problem with its place in the query, never a silent
//! skip. Where Elasticsearch's meaning differs from the condition written (text analysis,
//! scoring-only clauses), a note says so.

use super::emit::{Cond, Group};
use super::leaf;
use super::query::Json;
use super::Out;

/// Deepest nesting of `bool` (and `constant_score`) queries converted. Real rules nest two or
/// three levels; the bound is checked before each recursion, so a hostile query fails here
/// rather than on the stack.
pub(super) const MAX_DEPTH: usize = 32;

/// Where a clause sits.
#[derive(Clone, Copy)]
pub(super) struct Ctx {
    pub depth: usize,
    /// Reached from the root only through must/filter: a clause here may simply be dropped
    /// (ANDed away) without changing the rest.
    pub conjunctive: bool,
    /// Inside a filter or must_not clause (Elasticsearch's filter context).
    pub filter: bool,
}

/// What a clause becomes.
pub(super) enum Leaf {
    Cond(Cond),
    /// Matches every event (`match_all`, or a bool whose clauses were all dropped).
    Everything,
    /// The run window on the event time: replaced by the hunt window.
    Dropped,
}

/// The whole `query` as one group (empty: every event matches).
pub(super) fn convert_root(q: &Json, pos: &str, out: &mut Out) -> Option<Group> {
    let ctx = Ctx {
        depth: 0,
        conjunctive: true,
        filter: false,
    };
    let group = match clause(q, pos, ctx, out)? {
        Leaf::Cond(Cond::Group(g)) => g,
        Leaf::Cond(c) => Group {
            all: vec![c],
            ..Group::default()
        },
        Leaf::Everything | Leaf::Dropped => Group::default(),
    }
    .simplify();
    if group.is_everything() {
        out.note("the query matches every event in the window");
    }
    Some(group)
}

fn clause(q: &Json, pos: &str, ctx: Ctx, out: &mut Out) -> Option<Leaf> {
    let Some(entries) = q.as_object() else {
        out.problem(pos, format!("expected a query object, got {}", q.kind()));
        return None;
    };
    let (kind, body) = match entries {
        [one] => (one.0.as_str(), &one.1),
        [] => {
            out.problem(
                pos,
                "empty query object: expected one query such as `term` or `bool`",
            );
            return None;
        }
        several => {
            let kinds: Vec<String> = several.iter().map(|(k, _)| format!("`{k}`")).collect();
            out.problem(
                pos,
                format!(
                    "one query object holds one query, found {}: wrap them in a `bool`",
                    kinds.join(", ")
                ),
            );
            return None;
        }
    };
    let pos = format!("{pos}.{kind}");
    let nested = || Ctx {
        depth: ctx.depth + 1,
        ..ctx
    };
    match kind {
        "bool" | "constant_score" if ctx.depth + 1 > MAX_DEPTH => {
            out.problem(&pos, format!("queries nest deeper than {MAX_DEPTH} levels"));
            None
        }
        "bool" => bool_query(body, &pos, nested(), out),
        "constant_score" => constant_score(body, &pos, nested(), out),
        "term" => leaf::term(body, &pos, out).map(Leaf::Cond),
        "terms" => leaf::terms(body, &pos, out).map(Leaf::Cond),
        "wildcard" | "prefix" => leaf::pattern(kind, body, &pos, out).map(Leaf::Cond),
        "match" | "match_phrase" => leaf::text_match(kind, body, &pos, out).map(Leaf::Cond),
        "range" => leaf::range(body, &pos, ctx, out),
        "exists" => leaf::exists(body, &pos, out).map(Leaf::Cond),
        "match_all" => {
            note_ignored(body.as_object().unwrap_or(&[]), &pos, out);
            Some(Leaf::Everything)
        }
        other => {
            let why = match other {
                "match_none" => "it matches no event, so the rule could never fire",
                "query_string" | "simple_query_string" => {
                    "Lucene query syntax is not translated: rewrite it as term, wildcard and bool clauses"
                }
                "regexp" => {
                    "Lucene regular expressions differ from trailhound's `regex` (implicit anchoring, `&`, `~`, `<>` operators): write the condition by hand"
                }
                "fuzzy" => "edit-distance matching has no trailhound equivalent",
                "script" | "script_score" | "function_score" => {
                    "it runs code inside Elasticsearch"
                }
                "nested" | "has_child" | "has_parent" => {
                    "joins between documents have no meaning for single CloudTrail records"
                }
                "multi_match" | "match_phrase_prefix" | "match_bool_prefix" | "combined_fields" => {
                    "it depends on Elasticsearch's text analysis across fields"
                }
                _ => "this query type is not supported",
            };
            out.problem(&pos, format!("`{other}` cannot be converted: {why}"));
            None
        }
    }
}

/// The clauses under one bool key: an array, or a single query object.
fn clause_list<'a>(v: &'a Json, pos: &str) -> Vec<(&'a Json, String)> {
    match v {
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, q)| (q, format!("{pos}[{i}]")))
            .collect(),
        single => vec![(single, pos.to_string())],
    }
}

fn bool_query(body: &Json, pos: &str, ctx: Ctx, out: &mut Out) -> Option<Leaf> {
    let Some(entries) = body.as_object() else {
        out.problem(pos, format!("expected an object, got {}", body.kind()));
        return None;
    };
    let mut ok = out.no_duplicates(entries, pos);
    let (mut required, mut must_not, mut should) = (Vec::new(), Vec::new(), Vec::new());
    let mut msm = None;
    for (key, v) in entries {
        let at = format!("{pos}.{key}");
        match key.as_str() {
            "must" => required.extend(clause_list(v, &at).into_iter().map(|c| (c, false))),
            "filter" => required.extend(clause_list(v, &at).into_iter().map(|c| (c, true))),
            "must_not" => must_not.extend(clause_list(v, &at)),
            "should" => should.extend(clause_list(v, &at)),
            "minimum_should_match" => msm = Some((v, at)),
            "boost" | "_name" | "adjust_pure_negative" => {
                out.note(format!("`{at}` ignored: it affects scoring or labels only"))
            }
            other => {
                out.problem(&at, format!("unknown bool option `{other}`"));
                ok = false;
            }
        }
    }
    let mut group = Group::default();
    for ((q, at), is_filter) in &required {
        let inner = Ctx {
            filter: ctx.filter || *is_filter,
            ..ctx
        };
        match clause(q, at, inner, out) {
            Some(Leaf::Cond(c)) => group.all.push(c),
            Some(Leaf::Everything | Leaf::Dropped) => {}
            None => ok = false,
        }
    }
    let negated = Ctx {
        conjunctive: false,
        filter: true,
        ..ctx
    };
    for (q, at) in &must_not {
        match clause(q, at, negated, out) {
            Some(Leaf::Cond(c)) => group.none.push(c),
            Some(_) => {
                out.problem(
                    at,
                    "this must_not clause matches every event, so the query matches none",
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    let k = should.len();
    let needed = match &msm {
        // A bool with no clauses at all is match_all, whatever its minimum_should_match.
        _ if k == 0 && required.is_empty() && must_not.is_empty() => 0,
        Some((v, at)) => match minimum_should_match(v, k) {
            Ok(n) => n,
            Err(why) => {
                out.problem(at, why);
                return None;
            }
        },
        None if required.is_empty() && k > 0 => 1,
        None => 0,
    };
    let should_pos = format!("{pos}.should");
    if k > 0 && needed == 0 {
        let mut note = format!(
            "`{should_pos}`: {k} clause(s) dropped: next to must/filter and without minimum_should_match they only raise the score in Elasticsearch, they do not select events"
        );
        if ctx.filter && msm.is_none() {
            note.push_str(" (Elasticsearch 6.x and older required one of them inside a filter context, as here: if the rule ran on 6.x, add them as `any`)");
        }
        out.note(note);
    } else if needed > k {
        out.problem(&should_pos, format!("minimum_should_match asks for {needed} of {k} should clauses: the query matches no event"));
        return None;
    } else if k > 0 && needed < k && needed > 1 {
        out.problem(&should_pos, format!("minimum_should_match {needed} of {k} should clauses: \"at least {needed} of {k}\" has no trailhound form; rewrite it as `any` of `all` groups"));
        return None;
    } else if k > 0 {
        let inner = Ctx {
            conjunctive: false,
            ..ctx
        };
        let mut any = Vec::new();
        let mut always = false;
        for (q, at) in &should {
            match clause(q, at, inner, out) {
                Some(Leaf::Cond(c)) => any.push(c),
                Some(_) => always = true,
                None => ok = false,
            }
        }
        if needed == k && k > 1 {
            group.all.extend(any);
        } else if always {
            out.note(format!("`{should_pos}`: one clause matches every event, so the should list always holds; dropped"));
        } else {
            group.any = any;
        }
    }
    if !ok {
        return None;
    }
    Some(if group.is_everything() {
        Leaf::Everything
    } else {
        Leaf::Cond(Cond::Group(group))
    })
}

/// Elasticsearch's minimum_should_match: an integer, a negative integer (all but n), a
/// percentage or a negative percentage (rounded down). Conditional forms (`3<90%`) are refused.
fn minimum_should_match(v: &Json, k: usize) -> Result<usize, String> {
    let text = match v {
        Json::Number(n) => n.to_string(),
        Json::String(s) => s.trim().to_string(),
        other => {
            return Err(format!(
                "expected a number or a percentage, got {}",
                other.kind()
            ))
        }
    };
    let bad = || {
        format!(
            "minimum_should_match `{text}` is not a count or a percentage that can be converted"
        )
    };
    if text.contains('<') || text.contains(' ') {
        return Err(bad());
    }
    let (digits, percent) = match text.strip_suffix('%') {
        Some(d) => (d, true),
        None => (text.as_str(), false),
    };
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let k_i = i64::try_from(k).map_err(|_| bad())?;
    let magnitude = if percent {
        k_i.saturating_mul(n.abs()) / 100
    } else {
        n.abs()
    };
    let needed = if n < 0 { k_i - magnitude } else { magnitude };
    Ok(usize::try_from(needed.max(0)).unwrap_or(0))
}

fn constant_score(body: &Json, pos: &str, ctx: Ctx, out: &mut Out) -> Option<Leaf> {
    let Some(entries) = body.as_object() else {
        out.problem(pos, format!("expected an object, got {}", body.kind()));
        return None;
    };
    let mut filter = None;
    for (key, v) in entries {
        match key.as_str() {
            "filter" => filter = Some(v),
            "boost" | "_name" => {}
            other => out.problem(
                format!("{pos}.{other}"),
                format!("unknown constant_score option `{other}`"),
            ),
        }
    }
    let Some(filter) = filter else {
        out.problem(pos, "constant_score without a `filter`");
        return None;
    };
    let inner = Ctx {
        filter: true,
        ..ctx
    };
    clause(filter, &format!("{pos}.filter"), inner, out)
}

fn note_ignored(entries: &[(String, Json)], pos: &str, out: &mut Out) {
    if !entries.is_empty() {
        out.note(format!(
            "`{pos}`: options ignored: they affect scoring only"
        ));
    }
}
