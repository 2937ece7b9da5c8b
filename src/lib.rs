//! trailhound: hunts AWS CloudTrail for behaviour that is new for the principal doing it.
//!
//! The modules follow the data path (see DESIGN.md): `muster` → `hunt` → `source`, `detect` →
//! `baseline`, `alert`, `window`, `config` → `cloudtrail`.

pub mod alert;
pub mod aws;
pub mod baseline;
pub mod cloudtrail;
pub mod config;
pub mod demo;
pub mod detect;
pub mod hunt;
pub mod muster;
pub mod source;
pub mod window;
