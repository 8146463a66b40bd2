//! Integration tests: one binary, the real server, real SQLite files, real HTTP.

mod support;

mod admin_auth;
mod admin_console;
mod alerts;
mod analytics;
mod api_apps;
mod api_errors;
mod api_health;
mod api_resources;
mod bulk_replay;
mod cli;
mod cluster;
mod copy;
mod crash;
mod delivery;
mod delivery_options;
mod delivery_pacing;
mod endpoint_policy;
mod expunge;
mod faults;
mod filters;
mod hostile;
mod layers;
mod listener;
mod observability;
mod openapi;
mod operational;
mod ordered;
mod portal;
mod retention;
mod schema;
mod secrets;
mod security;
mod signatures;
mod tls;
