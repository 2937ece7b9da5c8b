//! The terminal table: findings as a person at a shell reads them, one row each with the two
//! strongest reasons beneath, fitted to the terminal width, ending with a count by level.
//!
//! Everything shown comes from CloudTrail, which an attacker partly controls (user agents,
//! session names, even source "IPs"), so control characters are replaced before printing: a
//! finding must not be able to move the cursor or recolour the analyst's terminal.

use std::io::Write;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{io_failure, Finding, Level, PrincipalRef, Sink, Stopped};
use crate::cloudtrail::IdentityType;

/// How the table is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableOptions {
    /// Characters per line. Requests below [`TableOptions::MIN_WIDTH`] are raised to it: under
    /// that, the account id and time no longer fit and the table stops being useful.
    pub width: usize,
    /// Colour the level with ANSI escapes. The binary turns this on only for a terminal, so
    /// redirected output stays plain text.
    pub color: bool,
}

impl TableOptions {
    pub const DEFAULT_WIDTH: usize = 160;
    pub const MIN_WIDTH: usize = min_width();

    /// The width from `COLUMNS` when it holds a usable number, else the default.
    pub fn from_env(color: bool) -> Self {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|w| *w > 0)
            .unwrap_or(Self::DEFAULT_WIDTH);
        TableOptions { width, color }
    }
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            width: Self::DEFAULT_WIDTH,
            color: false,
        }
    }
}

/// Writes each batch as a table. Named `stdout` because that is where the binary points it;
/// tests hand it any writer.
pub struct TerminalSink {
    out: Mutex<Box<dyn Write + Send>>,
    options: TableOptions,
}

impl TerminalSink {
    pub fn new(out: Box<dyn Write + Send>, options: TableOptions) -> Self {
        TerminalSink {
            out: Mutex::new(out),
            options,
        }
    }

    /// Standard output, as wide as `COLUMNS` says.
    pub fn stdout(color: bool) -> Self {
        Self::new(Box::new(std::io::stdout()), TableOptions::from_env(color))
    }
}

#[async_trait]
impl Sink for TerminalSink {
    fn name(&self) -> String {
        "stdout".to_string()
    }

    async fn deliver(&self, findings: &[Finding]) -> Result<(), Stopped> {
        let table = render_table(findings, &self.options);
        // A panic elsewhere while holding the lock leaves the writer itself intact.
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.write_all(table.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| io_failure("stdout", "writing the findings table", &e).into())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

struct Column {
    header: &'static str,
    align: Align,
    /// How narrow each squeeze may make it, in the order the squeezes run; `WHOLE` keeps it
    /// as wide as its widest cell. The last floor is how narrow it may ever get.
    floors: [usize; 3],
}

const WHOLE: usize = usize::MAX;

const fn col(header: &'static str, align: Align, floors: [usize; 3]) -> Column {
    Column {
        header,
        align,
        floors,
    }
}

// Squeezes run until the line fits: first the free text (principal, action, IPs) gives way
// down to a still readable width; then it and the level and kind shrink further; only at the
// last do numbers go to their header width. The account id and the minute are never cut: a
// truncated id or time cannot be searched for.
const COLUMNS: [Column; 9] = [
    col("LEVEL", Align::Left, [WHOLE, 8, 5]),
    col("SCORE", Align::Right, [WHOLE, WHOLE, 5]),
    col("ACCOUNT", Align::Left, [12, 12, 12]),
    col("PRINCIPAL", Align::Left, [16, 12, 6]),
    col("ACTION", Align::Left, [16, 12, 6]),
    col("KIND", Align::Left, [WHOLE, 10, 5]),
    col("COUNT", Align::Right, [WHOLE, WHOLE, 5]),
    col("FIRST SEEN (UTC)", Align::Left, [16, 16, 16]),
    col("SOURCE IPS", Align::Left, [12, 8, 4]),
];

const GAP: &str = "  ";

const fn min_width() -> usize {
    let mut total = GAP.len() * (COLUMNS.len() - 1);
    let mut i = 0;
    while i < COLUMNS.len() {
        total += COLUMNS[i].floors[2];
        i += 1;
    }
    total
}

/// Renders a batch as the table `TerminalSink` prints, newline-terminated.
pub fn render_table(findings: &[Finding], options: &TableOptions) -> String {
    if findings.is_empty() {
        return "no findings\n".to_string();
    }
    let width = options.width.max(TableOptions::MIN_WIDTH);

    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by(|a, b| {
        b.severity
            .score
            .cmp(&a.severity.score)
            .then(a.first_seen.cmp(&b.first_seen))
            .then(a.id.cmp(&b.id))
    });

    let rows: Vec<[String; 9]> = sorted.iter().map(|f| cells(f)).collect();
    let widths = fit_widths(&rows, width);

    let mut out = String::new();
    let headers = COLUMNS.map(|c| c.header.to_string());
    push_line(&mut out, &headers, &widths, None);
    for (finding, row) in sorted.iter().zip(&rows) {
        let color = options.color.then_some(finding.severity.level);
        push_line(&mut out, row, &widths, color);
        if let Some(why) = why_line(finding) {
            out.push_str(&truncate(&why, width));
            out.push('\n');
        }
    }
    out.push_str(&count_line(findings));
    out.push('\n');
    out
}

fn cells(f: &Finding) -> [String; 9] {
    let action = match &f.action {
        Some(a) => a.clone(),
        None => f.kind.name().to_string(),
    };
    [
        f.severity.level.name().to_string(),
        f.severity.score.to_string(),
        f.account.to_string(),
        principal_label(&f.principal),
        action,
        f.kind.name().to_string(),
        f.count.to_string(),
        minute(f),
        ips(&f.source_ips),
    ]
    .map(|c| clean(&c))
}

/// `YYYY-MM-DD HH:MM`: the table is for finding one's bearings; the JSON keeps the second.
fn minute(f: &Finding) -> String {
    let full = f.first_seen.to_string();
    let date_and_minute = full.get(..16).unwrap_or(&full);
    date_and_minute.replacen('T', " ", 1)
}

fn ips(all: &[String]) -> String {
    let mut text = all.iter().take(2).cloned().collect::<Vec<_>>().join(", ");
    if all.len() > 2 {
        text.push_str(&format!(" +{}", all.len() - 2));
    }
    text
}

/// The identity type, short, and the principal's own name: `role/ci-deploy`, `user/alice`,
/// `root`, `service/ec2`.
fn principal_label(p: &PrincipalRef) -> String {
    let name = match &p.arn {
        Some(arn) if arn.ends_with(":root") => return "root".to_string(),
        Some(arn) => last_segment(arn),
        // Keys without an ARN read `kind:scope:id`; the id is what identifies the principal.
        None => last_segment(&p.key),
    };
    let kind = match p.kind {
        IdentityType::Root => return "root".to_string(),
        IdentityType::IAMUser => "user",
        IdentityType::AssumedRole => "role",
        IdentityType::FederatedUser => "federated",
        IdentityType::AWSService => "service",
        IdentityType::AWSAccount => "account",
        IdentityType::IdentityCenterUser => "sso",
        IdentityType::WebIdentityUser => "web",
        IdentityType::SAMLUser => "saml",
        IdentityType::Unknown => "unknown",
    };
    let name = name.strip_suffix(".amazonaws.com").unwrap_or(name);
    format!("{kind}/{name}")
}

fn last_segment(text: &str) -> &str {
    text.rsplit(['/', ':'])
        .find(|s| !s.is_empty())
        .unwrap_or(text)
}

/// The two reasons that added most to the score, so the analyst sees why without the JSON.
fn why_line(f: &Finding) -> Option<String> {
    let mut reasons: Vec<_> = f.severity.reasons.iter().collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.weight));
    let top: Vec<String> = reasons
        .iter()
        .take(2)
        .map(|r| format!("{} ({:+})", clean(&r.factor), r.weight))
        .collect();
    (!top.is_empty()).then(|| format!("  why: {}", top.join(", ")))
}

fn count_line(findings: &[Finding]) -> String {
    let counts: Vec<String> = Level::ALL
        .iter()
        .map(|level| {
            let n = findings
                .iter()
                .filter(|f| f.severity.level == *level)
                .count();
            format!("{n} {}", level.name())
        })
        .collect();
    let noun = if findings.len() == 1 {
        "finding"
    } else {
        "findings"
    };
    format!("{} {noun}: {}", findings.len(), counts.join(", "))
}

/// Each column as wide as its widest cell, then squeezed until the line fits `width`.
fn fit_widths(rows: &[[String; 9]], width: usize) -> [usize; 9] {
    let mut widths: [usize; 9] = std::array::from_fn(|i| {
        let cells = rows.iter().map(|r| r[i].chars().count());
        cells.max().unwrap_or(0).max(COLUMNS[i].header.len())
    });
    let budget = width - GAP.len() * (COLUMNS.len() - 1);
    for pass in 0..3 {
        let floors: [usize; 9] = std::array::from_fn(|i| COLUMNS[i].floors[pass].min(widths[i]));
        squeeze(&mut widths, &floors, budget);
    }
    widths
}

/// Narrows the widest column above its floor, one character at a time, so long cells lose
/// characters before short ones do.
fn squeeze(widths: &mut [usize; 9], floors: &[usize; 9], budget: usize) {
    while widths.iter().sum::<usize>() > budget {
        let widest = (0..widths.len())
            .filter(|&i| widths[i] > floors[i])
            .max_by_key(|&i| widths[i]);
        match widest {
            Some(i) => widths[i] -= 1,
            None => return,
        }
    }
}

fn push_line(out: &mut String, cells: &[String; 9], widths: &[usize; 9], color: Option<Level>) {
    let mut line = String::new();
    for (i, (cell, &w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str(GAP);
        }
        let text = truncate(cell, w);
        let pad = " ".repeat(w - text.chars().count());
        match (COLUMNS[i].align, color.filter(|_| i == 0)) {
            (Align::Right, _) => {
                line.push_str(&pad);
                line.push_str(&text);
            }
            // Colour the word only, not its padding, so the escapes never shift a column.
            (Align::Left, Some(level)) => {
                line.push_str(&paint(level, &text));
                line.push_str(&pad);
            }
            (Align::Left, None) => {
                line.push_str(&text);
                line.push_str(&pad);
            }
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn paint(level: Level, text: &str) -> String {
    let code = match level {
        Level::Critical => "1;31",
        Level::High => "31",
        Level::Medium => "33",
        Level::Low => "36",
        Level::Informational => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// At most `width` characters, the last one `…` when something was cut.
fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::testing::{finding, reason, Captured, ClosedPipe};
    use crate::alert::{FindingKind, Severity};

    fn plain(width: usize) -> TableOptions {
        TableOptions {
            width,
            color: false,
        }
    }

    async fn printed(findings: &[Finding], options: TableOptions) -> String {
        let captured = Captured::default();
        let sink = TerminalSink::new(Box::new(captured.clone()), options);
        sink.deliver(findings)
            .await
            .expect("writing to memory works");
        captured.text()
    }

    /// Three findings of different kinds, given out of order.
    fn three() -> Vec<Finding> {
        let low = Finding {
            kind: FindingKind::NewPrincipal,
            action: None,
            event_source: None,
            event_name: None,
            principal: PrincipalRef {
                arn: Some("arn:aws:iam::111122223333:user/alice".to_string()),
                kind: IdentityType::IAMUser,
                key: "arn:aws:iam::111122223333:user/alice".to_string(),
            },
            count: 4,
            source_ips: vec!["198.51.100.7".to_string()],
            ..finding(22, Level::Low, "2024-03-01T10:05:09Z")
        };
        let low = Finding {
            severity: Severity {
                reasons: vec![reason("new-principal", 20)],
                ..low.severity
            },
            ..low
        };
        let critical = Finding {
            principal: PrincipalRef {
                arn: Some("arn:aws:iam::111122223333:root".to_string()),
                kind: IdentityType::Root,
                key: "arn:aws:iam::111122223333:root".to_string(),
            },
            count: 2,
            source_ips: ["203.0.113.10", "203.0.113.11", "192.0.2.1", "192.0.2.2"]
                .map(String::from)
                .to_vec(),
            ..finding(91, Level::Critical, "2024-03-01T10:31:00Z")
        };
        let medium = Finding {
            kind: FindingKind::NewDeniedAction,
            action: Some("s3:GetBucketPolicy".to_string()),
            count: 17,
            ..finding(55, Level::Medium, "2024-03-01T10:12:44Z")
        };
        let medium = Finding {
            severity: Severity {
                reasons: vec![
                    reason("sensitive-service", 15),
                    reason("denied-burst", 20),
                    reason("new-action", 10),
                ],
                ..medium.severity
            },
            ..medium
        };
        vec![low, critical, medium]
    }

    const THREE_AT_160: &str = "\
LEVEL     SCORE  ACCOUNT       PRINCIPAL       ACTION               KIND               COUNT  FIRST SEEN (UTC)  SOURCE IPS
critical     91  111122223333  root            iam:CreateAccessKey  new-action             2  2024-03-01 10:31  203.0.113.10, 203.0.113.11 +2
  why: new-action (+30), iam-write (+25)
medium       55  111122223333  role/ci-deploy  s3:GetBucketPolicy   new-denied-action     17  2024-03-01 10:12  203.0.113.10
  why: denied-burst (+20), sensitive-service (+15)
low          22  111122223333  user/alice      new-principal        new-principal          4  2024-03-01 10:05  198.51.100.7
  why: new-principal (+20)
3 findings: 1 critical, 0 high, 1 medium, 1 low, 0 informational
";

    #[tokio::test]
    async fn table_matches_snapshot_for_three_findings() {
        assert_eq!(printed(&three(), plain(160)).await, THREE_AT_160);
    }

    #[test]
    fn table_is_sorted_by_severity() {
        let mut batch = three();
        // Same score as the critical one but seen earlier: it must come first of the two.
        batch.push(Finding {
            action: Some("ec2:RunInstances".to_string()),
            ..finding(91, Level::Critical, "2024-03-01T09:00:00Z")
        });
        let table = render_table(&batch, &plain(160));
        let order: Vec<&str> = table
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with("  why:") && !l.contains(" findings: "))
            .map(|l| l.split_whitespace().next().unwrap_or(""))
            .collect();
        assert_eq!(order, ["critical", "critical", "medium", "low"]);
        let run = table.find("ec2:RunInstances").expect("row present");
        let key = table.find("iam:CreateAccessKey").expect("row present");
        assert!(
            run < key,
            "earlier first_seen first on equal score:\n{table}"
        );
    }

    #[test]
    fn long_cells_are_truncated_to_width() {
        let long = Finding {
            principal: PrincipalRef {
                arn: Some(format!(
                    "arn:aws:iam::111122223333:role/{}",
                    "x".repeat(120)
                )),
                kind: IdentityType::AssumedRole,
                key: "k".to_string(),
            },
            action: Some(format!("iam:{}", "Y".repeat(90))),
            source_ips: vec!["a".repeat(60), "b".repeat(60), "c".to_string()],
            severity: Severity {
                reasons: vec![reason(&"z".repeat(200), 40), reason("other", 1)],
                ..finding(80, Level::High, "2024-03-01T10:00:00Z").severity
            },
            ..finding(80, Level::High, "2024-03-01T10:00:00Z")
        };
        for width in [160, 120, 100, TableOptions::MIN_WIDTH, 20] {
            let table = render_table(std::slice::from_ref(&long), &plain(width));
            let limit = width.max(TableOptions::MIN_WIDTH);
            for line in table.lines() {
                assert!(line.chars().count() <= limit, "{width}: {line}");
            }
            assert!(table.contains('…'), "{table}");
            // The account id is never cut: it is what the analyst searches for.
            assert!(table.contains("111122223333"), "{table}");
        }
    }

    #[tokio::test]
    async fn empty_batch_says_no_findings() {
        assert_eq!(printed(&[], plain(160)).await, "no findings\n");
    }

    #[test]
    fn colour_wraps_only_the_level_word() {
        let table = render_table(
            &three(),
            &TableOptions {
                width: 160,
                color: true,
            },
        );
        assert!(table.contains("\x1b[1;31mcritical\x1b[0m  "), "{table}");
        assert!(!render_table(&three(), &plain(160)).contains('\x1b'));
    }

    #[test]
    fn escapes_from_logs_do_not_reach_the_terminal() {
        let hostile = Finding {
            source_ips: vec!["\x1b[2J evil".to_string()],
            ..finding(10, Level::Low, "2024-03-01T10:00:00Z")
        };
        let table = render_table(&[hostile], &plain(160));
        assert!(!table.contains('\x1b'));
        assert!(table.contains("?[2J evil"));
    }

    #[test]
    fn principals_show_type_and_name() {
        let p = |arn: Option<&str>, kind, key: &str| {
            principal_label(&PrincipalRef {
                arn: arn.map(String::from),
                kind,
                key: key.to_string(),
            })
        };
        let role = "arn:aws:iam::1:role/deploy/ci-deploy";
        assert_eq!(
            p(Some(role), IdentityType::AssumedRole, role),
            "role/ci-deploy"
        );
        assert_eq!(
            p(None, IdentityType::AWSService, "service:ec2.amazonaws.com"),
            "service/ec2"
        );
        assert_eq!(
            p(
                None,
                IdentityType::AssumedRole,
                "role-id:111122223333:AROAEXAMPLE"
            ),
            "role/AROAEXAMPLE"
        );
        assert_eq!(p(None, IdentityType::Root, "x"), "root");
    }

    #[tokio::test]
    async fn closed_pipe_is_an_error_not_a_panic() {
        let sink = TerminalSink::new(Box::new(ClosedPipe), plain(160));
        let err = sink
            .deliver(&three())
            .await
            .expect_err("a closed pipe cannot take the table");
        assert!(err.to_string().contains("closed"), "{err}");
    }
}
