//! Rendering: every template renders, values arrive quoted, and hostile settings never reach
//! the text.

use super::*;

fn trail() -> TrailConfig {
    TrailConfig {
        bucket: "org-trail-logs".into(),
        prefix: "ct/main".into(),
        org_id: Some("o-a1b2c3d4e5".into()),
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
    }
}

fn settings() -> SqlSettings {
    SqlSettings::new(&trail(), &AthenaConfig::default()).unwrap()
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn account() -> AccountId {
    AccountId::parse("111122223333").unwrap()
}

#[test]
fn every_template_renders_without_leftover_tags_or_comments() {
    let s = settings();
    let w = Window::new(t("2024-03-01T23:00:00Z"), t("2024-03-02T01:00:00Z")).unwrap();
    let days = Day::covering(&w);
    let statements = [
        s.create_database().unwrap(),
        s.create_table(PartitionMode::Projection, None).unwrap(),
        s.create_table(PartitionMode::Projection, Some(&[account()]))
            .unwrap(),
        s.update_table(PartitionMode::Projection, None).unwrap(),
        s.create_table(PartitionMode::Managed, None).unwrap(),
        s.update_table(PartitionMode::Managed, None).unwrap(),
        s.add_partitions(&account(), &days).unwrap(),
        s.activity(&account(), &w).unwrap(),
    ];
    for sql in &statements {
        assert!(!sql.contains("{{") && !sql.contains("}}"), "{sql}");
        assert!(!sql.lines().any(|l| l.trim().starts_with("--")), "{sql}");
        assert!(!sql.contains("\n\n\n"), "{sql}");
    }
}

#[test]
fn activity_covers_every_day_the_window_touches_and_bounds_by_delivery_minute() {
    let s = settings();
    let w = Window::new(t("2024-03-01T23:00:30Z"), t("2024-03-02T00:10:00Z")).unwrap();
    let sql = s.activity(&account(), &w).unwrap();
    assert!(
        sql.contains("delivery_date IN ('2024/03/01', '2024/03/02')"),
        "{sql}"
    );
    assert!(
        sql.contains(">= '20240301T2301Z'"),
        "start rounds up: {sql}"
    );
    assert!(sql.contains("< '20240302T0010Z'"), "{sql}");
    assert!(sql.contains("account = '111122223333'"));
    assert!(sql.contains(r#"FROM "trailhound"."cloudtrail""#));
    assert!(sql.contains("1, 16)"), "the sample cap is Samples::CAP");
}

#[test]
fn a_window_ending_at_midnight_does_not_touch_the_next_day() {
    let w = Window::new(t("2024-03-01T23:00:00Z"), t("2024-03-02T00:00:00Z")).unwrap();
    let days: Vec<String> = Day::covering(&w).iter().map(Day::to_string).collect();
    assert_eq!(days, ["2024/03/01"]);
}

#[test]
fn projection_injects_or_lists_accounts_and_enumerates_regions() {
    let s = settings();
    let injected = s.create_table(PartitionMode::Projection, None).unwrap();
    assert!(injected.contains("'projection.account.type' = 'injected'"));
    assert!(!injected.contains("projection.account.values"));
    assert!(injected.contains("'projection.region.values' = 'us-east-1,eu-west-1'"));
    assert!(injected.contains("'projection.delivery_date.range' = '2020/01/01,NOW'"));
    assert!(injected.contains(
        "'s3://org-trail-logs/ct/main/AWSLogs/o-a1b2c3d4e5/${account}/CloudTrail/${region}/${delivery_date}'"
    ));
    assert!(injected.contains("LOCATION 's3://org-trail-logs/ct/main/AWSLogs/o-a1b2c3d4e5/'"));
    assert!(injected.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS `trailhound`.`cloudtrail`"));

    let other = AccountId::parse("444455556666").unwrap();
    let listed = s
        .create_table(PartitionMode::Projection, Some(&[account(), other]))
        .unwrap();
    assert!(listed.contains("'projection.account.type' = 'enum'"));
    assert!(listed.contains("'projection.account.values' = '111122223333,444455556666'"));
}

#[test]
fn managed_partitions_are_exactly_the_windows_days_times_regions() {
    let s = settings();
    let w = Window::new(t("2024-03-01T23:30:00Z"), t("2024-03-02T00:30:00Z")).unwrap();
    let sql = s.add_partitions(&account(), &Day::covering(&w)).unwrap();
    assert_eq!(sql.matches("PARTITION (").count(), 4, "{sql}");
    assert!(sql.contains(
        "PARTITION (account = '111122223333', region = 'eu-west-1', delivery_date = '2024/03/02')\n  LOCATION 's3://org-trail-logs/ct/main/AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/eu-west-1/2024/03/02/'"
    ), "{sql}");
    assert!(sql.starts_with("ALTER TABLE `trailhound`.`cloudtrail` ADD IF NOT EXISTS"));
}

#[test]
fn per_account_layout_has_no_organization_folder() {
    let mut trail = trail();
    trail.org_id = None;
    trail.prefix = String::new();
    let s = SqlSettings::new(&trail, &AthenaConfig::default()).unwrap();
    let sql = s.create_table(PartitionMode::Managed, None).unwrap();
    assert!(
        sql.contains("LOCATION 's3://org-trail-logs/AWSLogs/'"),
        "{sql}"
    );
}

#[test]
fn hostile_settings_are_refused_before_any_sql_is_made() {
    let athena = AthenaConfig::default();
    let cases: Vec<(TrailConfig, AthenaConfig)> = vec![
        (
            TrailConfig {
                bucket: "b'; DROP TABLE x; --".into(),
                ..trail()
            },
            athena.clone(),
        ),
        (
            TrailConfig {
                prefix: "logs' OR '1'='1".into(),
                ..trail()
            },
            athena.clone(),
        ),
        (
            TrailConfig {
                prefix: "a/../$b".into(),
                ..trail()
            },
            athena.clone(),
        ),
        (
            TrailConfig {
                org_id: Some("o-x'/*".into()),
                ..trail()
            },
            athena.clone(),
        ),
        (
            TrailConfig {
                regions: vec!["us-east-1'); --".into()],
                ..trail()
            },
            athena.clone(),
        ),
        (
            TrailConfig {
                regions: Vec::new(),
                ..trail()
            },
            athena.clone(),
        ),
        (
            trail(),
            AthenaConfig {
                database: "db`; DROP DATABASE x; --".into(),
                ..athena.clone()
            },
        ),
        (
            trail(),
            AthenaConfig {
                table: "t\" OR 1=1".into(),
                ..athena.clone()
            },
        ),
        (
            trail(),
            AthenaConfig {
                table: "Cloudtrail".into(),
                ..athena.clone()
            },
        ),
        (
            trail(),
            AthenaConfig {
                projection_start: "2020/01/01','x".into(),
                ..athena.clone()
            },
        ),
        (
            trail(),
            AthenaConfig {
                projection_start: "2020/02/30".into(),
                ..athena.clone()
            },
        ),
    ];
    for (trail, athena) in cases {
        let result = SqlSettings::new(&trail, &athena);
        assert!(result.is_err(), "accepted {trail:?} {athena:?}");
    }
}

// --- The window as ranges of "$path" ------------------------------------------------------

const ROOT: &str = "s3://org-trail-logs/ct/main/AWSLogs/o-a1b2c3d4e5/";

/// The `"$path"` Athena gives the object of `account` and `region` delivered at `minute`.
fn object_path(account: &str, region: &str, minute: Timestamp) -> String {
    let (y, m, d) = minute.date();
    format!(
        "{ROOT}{account}/CloudTrail/{region}/{y:04}/{m:02}/{d:02}/{account}_CloudTrail_{region}_{}_AbCd1234.json.gz",
        minute.compact()
    )
}

fn in_ranges(ranges: &[PathRange], path: &str) -> bool {
    ranges
        .iter()
        .any(|r| r.from.as_str() <= path && path < r.until.as_str())
}

#[test]
fn path_ranges_are_one_per_region_from_the_first_day_to_the_rounded_end() {
    let s = settings();
    let w = Window::new(t("2026-11-24T23:00:00Z"), t("2026-11-25T00:00:00Z")).unwrap();
    let ranges = s.path_ranges(&account(), &w);
    let stem = |region: &str, day: &str, minute: &str| {
        format!("{ROOT}111122223333/CloudTrail/{region}/{day}/111122223333_CloudTrail_{region}_{minute}")
    };
    assert_eq!(
        ranges,
        [
            PathRange {
                from: stem("us-east-1", "2026/11/24", "20261124T2300Z"),
                until: stem("us-east-1", "2026/11/25", "20261125T0000Z"),
            },
            PathRange {
                from: stem("eu-west-1", "2026/11/24", "20261124T2300Z"),
                until: stem("eu-west-1", "2026/11/25", "20261125T0000Z"),
            },
        ]
    );
    // The first object of the next day sorts above the exclusive bound; the last of the day
    // below it, though its folder is another.
    let next_day = object_path("111122223333", "us-east-1", t("2026-11-25T00:00:00Z"));
    let last = object_path("111122223333", "us-east-1", t("2026-11-24T23:59:00Z"));
    assert!(!in_ranges(&ranges, &next_day));
    assert!(in_ranges(&ranges, &last));
}

#[test]
fn path_ranges_render_quoted_into_both_window_queries() {
    let s = settings();
    let w = Window::new(t("2024-03-01T10:00:00Z"), t("2024-03-01T11:00:00Z")).unwrap();
    let paths = s.delivered_paths(&account(), &w).unwrap();
    assert_eq!(
        paths,
        format!(
            "(\n      FALSE\n      OR (\"$path\" >= '{ROOT}111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T1000Z' \
             AND \"$path\" < '{ROOT}111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T1100Z')\n      \
             OR (\"$path\" >= '{ROOT}111122223333/CloudTrail/eu-west-1/2024/03/01/111122223333_CloudTrail_eu-west-1_20240301T1000Z' \
             AND \"$path\" < '{ROOT}111122223333/CloudTrail/eu-west-1/2024/03/01/111122223333_CloudTrail_eu-west-1_20240301T1100Z')\n    )"
        )
    );
    let activity = s.activity(&account(), &w).unwrap();
    assert!(activity.contains(&paths), "{activity}");
    // Beside the regexp filter, not instead of it.
    assert!(activity.contains("regexp_extract(\"$path\""), "{activity}");
}

#[test]
fn path_ranges_of_a_per_account_trail_without_prefix_start_at_the_bucket() {
    let mut trail = trail();
    trail.org_id = None;
    trail.prefix = String::new();
    trail.regions = vec!["us-east-1".into()];
    let s = SqlSettings::new(&trail, &AthenaConfig::default()).unwrap();
    let w = Window::new(t("2024-03-01T10:00:00Z"), t("2024-03-01T11:00:00Z")).unwrap();
    let ranges = s.path_ranges(&account(), &w);
    assert_eq!(ranges.len(), 1);
    assert_eq!(
        ranges[0].from,
        "s3://org-trail-logs/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T1000Z"
    );
}

#[test]
fn bounds_inside_a_minute_round_up_like_the_delivery_filter() {
    let s = settings();
    // Start and end just before midnight: both round up to the next day's first minute.
    let w = Window::new(t("2024-03-01T23:59:30Z"), t("2024-03-02T23:59:30Z")).unwrap();
    let r = &s.path_ranges(&account(), &w)[0];
    assert!(
        r.from
            .ends_with("/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240302T0000Z"),
        "the lower bound stays in the first partition's folder: {}",
        r.from
    );
    assert!(
        r.until
            .ends_with("/us-east-1/2024/03/03/111122223333_CloudTrail_us-east-1_20240303T0000Z"),
        "the upper bound moves to its minute's folder: {}",
        r.until
    );
}

/// For windows with bounds on, inside and around minutes, at and across midnight, and longer
/// than a day, every object of every minute from a day before to a day after is in the ranges
/// exactly when the window holds its delivery minute: what the scan reads. Other accounts'
/// objects and unconfigured regions never are.
#[test]
fn path_ranges_hold_exactly_the_objects_delivered_in_the_window() {
    let s = settings();
    let windows = [
        ("2024-03-01T10:00:00Z", "2024-03-01T11:00:00Z"),
        ("2024-03-01T23:00:00Z", "2024-03-02T00:00:00Z"),
        ("2024-03-01T23:30:00Z", "2024-03-02T00:30:00Z"),
        ("2024-03-02T00:00:00Z", "2024-03-02T01:00:00Z"),
        ("2024-03-01T23:59:30Z", "2024-03-02T00:00:30Z"),
        ("2024-03-01T22:00:00Z", "2024-03-01T23:59:30Z"),
        ("2024-03-01T10:00:01Z", "2024-03-01T10:00:59Z"),
        ("2024-03-01T12:34:56Z", "2024-03-03T00:00:00Z"),
        ("2024-02-28T22:10:00Z", "2024-03-01T01:20:00Z"),
        ("2024-12-31T23:50:00Z", "2025-01-01T00:10:00Z"),
    ];
    for (start, end) in windows {
        let w = Window::new(t(start), t(end)).unwrap();
        let ranges = s.path_ranges(&account(), &w);
        let mut minute = w
            .start
            .floor_to(Span::days(1))
            .saturating_sub(Span::days(1));
        let last = w.end.saturating_add(Span::days(1));
        let mut inside = 0;
        while minute < last {
            for region in ["us-east-1", "eu-west-1"] {
                let path = object_path("111122223333", region, minute);
                assert_eq!(
                    in_ranges(&ranges, &path),
                    w.contains(minute),
                    "{path} in {w}"
                );
                inside += usize::from(w.contains(minute));
                assert!(!in_ranges(
                    &ranges,
                    &object_path("444455556666", region, minute)
                ));
            }
            assert!(!in_ranges(
                &ranges,
                &object_path("111122223333", "us-west-2", minute)
            ));
            minute = minute.saturating_add(Span::minutes(1));
        }
        assert!(inside > 0 || w.length() < Span::minutes(1), "{w}");
    }
}
