//! hookbox: a self-hosted webhook sender in one binary with one SQLite file.

pub mod alerts;
pub mod app;
pub mod cli;
pub mod config;
pub mod db;
pub mod delivery;
pub mod domain;
pub mod housekeeping;
pub mod http;
pub mod main_key;
pub mod metrics;
pub mod operational;
pub mod service;
pub mod tasks;
pub mod tls;
