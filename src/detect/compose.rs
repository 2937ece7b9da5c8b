//! Turns activity rows and their graded facts into findings: one row, or a group of rows of
//! one principal (a new principal's first activity, a burst of refused calls).

use crate::alert::{finding_id, Finding, FindingKind, PrincipalRef, Severity};
use crate::cloudtrail::{AccountId, IdentityType, Principal, Timestamp};
use crate::source::Activity;
use crate::window::Window;

use super::severity::{Facts, Grader};

/// Where and when a finding was produced.
pub struct Origin<'a> {
    pub account: &'a AccountId,
    pub window: Window,
    pub now: Timestamp,
}

/// The principal as a title names it: `IAMUser alice`, `AssumedRole ci-deploy`, `the root user`.
fn who(p: &Principal) -> String {
    match p.kind {
        IdentityType::Root => "the root user".to_string(),
        kind => format!("{kind} {}", p.display_name()),
    }
}

/// Fills the fields every finding shares from the (merged) rows behind it.
fn finding(
    origin: &Origin<'_>,
    id: String,
    kind: FindingKind,
    title: String,
    about: &Activity,
    merged: &Activity,
    severity: Severity,
) -> Finding {
    let p = &about.principal;
    Finding {
        id,
        kind,
        title,
        rule: None,
        account: origin.account.clone(),
        principal: PrincipalRef {
            arn: p.arn.clone(),
            kind: p.kind,
            key: p.key.clone(),
        },
        action: Some(about.action.short()),
        event_source: Some(about.action.source.clone()),
        event_name: Some(about.action.name.clone()),
        severity,
        first_seen: merged.first_time,
        last_seen: merged.last_time,
        count: merged.count,
        source_ips: merged.source_ips.to_vec(),
        user_agents: merged.user_agents.to_vec(),
        regions: merged.regions.to_vec(),
        error_codes: merged.error_codes.to_vec(),
        event_ids: merged.event_ids.values.iter().take(5).cloned().collect(),
        window_start: origin.window.start,
        window_end: origin.window.end,
        detected_at: origin.now,
    }
}

/// A finding about one row: a new action, a new refused or failed one.
pub fn row_finding(
    origin: &Origin<'_>,
    grader: &Grader,
    row: &Activity,
    kind: FindingKind,
    facts: &Facts,
) -> Finding {
    let p = &row.principal;
    let id = finding_id(&[
        kind.name(),
        origin.account.as_str(),
        &p.key,
        &row.action.key(),
        &row.first_time.to_string(),
    ]);
    let verb = match kind {
        FindingKind::NewDeniedAction => "was refused",
        FindingKind::NewFailedAction => "tried (and failed)",
        _ => "called",
    };
    let title = format!("{} {verb} {} for the first time", who(p), row.action);
    finding(origin, id, kind, title, row, row, grader.grade(facts))
}

/// A finding about several rows of one principal, graded by the most severe of them. `facts`
/// gives what holds for the group; its action is set here. `None` for no rows.
pub fn group_finding(
    origin: &Origin<'_>,
    grader: &Grader,
    kind: FindingKind,
    rows: &[&Activity],
    facts: Facts,
) -> Option<Finding> {
    let first = rows.first()?;
    let p = &first.principal;
    let worst = rows.iter().max_by_key(|r| {
        (
            grader.tactic_weight(&r.action),
            std::cmp::Reverse(r.first_time),
        )
    })?;
    let facts = Facts {
        kind: Some(kind),
        identity: Some(p.kind),
        action: Some(worst.action.clone()),
        ..facts
    };
    let mut merged = (*first).clone();
    for r in &rows[1..] {
        merged.merge((*r).clone());
    }
    let mut actions: Vec<String> = rows.iter().map(|r| r.action.short()).collect();
    actions.sort();
    actions.dedup();
    let shown: Vec<&str> = actions.iter().take(4).map(String::as_str).collect();
    let more = actions.len().saturating_sub(shown.len());
    let list = format!(
        "{}{}",
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
    let title = match kind {
        FindingKind::NewContext => {
            let what: Vec<String> = [
                ("network", &facts.new_network),
                ("client", &facts.new_client),
                ("region", &facts.new_region),
            ]
            .iter()
            .filter_map(|(name, v)| v.as_ref().map(|v| format!("a new {name} ({v})")))
            .collect();
            format!("{} acted with {}: {list}", who(p), what.join(", "))
        }
        FindingKind::DeniedBurst => format!(
            "{} was refused {} actions it never tried before: {list}",
            who(p),
            actions.len()
        ),
        _ => format!("new {} appeared: {list}", who(p)),
    };
    let id = finding_id(&[
        kind.name(),
        origin.account.as_str(),
        &p.key,
        &merged.first_time.to_string(),
    ]);
    Some(finding(
        origin,
        id,
        kind,
        title,
        worst,
        &merged,
        grader.grade(&facts),
    ))
}
