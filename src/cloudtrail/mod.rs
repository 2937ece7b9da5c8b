//! CloudTrail itself: records, principals, identifiers, object names and readers.
//! Imports nothing else of trailhound's; everything above builds on it.

pub mod envelope;
pub mod gunzip;
pub mod ids;
pub mod layout;
pub mod outcome;
pub mod principal;
pub mod reader;
pub mod record;
pub mod structure;
pub mod time;

pub use ids::{AccountId, Action, Region};
pub use outcome::Outcome;
pub use principal::{is_instance_session, IdentityType, NoPrincipal, Principal};
pub use record::Record;
pub use time::{Span, Timestamp};
