//! Background activity: what the organisation does every day, with the rhythm of real work
//! (people on weekdays in office hours, CI on pushes, nightly jobs at fixed times, agents and
//! AWS services around the clock).
//!
//! Each persona lives in one of the files below and draws from its own random stream, so the
//! personas are independent of each other and of the order they run in.

mod automation;
mod ci;
mod jobs;
mod people;
mod services;

pub use ci::start_run;

use crate::cloudtrail::{Span, Timestamp};

use super::event::{Call, Event, Kind};
use super::identity::Actor;
use super::org::Org;
use super::rng::Rng;

/// Where routine events are collected, and the period they may fall in.
pub struct Ctx<'a> {
    pub org: &'a Org,
    seed: u64,
    /// First event time generated (before the history, so late deliveries exist from the start).
    pub from: Timestamp,
    /// Events at or after this time have not happened yet.
    pub to: Timestamp,
    pub events: Vec<Event>,
}

impl<'a> Ctx<'a> {
    pub fn new(org: &'a Org, seed: u64, from: Timestamp, to: Timestamp) -> Self {
        Ctx {
            org,
            seed,
            from,
            to,
            events: Vec::new(),
        }
    }

    /// The random stream of one persona.
    pub fn rng(&self, label: &str) -> Rng {
        Rng::stream(self.seed, label)
    }

    /// Records a routine call if it happened inside the generated period.
    pub fn emit(&mut self, call: Call, actor: &Actor, rng: &mut Rng) {
        self.emit_as(call, actor, rng, Kind::Routine);
    }

    /// Records a call of the given kind if it happened inside the generated period.
    pub fn emit_as(&mut self, call: Call, actor: &Actor, rng: &mut Rng, kind: Kind) {
        let inside = call.time() >= self.from && call.time() < self.to;
        // The draw is made either way so a persona's stream does not depend on the period.
        let event = call.emit(self.org, actor, rng, kind);
        if inside {
            self.events.push(event);
        }
    }

    /// Midnight of every day that overlaps the period.
    pub fn days(&self) -> impl Iterator<Item = Timestamp> {
        let first = self.from.day_start().unix();
        let to = self.to.unix();
        (first..to).step_by(86_400).map(Timestamp::from_unix)
    }

    /// `phase`, `phase + period`, ... up to the end of the period, starting a day before it
    /// so that schedules longer than the gap to the first tick still cover its start. `phase`
    /// is an offset from midnight, so the schedule does not depend on where the period starts.
    pub fn every(&self, period: Span, phase: Span) -> impl Iterator<Item = Timestamp> {
        let step = period.as_seconds().max(1);
        let origin = self.from.day_start().unix() - 86_400 + phase.as_seconds();
        let to = self.to.unix();
        (origin..to)
            .step_by(step as usize)
            .map(Timestamp::from_unix)
    }
}

/// 0 for Monday through 6 for Sunday (1970-01-01 was a Thursday).
pub fn weekday(t: Timestamp) -> i64 {
    (t.unix().div_euclid(86_400) + 3).rem_euclid(7)
}

pub fn is_workday(t: Timestamp) -> bool {
    weekday(t) < 5
}

pub fn at(day: Timestamp, h: i64, m: i64, s: i64) -> Timestamp {
    Timestamp::from_unix(day.unix() + h * 3600 + m * 60 + s)
}

pub fn plus(t: Timestamp, seconds: i64) -> Timestamp {
    Timestamp::from_unix(t.unix() + seconds)
}

/// One persona (or a few that belong together).
type Persona = fn(&mut Ctx);

/// Every persona, busiest first so the threads below finish together.
const PERSONAS: [Persona; 9] = [
    services::monitoring_vendor,
    automation::instances,
    services::config_recorder,
    ci::deployments,
    people::console_users,
    automation::lambdas,
    services::service_events,
    jobs::backup_user,
    jobs::billing_reporter,
];

/// Generates every persona's routine over `[from, to)`. Personas draw from their own streams,
/// so running them on several threads changes nothing but the order, which the caller sorts.
pub fn generate(org: &Org, seed: u64, from: Timestamp, to: Timestamp) -> Vec<Event> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let parts: Vec<Vec<Event>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut ctx = Ctx::new(org, seed, from, to);
                    for persona in PERSONAS.iter().skip(t).step_by(threads) {
                        persona(&mut ctx);
                    }
                    ctx.events
                })
            })
            .collect();
        // A panicking persona is a bug in the generator: pass it on rather than lose its part.
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    parts.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_knows_weekdays_and_weekends() {
        let monday = Timestamp::parse("2024-06-03T09:30:00Z").unwrap();
        assert_eq!(weekday(monday), 0);
        assert!(is_workday(monday));
        let sunday = Timestamp::parse("2024-06-09T23:59:59Z").unwrap();
        assert_eq!(weekday(sunday), 6);
        assert!(!is_workday(sunday));
    }
}
