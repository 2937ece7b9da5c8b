//! The pattern matcher's behaviour: what it accepts, what it refuses, and that it stays linear.

use super::regex::{Regex, RegexError};

fn full(p: &str, t: &str) -> bool {
    Regex::new(p).unwrap().is_full_match(t)
}

fn search(p: &str, t: &str) -> bool {
    Regex::new(p).unwrap().is_match(t)
}

fn error(p: &str) -> RegexError {
    Regex::new(p).unwrap_err()
}

#[test]
fn full_match_needs_the_whole_value() {
    assert!(full("abc", "abc"));
    assert!(!full("abc", "xabc"));
    assert!(!full("abc", "abcx"));
    assert!(full("^abc$", "abc"));
    assert!(full(".*xlarge", "p2.xlarge"));
    assert!(!full("xlarge", "p2.xlarge"));
    assert!(full("", ""));
    assert!(!full("", "a"));
}

#[test]
fn search_finds_anywhere_and_honours_anchors() {
    assert!(search("xlarge", "p2.xlarge"));
    assert!(search("^p2", "p2.xlarge"));
    assert!(!search("^xlarge", "p2.xlarge"));
    assert!(search("large$", "p2.xlarge"));
    assert!(!search("p2$", "p2.xlarge"));
    assert!(search("", "anything"));
    assert!(!search("a|^b", "cb"));
    assert!(search("a|b$", "cb"));
}

#[test]
fn classes_escapes_and_dot() {
    assert!(full("[a-z0-9_]+", "abc_09"));
    assert!(!full("[a-z0-9_]+", "abc-09"));
    assert!(full("[^0-9]+", "abc"));
    assert!(!full("[^0-9]+", "ab1"));
    assert!(full(r"\d{3}-\w+\s\.", "123-ab_9 ."));
    assert!(!full(r"a\.b", "axb"));
    assert!(full("a.b", "axb"));
    assert!(!full("a.b", "a\nb"));
    assert!(full(r"[\d.]+", "10.0.0.1"));
    assert!(full("[]a]+", "]a]"));
    assert!(full("[a-]+", "a-a"));
    assert!(full(r"\D\W\S", "a-x"));
    assert!(!full(r"\D", "5"));
    assert!(full(r"\{\}\(\)\[\]\|\*\+\?\^\$\\", r"{}()[]|*+?^$\"));
}

#[test]
fn repetitions_and_counts() {
    assert!(full("a*", ""));
    assert!(full("a+", "aaa"));
    assert!(!full("a+", ""));
    assert!(full("ab?c", "ac"));
    assert!(full("ab?c", "abc"));
    assert!(full("a{3}", "aaa"));
    assert!(!full("a{3}", "aa"));
    assert!(full("a{2,4}", "aaaa"));
    assert!(!full("a{2,4}", "aaaaa"));
    assert!(full("a{2,}", "aaaaaaa"));
    assert!(!full("a{2,}", "a"));
    assert!(full("(ab){0,2}", "abab"));
    assert!(full("a*?b", "aab"));
    assert!(full("(a*)*b", "aaab"));
    assert!(full("(|a)+", "aa"));
}

#[test]
fn alternation_and_groups() {
    assert!(full("Stop|Delete", "Delete"));
    assert!(full("(Stop|Delete)Logging", "StopLogging"));
    assert!(!full("(Stop|Delete)Logging", "StartLogging"));
    assert!(full("(?:Access|Auth)Denied", "AccessDenied"));
    assert!(full("a|", ""));
    assert!(full(
        r"(Client\.)?(AccessDenied.*|UnauthorizedOperation|.*NotAuthorized.*)",
        "Client.UnauthorizedOperation"
    ));
}

#[test]
fn ignore_case_folds_literals_and_classes() {
    let r = Regex::with_case("console[a-z]+", true).unwrap();
    assert!(r.is_full_match("ConsoleLOGIN"));
    assert!(!Regex::new("console[a-z]+")
        .unwrap()
        .is_full_match("ConsoleLogin"));
    assert!(Regex::with_case("[A-Z]+", true)
        .unwrap()
        .is_full_match("abc"));
}

#[test]
fn non_ascii_text_is_matched_by_character() {
    assert!(full("é.ü", "éxü"));
    assert!(full(".{3}", "日本語"));
    assert!(Regex::with_case("ÉTÉ", true).unwrap().is_full_match("été"));
}

#[test]
fn errors_say_what_and_where() {
    let e = error("(abc");
    assert_eq!(e.position, 0);
    assert!(e.message.contains("never closed"), "{e}");
    let e = error("abc)");
    assert_eq!(e.position, 3);
    assert!(e.message.contains("no `(`"));
    assert_eq!(error("a**").position, 2);
    assert_eq!(error("*a").position, 0);
    assert_eq!(error("[a-").position, 0);
    assert!(error("[z-a]").message.contains("backwards"));
    assert!(error("a{101}").message.contains("above 100"));
    assert!(error("a{5,2}").message.contains("less than"));
    assert!(error("a{x}").message.contains("count like"));
    assert!(error(r"\b").message.contains("unsupported escape"));
    assert!(error("(?i)a").message.contains("only `(?:`"));
    assert!(error("abc\\").message.contains("lone"));
    assert!(error("{").message.contains("nothing to repeat"));
    assert!(error("^*").message.contains("cannot be repeated"));
    assert_eq!(
        error("ab(c").to_string(),
        "at character 3: this `(` is never closed"
    );
}

#[test]
fn hostile_patterns_are_refused_or_stay_linear() {
    assert!(error(&"a".repeat(1001)).message.contains("at most 1000"));
    assert!(error("((a{100}){100}){100}").message.contains("expands"));
    assert!(error(&format!("{}a{}", "(".repeat(40), ")".repeat(40)))
        .message
        .contains("nest deeper"));
    // Catastrophic for a backtracker; a Pike VM walks the input once.
    let evil = Regex::new("(a*)*(a|aa)*b").unwrap();
    assert!(!evil.is_full_match(&"a".repeat(5000)));
    assert!(!Regex::new("(a|a)*c").unwrap().is_match(&"a".repeat(5000)));
}
