//! First-seen detection: which rows of a window are behaviour the baseline does not hold, what
//! the baseline must learn from the window, and the findings that follow.
//!
//! The baseline holds, per principal, its successful actions (`success`), the actions it was
//! refused (`denied`, remembered only so one refusal is reported once) and its context
//! (`svc:` services, `net:` source networks, `ua:` client families, `rgn:` regions, under
//! `context`); per account, the actions any of its principals used (`peer`, see `rarity`). All
//! of them expire after the TTL unless seen again, and count the days they were used on.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::alert::{Finding, FindingKind};
use crate::baseline::{
    BaselineStore, Commit, PairKey, PairState, PairWrite, PrincipalState, StoreError,
};
use crate::cloudtrail::{AccountId, Action, IdentityType, Outcome, Principal, Span, Timestamp};
use crate::config::Config;
use crate::source::{Activity, ActivityBatch};

use super::compose::{group_finding, row_finding, Origin};
use super::context::{client_family, network};
use super::rarity::{role_peers, Basis, Judgement, Rarity, Tier, ACCOUNT_PEERS, ORGANIZATION};
use super::severity::{Facts, Grader, Workload};

/// Whether a window is hunted (findings) or only learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Hunt,
    Learn,
}

/// Counts of what detection decided, for the run summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetectStats {
    /// Distinct principals hunted.
    pub principals: u64,
    /// Distinct principals not hunted, by why.
    pub ignored: BTreeMap<String, u64>,
    /// Calls that failed for reasons other than a refusal (throttled, invalid, not found):
    /// neither learned nor alerted.
    pub failed_calls: u64,
    /// New behaviours of principals younger than `min_principal_age`, learned without a finding.
    pub young_suppressed: u64,
    /// Behaviours written to the baseline for the first time.
    pub pairs_learned: u64,
    /// Known behaviours whose expiry was pushed out.
    pub pairs_refreshed: u64,
}

impl DetectStats {
    pub fn merge(&mut self, o: DetectStats) {
        self.principals += o.principals;
        for (k, v) in o.ignored {
            *self.ignored.entry(k).or_default() += v;
        }
        self.failed_calls += o.failed_calls;
        self.young_suppressed += o.young_suppressed;
        self.pairs_learned += o.pairs_learned;
        self.pairs_refreshed += o.pairs_refreshed;
    }
}

/// What a window yields: findings to stage and baseline writes to commit.
pub struct Detection {
    pub findings: Vec<Finding>,
    pub commit: Commit,
    /// Writes to the organisation-wide peer pairs (under `rarity::ORGANIZATION`), committed
    /// before the account's commit.
    pub peer_commit: Commit,
    pub stats: DetectStats,
}

pub struct Detector<'c> {
    config: &'c Config,
    grader: Grader,
}

const SUCCESS: &str = "success";
const DENIED: &str = "denied";
const FAILED: &str = "failed";
const CONTEXT: &str = "context";
const PEER: &str = "peer";
/// The context key of calls made from the Lambda runtime.
const LAMBDA_RUNTIME: &str = "env:lambda";

/// The prefixes of the context keys that say where from and with what: network, client,
/// region. Two or more of them new at once make a new-context finding.
const NEWS: [&str; 3] = ["net:", "ua:", "rgn:"];

/// The baseline's outcome class of a row: throttled rows never reach the baseline.
fn outcome_class(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => SUCCESS,
        Outcome::Denied => DENIED,
        Outcome::Failed | Outcome::Throttled => FAILED,
    }
}

fn key(principal: &str, action: String, outcome: &str) -> PairKey {
    PairKey {
        principal: principal.to_string(),
        action,
        outcome: outcome.to_string(),
    }
}

/// When a (first, last, count) was seen in the window, for writing a pair.
#[derive(Clone, Copy)]
struct Seen {
    first: Timestamp,
    last: Timestamp,
    count: u64,
}

impl Seen {
    fn of(row: &Activity) -> Self {
        Seen {
            first: row.first_time,
            last: row.last_time,
            count: row.count,
        }
    }
    fn merge(&mut self, o: Seen) {
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        self.count += o.count;
    }
}

/// The write a pair needs after the window, if any: an insert for a new pair, or a refresh of
/// a known one last written at least `refresh` ago (which counts one more day of use).
fn pair_write(
    before: Option<&PairState>,
    key: PairKey,
    seen: Seen,
    ttl: Span,
    refresh: Span,
    stats: &mut DetectStats,
) -> Option<PairWrite> {
    let state = match before {
        None => {
            stats.pairs_learned += 1;
            PairState {
                first_seen: seen.first,
                last_seen: seen.last,
                count: seen.count,
                days: 1,
                expires: seen.last.saturating_add(ttl),
            }
        }
        Some(old) if old.last_seen.saturating_add(refresh) <= seen.last => {
            stats.pairs_refreshed += 1;
            PairState {
                first_seen: old.first_seen.min(seen.first),
                last_seen: seen.last,
                count: old.count + seen.count,
                days: old.days + 1,
                expires: seen.last.saturating_add(ttl),
            }
        }
        Some(_) => return None,
    };
    Some(PairWrite { key, state })
}

/// The context of one principal in the window.
#[derive(Default)]
struct PrincipalContext {
    /// `svc:`, `net:` and `ua:` keys with when they were seen (successful calls only).
    seen: BTreeMap<String, Seen>,
    /// Networks and clients of the principal's earliest calls in the window: its home when the
    /// baseline knows none.
    earliest: Option<Timestamp>,
    home: BTreeSet<String>,
}

impl<'c> Detector<'c> {
    pub fn new(config: &'c Config) -> Self {
        Detector {
            config,
            grader: Grader::new(config),
        }
    }

    pub fn grader(&self) -> &Grader {
        &self.grader
    }

    /// Why a row is not hunted, if it is not.
    fn ignored(&self, row: &Activity) -> Option<&'static str> {
        let ig = &self.config.ignore;
        let p = &row.principal;
        if ig.aws_services && p.kind == IdentityType::AWSService {
            return Some("AWS service");
        }
        if ig.service_linked_roles && p.service_linked {
            return Some("service-linked role");
        }
        let arn = p.arn.as_deref().unwrap_or("");
        if ig
            .principals
            .iter()
            .any(|g| g.matches(&p.key) || g.matches(arn))
        {
            return Some("ignored principal (config)");
        }
        let short = row.action.short();
        if ig.actions.iter().any(|g| g.matches(&short)) {
            return Some("ignored action (config)");
        }
        let agents = &row.user_agents.values;
        if !ig.user_agents.is_empty()
            && !agents.is_empty()
            && agents
                .iter()
                .all(|ua| ig.user_agents.iter().any(|g| g.matches(ua)))
        {
            return Some("ignored user agent (config)");
        }
        None
    }

    fn always_alert(&self, principal: &Principal, action: &Action) -> Option<String> {
        let aa = &self.config.always_alert;
        if aa.root && principal.kind == IdentityType::Root {
            return Some("activity of the account's root user".into());
        }
        let short = action.short();
        aa.actions
            .iter()
            .find(|g| g.matches(&short))
            .map(|g| format!("{short} is on the always-alert list ({})", g.as_str()))
    }

    fn context_keys(&self, row: &Activity) -> Vec<String> {
        let h = &self.config.hunt;
        let mut keys = vec![format!("svc:{}", row.action.source)];
        for ip in &row.source_ips.values {
            if let Some(net) = network(ip, h.ipv4_prefix, h.ipv6_prefix) {
                keys.push(format!("net:{net}"));
            }
        }
        for ua in &row.user_agents.values {
            if let Some(family) = client_family(ua) {
                keys.push(format!("ua:{family}"));
            }
        }
        for region in &row.regions.values {
            keys.push(format!("rgn:{region}"));
        }
        // Where the calls run, when the user agent says: marks a Lambda function's role.
        if row
            .user_agents
            .values
            .iter()
            .any(|ua| ua.contains("exec-env/AWS_Lambda"))
        {
            keys.push(LAMBDA_RUNTIME.to_string());
        }
        keys
    }

    /// Which workload's credentials a call used away from the workload, if any: `knows` says
    /// whether the principal's usual context holds a key.
    fn workload_elsewhere(
        row: &Activity,
        knows: impl Fn(&str) -> bool,
        new_network: bool,
        new_client: bool,
    ) -> Option<Workload> {
        if row.instance_calls > 0 && new_network {
            Some(Workload::Ec2Instance)
        } else if knows(LAMBDA_RUNTIME) && new_network && new_client {
            Some(Workload::LambdaFunction)
        } else {
            None
        }
    }

    /// Decides what the window means against the baseline.
    pub async fn detect(
        &self,
        store: &dyn BaselineStore,
        batch: &ActivityBatch,
        mode: Mode,
        now: Timestamp,
    ) -> Result<Detection, StoreError> {
        let account = &batch.account;
        let window = batch.window;
        let hunt = &self.config.hunt;
        let mut stats = DetectStats::default();

        // 1. What is hunted at all.
        let mut ignored_principals: BTreeMap<&'static str, BTreeSet<&str>> = BTreeMap::new();
        let mut rows: Vec<&Activity> = Vec::new();
        for row in &batch.rows {
            if let Some(why) = self.ignored(row) {
                ignored_principals
                    .entry(why)
                    .or_default()
                    .insert(&row.principal.key);
            } else if row.outcome == Outcome::Throttled {
                stats.failed_calls += row.count;
            } else {
                rows.push(row);
            }
        }
        for (why, set) in ignored_principals {
            stats.ignored.insert(why.to_string(), set.len() as u64);
        }

        // 2. Context per principal, from its successful calls.
        let mut contexts: BTreeMap<&str, PrincipalContext> = BTreeMap::new();
        for row in &rows {
            let ctx = contexts.entry(&row.principal.key).or_default();
            if row.outcome != Outcome::Success {
                continue;
            }
            let keys = self.context_keys(row);
            for k in &keys {
                ctx.seen
                    .entry(k.clone())
                    .and_modify(|s| s.merge(Seen::of(row)))
                    .or_insert(Seen::of(row));
            }
            let home: Vec<String> = keys
                .into_iter()
                .filter(|k| !k.starts_with("svc:"))
                .collect();
            match ctx.earliest {
                Some(t) if t < row.first_time => {}
                Some(t) if t == row.first_time => ctx.home.extend(home),
                _ => {
                    ctx.earliest = Some(row.first_time);
                    ctx.home = home.into_iter().collect();
                }
            }
        }
        stats.principals = contexts.len() as u64;

        // 3. One lookup for everything the window touches.
        let mut keys: BTreeSet<PairKey> = BTreeSet::new();
        for row in &rows {
            let p = &row.principal.key;
            keys.insert(key(p, row.action.key(), SUCCESS));
            keys.insert(key(ACCOUNT_PEERS, row.action.key(), PEER));
            if row.outcome != Outcome::Success {
                keys.insert(key(p, row.action.key(), outcome_class(row.outcome)));
            }
        }
        for (p, ctx) in &contexts {
            for k in ctx.seen.keys() {
                keys.insert(key(p, k.clone(), CONTEXT));
            }
            // Whether the principal is a Lambda function's role, even when this window's
            // calls do not come from the runtime.
            keys.insert(key(p, LAMBDA_RUNTIME.to_string(), CONTEXT));
        }
        let keys: Vec<PairKey> = keys.into_iter().collect();
        let known = store.known_pairs(account, &keys, window.end).await?;
        let principal_keys: Vec<String> = contexts.keys().map(|k| k.to_string()).collect();
        let known_principals = store.known_principals(account, &principal_keys).await?;
        let account_since = store.account_since(account).await?;

        // Networks and clients the baseline knows per principal, and whether it knows any.
        let mut known_context: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for k in known.keys().filter(|k| k.outcome == CONTEXT) {
            known_context
                .entry(k.principal.as_str())
                .or_default()
                .insert(k.action.as_str());
        }

        // 4. Baseline writes.
        let mut commit = Commit {
            watermark: Some(window.end),
            ..Commit::default()
        };
        let ttl = hunt.baseline_ttl;
        let refresh = hunt.ttl_refresh;
        let mut write = |k: PairKey, seen: Seen, stats: &mut DetectStats| {
            if let Some(w) = pair_write(known.get(&k), k, seen, ttl, refresh, stats) {
                commit.pairs.push(w);
            }
        };
        for row in &rows {
            let p = &row.principal.key;
            write(
                key(p, row.action.key(), outcome_class(row.outcome)),
                Seen::of(row),
                &mut stats,
            );
        }
        for (p, ctx) in &contexts {
            for (k, seen) in &ctx.seen {
                write(key(p, k.clone(), CONTEXT), *seen, &mut stats);
            }
        }
        let mut peers: BTreeMap<String, Seen> = BTreeMap::new();
        for row in rows.iter().filter(|r| r.outcome == Outcome::Success) {
            peers
                .entry(row.action.key())
                .and_modify(|s| s.merge(Seen::of(row)))
                .or_insert(Seen::of(row));
        }
        for (action, seen) in peers {
            write(key(ACCOUNT_PEERS, action, PEER), seen, &mut stats);
        }
        // Roles of one name across the organisation, under its pseudo-account.
        let mut role_peer_seen: BTreeMap<PairKey, Seen> = BTreeMap::new();
        for row in rows.iter().filter(|r| r.outcome == Outcome::Success) {
            if let Some(name) = role_peers(&row.principal.key) {
                role_peer_seen
                    .entry(key(&name, row.action.key(), PEER))
                    .and_modify(|s| s.merge(Seen::of(row)))
                    .or_insert(Seen::of(row));
            }
        }
        let organization = AccountId::parse(ORGANIZATION).expect("a valid account id");
        let known_role_peers = if role_peer_seen.is_empty() {
            HashMap::new()
        } else {
            let keys: Vec<PairKey> = role_peer_seen.keys().cloned().collect();
            store.known_pairs(&organization, &keys, window.end).await?
        };
        let mut peer_commit = Commit::default();
        for (k, seen) in role_peer_seen {
            let before = known_role_peers.get(&k);
            if let Some(w) = pair_write(before, k, seen, ttl, refresh, &mut stats) {
                peer_commit.pairs.push(w);
            }
        }
        for p in contexts.keys() {
            if known_principals.contains_key(*p) {
                continue;
            }
            let mine = rows.iter().filter(|r| r.principal.key == *p);
            let first = mine
                .clone()
                .map(|r| r.first_time)
                .min()
                .unwrap_or(window.start);
            let kind = mine
                .map(|r| r.principal.kind)
                .next()
                .unwrap_or(IdentityType::Unknown);
            commit.principals.push((
                p.to_string(),
                PrincipalState {
                    first_seen: first,
                    kind,
                },
            ));
        }

        if mode == Mode::Learn {
            return Ok(Detection {
                findings: Vec::new(),
                commit,
                peer_commit,
                stats,
            });
        }

        // 5. Findings.
        let is_new = |row: &Activity| -> Option<FindingKind> {
            let p = &row.principal.key;
            let succeeded_before = known.contains_key(&key(p, row.action.key(), SUCCESS));
            match row.outcome {
                Outcome::Success if !succeeded_before => Some(FindingKind::NewAction),
                Outcome::Denied
                    if !succeeded_before
                        && !known.contains_key(&key(p, row.action.key(), DENIED)) =>
                {
                    Some(FindingKind::NewDeniedAction)
                }
                Outcome::Failed
                    if !succeeded_before
                        && !known.contains_key(&key(p, row.action.key(), FAILED)) =>
                {
                    Some(FindingKind::NewFailedAction)
                }
                _ => None,
            }
        };
        let mut new_counts: HashMap<(&str, FindingKind), u32> = HashMap::new();
        for row in &rows {
            if let Some(kind) = is_new(row) {
                *new_counts
                    .entry((row.principal.key.as_str(), kind))
                    .or_default() += 1;
            }
        }
        let first_seen_of = |p: &str| -> Timestamp {
            known_principals
                .get(p)
                .map(|s| s.first_seen)
                .or_else(|| {
                    commit
                        .principals
                        .iter()
                        .find(|(k, _)| k == p)
                        .map(|(_, s)| s.first_seen)
                })
                .unwrap_or(window.start)
        };
        // The reference for ages is the data's time, not the wall clock, so replays of old
        // logs grade as they would have live.
        let principal_age = |p: &str| window.end.since(first_seen_of(p));
        let rarity = Rarity::new(&self.config.rarity, hunt.baseline_ttl);
        // Peers say something only once the account has history of its own.
        let account_start = account_since.unwrap_or(window.start);
        let peers_known = !rarity.too_young(account_start, window.start);
        let judge = |row: &Activity| -> Judgement {
            let p = row.principal.key.as_str();
            let since = first_seen_of(p);
            let same_name = role_peers(p)
                .and_then(|name| known_role_peers.get(&key(&name, row.action.key(), PEER)));
            if !rarity.too_young(since, row.first_time) {
                let pair = known.get(&key(p, row.action.key(), SUCCESS));
                rarity.judge(pair, since, row.first_time, Basis::Principal)
            } else if let Some(pair) = same_name {
                rarity.judge(
                    Some(pair),
                    pair.first_seen,
                    row.first_time,
                    Basis::RoleNamePeers,
                )
            } else if peers_known {
                let pair = known.get(&key(ACCOUNT_PEERS, row.action.key(), PEER));
                rarity.judge(pair, account_start, row.first_time, Basis::AccountPeers)
            } else {
                let pair = known.get(&key(p, row.action.key(), SUCCESS));
                rarity.judge(pair, since, row.first_time, Basis::Principal)
            }
        };

        let origin = Origin {
            account,
            window,
            now,
        };
        let mut findings = Vec::new();
        let mut bursts: BTreeMap<&str, Vec<(&Activity, Facts)>> = BTreeMap::new();
        for row in &rows {
            let Some(kind) = is_new(row) else { continue };
            let p = row.principal.key.as_str();
            let always = self.always_alert(&row.principal, &row.action);
            let judgement = judge(row);
            let peer_unseen = judgement.basis != Basis::Principal && judgement.tier == Tier::Unseen;
            if principal_age(p) < hunt.min_principal_age && always.is_none() && !peer_unseen {
                stats.young_suppressed += 1;
                continue;
            }
            let ctx = contexts.get(p);
            let baseline_context = known_context.get(p);
            let knows_context = |k: &str| -> bool {
                match baseline_context {
                    // The baseline knows this principal's context: compare with it.
                    Some(set) if set.iter().any(|c| !c.starts_with("svc:")) => set.contains(k),
                    // Otherwise its earliest calls in this window are its home.
                    _ => ctx.is_some_and(|c| c.home.contains(k)),
                }
            };
            let row_context = self.context_keys(row);
            let new_network = row_context
                .iter()
                .filter(|k| k.starts_with("net:"))
                .find(|k| !knows_context(k))
                .map(|k| k["net:".len()..].to_string());
            let new_client = row_context
                .iter()
                .filter(|k| k.starts_with("ua:"))
                .find(|k| !knows_context(k))
                .map(|k| k["ua:".len()..].to_string());
            let new_region = row_context
                .iter()
                .filter(|k| k.starts_with("rgn:"))
                .find(|k| !knows_context(k))
                .map(|k| k["rgn:".len()..].to_string());
            // A principal with no history at all has every service new; say so only when it
            // had history.
            let had_history = known_principals.contains_key(p);
            let new_service = had_history
                && !baseline_context
                    .is_some_and(|s| s.contains(format!("svc:{}", row.action.source).as_str()));
            let facts = Facts {
                kind: Some(kind),
                identity: Some(row.principal.kind),
                action: Some(row.action.clone()),
                new_service,
                new_actions: new_counts
                    .get(&(p, FindingKind::NewAction))
                    .copied()
                    .unwrap_or(0),
                new_denied: new_counts
                    .get(&(p, FindingKind::NewDeniedAction))
                    .copied()
                    .unwrap_or(0),
                read_only: row.read_only == Some(true),
                always_alert: always,
                logins_without_mfa: row.logins_without_mfa,
                workload_elsewhere: Self::workload_elsewhere(
                    row,
                    knows_context,
                    new_network.is_some(),
                    new_client.is_some(),
                ),
                new_client,
                new_network,
                new_region,
                rarity: Some(judgement),
                ..Facts::default()
            };
            let facts = Facts {
                new_actions: if kind == FindingKind::NewAction {
                    facts.new_actions
                } else {
                    0
                },
                ..facts
            };
            if kind == FindingKind::NewDeniedAction
                && facts.new_denied >= self.config.severity.denied_burst_min
            {
                // Many refusals at once are one story (a principal probing what it can do),
                // told in one finding below rather than one per action.
                bursts.entry(p).or_default().push((row, facts));
                continue;
            }
            findings.push(row_finding(&origin, &self.grader, row, kind, &facts));
        }
        for list in bursts.values() {
            let rows: Vec<&Activity> = list.iter().map(|(r, _)| *r).collect();
            let facts = Facts {
                new_denied: rows.len() as u32,
                new_network: list.iter().find_map(|(_, f)| f.new_network.clone()),
                new_client: list.iter().find_map(|(_, f)| f.new_client.clone()),
                new_region: list.iter().find_map(|(_, f)| f.new_region.clone()),
                workload_elsewhere: list.iter().find_map(|(_, f)| f.workload_elsewhere),
                new_service: list.iter().any(|(_, f)| f.new_service),
                always_alert: list.iter().find_map(|(_, f)| f.always_alert.clone()),
                ..Facts::default()
            };
            findings.extend(group_finding(
                &origin,
                &self.grader,
                FindingKind::DeniedBurst,
                &rows,
                facts,
            ));
        }

        // A principal with known habits acting with several new things at once: stolen
        // credentials doing what the victim does, from elsewhere and with another tool.
        // Compared with the baseline's context of the principal, or, for a principal the
        // baseline knows none of, with its earliest calls in the window (its home).
        for (p, ctx) in &contexts {
            if principal_age(p) < hunt.min_principal_age {
                continue;
            }
            let baseline = known_context
                .get(p)
                .filter(|set| set.iter().any(|c| !c.starts_with("svc:")));
            let known = |k: &str| match baseline {
                Some(set) => set.contains(k),
                None => ctx.home.contains(k),
            };
            if baseline.is_none() && ctx.home.is_empty() {
                continue;
            }
            let new: BTreeSet<&str> = ctx
                .seen
                .keys()
                .map(String::as_str)
                .filter(|k| NEWS.iter().any(|prefix| k.starts_with(prefix)) && !known(k))
                .collect();
            let news = |prefix: &str| {
                new.iter()
                    .find(|k| k.starts_with(prefix))
                    .map(|k| k[prefix.len()..].to_string())
            };
            let kinds = NEWS.iter().filter(|prefix| news(prefix).is_some()).count();
            if kinds < 2 {
                continue;
            }
            // The principal's successful calls that used something new, and whether a
            // workload's credentials were among them; each row's context read once.
            let mut mine: Vec<&Activity> = Vec::new();
            let mut workload_elsewhere = None;
            for r in rows.iter().copied() {
                if r.principal.key != *p || r.outcome != Outcome::Success {
                    continue;
                }
                let keys = self.context_keys(r);
                let fresh = |prefix: &str| {
                    keys.iter()
                        .any(|k| k.starts_with(prefix) && new.contains(k.as_str()))
                };
                if !NEWS.iter().any(|prefix| fresh(prefix)) {
                    continue;
                }
                workload_elsewhere = workload_elsewhere
                    .or_else(|| Self::workload_elsewhere(r, known, fresh("net:"), fresh("ua:")));
                mine.push(r);
            }
            let mut rare_actions = Vec::new();
            let mut dormant_actions = Vec::new();
            for r in &mine {
                let j = judge(r);
                if j.tier == Tier::Rare {
                    rare_actions.push(j.describe(&r.action.short()));
                }
                if let Some(days) = j.dormant_days {
                    dormant_actions.push(format!(
                        "{} came back after {days} days without use",
                        r.action.short()
                    ));
                }
            }
            let facts = Facts {
                workload_elsewhere,
                new_network: news("net:"),
                new_client: news("ua:"),
                new_region: news("rgn:"),
                rare_actions,
                dormant_actions,
                denied_calls: rows
                    .iter()
                    .filter(|r| r.principal.key == *p && r.outcome == Outcome::Denied)
                    .map(|r| r.count)
                    .sum(),
                always_alert: mine
                    .iter()
                    .find_map(|r| self.always_alert(&r.principal, &r.action)),
                ..Facts::default()
            };
            findings.extend(group_finding(
                &origin,
                &self.grader,
                FindingKind::NewContext,
                &mine,
                facts,
            ));
        }

        // A principal appearing in an account with enough history.
        let history_needed = window.start.saturating_sub(hunt.account_min_history);
        if account_since.is_some_and(|since| since <= history_needed) {
            for (p, _) in &commit.principals {
                let mine: Vec<&Activity> = rows
                    .iter()
                    .copied()
                    .filter(|r| &r.principal.key == p)
                    .collect();
                let facts = Facts {
                    always_alert: mine
                        .iter()
                        .find_map(|r| self.always_alert(&r.principal, &r.action)),
                    logins_without_mfa: mine.iter().map(|r| r.logins_without_mfa).sum(),
                    ..Facts::default()
                };
                findings.extend(group_finding(
                    &origin,
                    &self.grader,
                    FindingKind::NewPrincipal,
                    &mine,
                    facts,
                ));
            }
        }
        findings.sort_by(|a, b| {
            b.severity
                .score
                .cmp(&a.severity.score)
                .then(a.first_seen.cmp(&b.first_seen))
        });
        Ok(Detection {
            findings,
            commit,
            peer_commit,
            stats,
        })
    }
}
