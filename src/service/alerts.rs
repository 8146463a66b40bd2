//! Alert recipients: who hears about failing webhooks (the operator's, about every
//! application, and each application's own), added and removed the same way from the API,
//! the console and the portal.

use crate::db::{DbResult, Recipient, Store};
use crate::domain::alerts::{check_address, stored_rules, Channel, Rule};
use crate::domain::ids;
use crate::service::input::FieldError;

/// A recipient as asked for: checked, its rules known.
#[derive(Debug, Clone)]
pub struct RecipientInput {
    pub channel: Channel,
    pub address: String,
    pub rules: Vec<Rule>,
}

/// Most recipients one scope (an application, or the operator) may have.
pub const MAX_RECIPIENTS: usize = 20;

impl RecipientInput {
    /// Checks a recipient: `channel` (`email` by default), its address, and its rules (every
    /// rule when none is named).
    pub fn parse(
        channel: Option<&str>,
        address: &str,
        rules: Option<&[String]>,
    ) -> Result<RecipientInput, FieldError> {
        let channel = match channel {
            None => Channel::Email,
            Some(c) => Channel::parse(c)
                .ok_or_else(|| FieldError::new(&["channel"], "channel must be email or chat"))?,
        };
        let address = address.trim();
        if address.len() > 1000 {
            return Err(FieldError::new(
                &["address"],
                "address is longer than 1000 characters",
            ));
        }
        super::input::check_text(&["address"], address)?;
        check_address(channel, address).map_err(|e| FieldError::new(&["address"], e))?;
        let rules = match rules {
            None => Rule::ALL.to_vec(),
            Some(names) => {
                let mut rules = Vec::new();
                for n in names {
                    let r = Rule::parse(n).ok_or_else(|| {
                        FieldError::new(
                            &["rules"],
                            format!(
                                "unknown rule `{n}`; the rules are: {}",
                                stored_rules(&Rule::ALL).replace(',', ", ")
                            ),
                        )
                    })?;
                    if !rules.contains(&r) {
                        rules.push(r);
                    }
                }
                if rules.is_empty() {
                    return Err(FieldError::new(&["rules"], "name at least one rule"));
                }
                rules
            }
        };
        Ok(RecipientInput {
            channel,
            address: address.to_owned(),
            rules,
        })
    }
}

/// Why a recipient was not added.
#[derive(Debug)]
pub enum NotAdded {
    Invalid(FieldError),
    /// The address gets alerts already, or the scope has `MAX_RECIPIENTS`.
    Taken(String),
    Db(crate::db::DbError),
}

impl From<crate::db::DbError> for NotAdded {
    fn from(e: crate::db::DbError) -> Self {
        NotAdded::Db(e)
    }
}

/// Adds a recipient to application `app_id` (or the operator's, `None`); `source` says where
/// it was set (`api`, `console`, `portal`). The same address and channel twice is refused.
pub async fn add(
    store: &Store,
    app_id: Option<&str>,
    input: RecipientInput,
    source: &str,
    now: i64,
) -> Result<Recipient, NotAdded> {
    let existing = store.alert_recipients(app_id.map(str::to_owned)).await?;
    // Email addresses compare without case; a chat URL's token is case-sensitive.
    let same = |r: &Recipient| {
        r.channel == input.channel.name()
            && match input.channel {
                Channel::Email => r.address.eq_ignore_ascii_case(&input.address),
                Channel::Chat => r.address == input.address,
            }
    };
    if existing.iter().any(same) {
        return Err(NotAdded::Taken(format!(
            "{} gets alerts already",
            input.address
        )));
    }
    if existing.len() >= MAX_RECIPIENTS {
        return Err(NotAdded::Taken(format!(
            "there are {MAX_RECIPIENTS} recipients already, as many as may be"
        )));
    }
    let r = Recipient {
        id: ids::new_id(ids::RECIPIENT),
        app_id: app_id.map(str::to_owned),
        channel: input.channel.name().into(),
        address: input.address,
        rules: stored_rules(&input.rules),
        source: source.into(),
        created_at: now,
    };
    match store.add_alert_recipient(r.clone()).await {
        Ok(()) => Ok(r),
        // Added meanwhile by another request.
        Err(crate::db::DbError::Conflict(why)) => Err(NotAdded::Taken(why)),
        Err(e) => Err(e.into()),
    }
}

/// Removes recipient `id` of application `app_id` (or the operator's); `false` when it is
/// not one of theirs. Recipients from configuration are removed there, not here.
pub async fn remove(store: &Store, app_id: Option<&str>, id: &str) -> DbResult<bool> {
    match store.alert_recipient(id).await? {
        Some(r) if r.app_id.as_deref() == app_id && r.source != "config" => {
            store.delete_alert_recipient(id).await
        }
        _ => Ok(false),
    }
}
