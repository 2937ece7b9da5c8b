//! What every fuzz suite (tests/fuzz_*.rs) shares: the case count and seed it runs with, and
//! the thread stack it checks recursion on.

use proptest::test_runner::{Config as ProptestConfig, RngSeed};

/// `base` cases, times `TRAILHOUND_FUZZ_SCALE` when set. The inputs come from a fixed seed, so
/// that a CI failure is the same on every machine and every run; `TRAILHOUND_FUZZ_SEED` picks
/// another (a number, or `random`) to explore further. Failures are not written to a
/// regressions file in the tree: proptest prints the minimal failing input instead.
pub fn cases(base: u32) -> ProptestConfig {
    let scale = std::env::var("TRAILHOUND_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let seed = match std::env::var("TRAILHOUND_FUZZ_SEED").ok().as_deref() {
        Some("random") => RngSeed::Random,
        Some(n) => RngSeed::Fixed(
            n.parse()
                .expect("TRAILHOUND_FUZZ_SEED is a number or random"),
        ),
        None => RngSeed::Fixed(0x7e57_c0ff_ee00),
    };
    ProptestConfig {
        cases: base.saturating_mul(scale),
        failure_persistence: None,
        rng_seed: seed,
        ..ProptestConfig::default()
    }
}

/// Runs `f` on a thread with the stack the scan's worker threads get (Rust's 2 MiB default),
/// so a parser that recursed once per level would overflow here as it would there.
pub fn on_worker_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn_scoped(s, f)
            .expect("thread starts")
            .join()
            .expect("no panic")
    })
}
