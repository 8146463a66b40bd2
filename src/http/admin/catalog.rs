//! The event catalog (read-only here: event types are managed through the API) and API tokens.

use super::{admin, admin_post, page, page_with, redirect, when, Chrome, ConsoleError};
use crate::db::{event_types, tokens, PageQuery};
use crate::domain::{ids, time::now_ms};
use crate::http::auth::{generate_token, hash_token};
use crate::http::Data;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

pub struct TypeRow {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    pub has_schema: bool,
}

pub struct TypeGroup {
    pub name: String,
    pub types: Vec<TypeRow>,
}

#[derive(Template)]
#[template(path = "admin/catalog.html")]
struct CatalogPage {
    chrome: Chrome,
    groups: Vec<TypeGroup>,
    count: usize,
}

pub async fn event_catalog(st: Data, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let admin = admin(&st, &req).await?;
    let q = PageQuery {
        limit: 10_000,
        ..PageQuery::default()
    };
    let types = st
        .db
        .read(move |c| event_types::list(c, &q, true))
        .await?
        .items;
    let count = types.len();
    let mut groups: Vec<TypeGroup> = Vec::new();
    for t in types {
        let group = super::endpoints::group_of(&t);
        let row = TypeRow {
            has_schema: t.schemas.is_some(),
            name: t.name,
            description: t.description,
            archived: t.archived,
            deprecated: t.deprecated,
        };
        match groups.iter_mut().find(|g| g.name == group) {
            Some(g) => g.types.push(row),
            None => groups.push(TypeGroup {
                name: group,
                types: vec![row],
            }),
        }
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    page(&CatalogPage {
        chrome: admin.chrome("catalog"),
        groups,
        count,
    })
}

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenRow>,
    name: String,
    name_error: Option<String>,
    /// A token just created: shown this once.
    created: Option<String>,
}

async fn token_rows(st: &Data) -> Result<Vec<TokenRow>, ConsoleError> {
    let list = st.db.read(tokens::list).await?;
    Ok(list
        .into_iter()
        .rev()
        .map(|t| TokenRow {
            created: when(t.created_at),
            last_used: t.last_used_at.map_or_else(|| "never".to_owned(), when),
            revoked: t.revoked_at.is_some(),
            id: t.id,
            name: t.name,
        })
        .collect())
}

pub async fn api_tokens(st: Data, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let admin = admin(&st, &req).await?;
    let chrome = admin.chrome_with_notice("tokens", &req);
    page(&TokensPage {
        chrome,
        tokens: token_rows(&st).await?,
        name: String::new(),
        name_error: None,
        created: None,
    })
}

pub async fn create_token(
    st: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = admin_post(&st, &req, &body).await?;
    let name = form.get("name").to_owned();
    if name.is_empty() || name.chars().count() > 128 {
        return page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &TokensPage {
                chrome: admin.chrome("tokens"),
                tokens: token_rows(&st).await?,
                name,
                name_error: Some(
                    "name the token (1 to 128 characters), e.g. after what uses it".into(),
                ),
                created: None,
            },
        );
    }
    let token = generate_token();
    let (hash, n) = (hash_token(&token), name.clone());
    st.db
        .write(move |c| tokens::insert(c, &ids::new_id(ids::TOKEN), &n, &hash, now_ms()))
        .await?;
    page(&TokensPage {
        chrome: admin.chrome("tokens"),
        tokens: token_rows(&st).await?,
        name: String::new(),
        name_error: None,
        created: Some(token),
    })
}

pub async fn revoke_token(
    st: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    admin_post(&st, &req, &body).await?;
    let id = super::path(&req, "token_id")?.to_owned();
    if !id.starts_with("tok_") {
        return Err(ConsoleError::NotFound("token"));
    }
    let n = st
        .db
        .write(move |c| tokens::revoke(c, &id, now_ms()))
        .await?;
    if n == 0 {
        return Err(ConsoleError::NotFound("token"));
    }
    Ok(redirect("/admin/tokens?ok=token-revoked"))
}
