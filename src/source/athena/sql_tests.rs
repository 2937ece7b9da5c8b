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
