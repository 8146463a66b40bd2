//! The event catalog (list, create, edit, archive) and API tokens.

use super::{page, page_with, redirect, when, Admin, Chrome, ConsoleError, Form, Posted};
use crate::db::EventType;
use crate::domain::time::now_ms;
use crate::domain::validate::{is_valid_event_type, too_deep, MAX_JSON_DEPTH};

use crate::http::Data;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

pub struct TypeRow {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    pub has_schema: bool,
}

#[derive(Template)]
#[template(path = "admin/catalog.html")]
struct CatalogPage {
    chrome: Chrome,
    groups: Vec<super::endpoints::Group<TypeRow>>,
    count: usize,
    /// The new-event-type form, refilled after an error.
    form: TypeForm,
}

/// The event type form's values and its errors, field by field.
#[derive(Default)]
pub struct TypeForm {
    pub name: String,
    pub description: String,
    pub group: String,
    pub example: String,
    pub deprecated: bool,
    pub name_error: Option<String>,
    pub description_error: Option<String>,
    pub group_error: Option<String>,
    pub example_error: Option<String>,
}

impl TypeForm {
    fn from_type(t: &EventType) -> TypeForm {
        let example = example_of(t.schemas.as_ref())
            .and_then(|v| serde_json::to_string_pretty(v).ok())
            .unwrap_or_default();
        TypeForm {
            name: t.name.clone(),
            description: t.description.clone(),
            group: t.group_name.clone().unwrap_or_default(),
            example,
            deprecated: t.deprecated,
            ..TypeForm::default()
        }
    }

    fn parse(form: &Form, name: &str) -> TypeForm {
        TypeForm {
            name: name.to_owned(),
            description: form.get("description").to_owned(),
            group: form.get("group").to_owned(),
            example: form.get("example").to_owned(),
            deprecated: form.get("deprecated") == "1",
            ..TypeForm::default()
        }
    }

    /// Checks the fields by the catalog's rules (`service::event_types`, as the API does);
    /// returns the example payload (if any) when all are valid.
    fn validate(&mut self) -> Option<Option<serde_json::Value>> {
        use crate::service::event_types as rules;
        let shown = |e: rules::FieldError| Some(sentence(&e.msg));
        self.name_error = rules::check_name(&self.name).err().and_then(shown);
        self.description_error = rules::check_description(&self.description)
            .err()
            .and_then(shown);
        self.group_error = rules::check_group((!self.group.is_empty()).then_some(&*self.group))
            .err()
            .and_then(shown);
        let example = match self.example.as_str() {
            "" => None,
            text if text.len() > 256 * 1024 => {
                self.example_error = Some("The example is larger than 256 KiB.".into());
                None
            }
            text => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(_) if too_deep(text) => {
                    self.example_error = Some(format!(
                        "The example nests more than {MAX_JSON_DEPTH} levels of arrays and objects."
                    ));
                    None
                }
                Ok(v) if v.is_object() => Some(v),
                Ok(_) => {
                    self.example_error =
                        Some("The example must be a JSON object, like {\"id\": 1}.".into());
                    None
                }
                Err(e) => {
                    self.example_error = Some(format!("This is not valid JSON: {e}."));
                    None
                }
            },
        };
        let ok = self.name_error.is_none()
            && self.description_error.is_none()
            && self.group_error.is_none()
            && self.example_error.is_none();
        ok.then_some(example)
    }
}

/// A rule's message as the console shows it: a sentence.
fn sentence(msg: &str) -> String {
    let mut chars = msg.chars();
    chars.next().map_or_else(String::new, |first| {
        format!("{}{}.", first.to_uppercase(), chars.as_str())
    })
}

/// The first example payload of an event type's schemas (Svix's `{"1": {"examples": [...]}}`).
fn example_of(schemas: Option<&serde_json::Value>) -> Option<&serde_json::Value> {
    schemas?
        .as_object()?
        .values()
        .find_map(|s| s.get("examples")?.get(0))
}

/// The schemas with their first example replaced (or removed when `example` is None); a
/// schema that held nothing but our example goes with it.
fn with_example(
    schemas: Option<serde_json::Value>,
    example: Option<serde_json::Value>,
) -> Option<serde_json::Value> {
    use serde_json::{json, Value};
    let mut map = match schemas {
        Some(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let version = map.keys().next().cloned().unwrap_or_else(|| "1".to_owned());
    let schema = map.entry(version.clone()).or_insert_with(|| json!({}));
    if let Value::Object(s) = schema {
        let mut examples = match s.remove("examples") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        match example {
            Some(e) if examples.is_empty() => examples.push(e),
            Some(e) => examples[0] = e,
            None if !examples.is_empty() => {
                examples.remove(0);
            }
            None => {}
        }
        if !examples.is_empty() {
            s.insert("examples".into(), Value::Array(examples));
        }
        if s.is_empty() {
            map.remove(&version);
        }
    }
    (!map.is_empty()).then_some(Value::Object(map))
}

async fn catalog_page(
    st: &Data,
    chrome: Chrome,
    status: StatusCode,
    form: TypeForm,
) -> Result<HttpResponse, ConsoleError> {
    let types = super::endpoints::all_event_types(st, true).await?;
    let count = types.len();
    let groups = super::endpoints::grouped(types, |t| TypeRow {
        has_schema: t.schemas.is_some(),
        name: t.name,
        description: t.description,
        archived: t.archived,
        deprecated: t.deprecated,
    });
    page_with(
        status,
        &CatalogPage {
            chrome,
            groups,
            count,
            form,
        },
    )
}

pub async fn event_catalog(
    st: Data,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let chrome = admin.chrome_with_notice("catalog", &req);
    catalog_page(&st, chrome, StatusCode::OK, TypeForm::default()).await
}

/// `POST /admin/event-types`: a new event type (an archived one of that name comes back).
pub async fn create_event_type(
    st: Data,
    Posted { admin, form }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let mut f = TypeForm::parse(&form, form.get("name"));
    let Some(example) = f.validate() else {
        let chrome = admin.chrome("catalog");
        return catalog_page(&st, chrome, StatusCode::UNPROCESSABLE_ENTITY, f).await;
    };
    let now = now_ms();
    let t = EventType {
        name: f.name.clone(),
        description: f.description.clone(),
        group_name: (!f.group.is_empty()).then(|| f.group.clone()),
        schemas: with_example(None, example),
        feature_flags: None,
        archived: false,
        deprecated: f.deprecated,
        created_at: now,
        updated_at: now,
    };
    if let Err(e) = crate::service::event_types::check(&t) {
        f.example_error = Some(sentence(&e.msg));
        let chrome = admin.chrome("catalog");
        return catalog_page(&st, chrome, StatusCode::UNPROCESSABLE_ENTITY, f).await;
    }
    let created = crate::service::event_types::create(&st.store, t)
        .await?
        .is_some();
    if !created {
        f.name_error = Some("An event type with this name already exists.".into());
        let chrome = admin.chrome("catalog");
        return catalog_page(&st, chrome, StatusCode::UNPROCESSABLE_ENTITY, f).await;
    }
    Ok(redirect("/admin/event-types?ok=type-created"))
}

#[derive(Template)]
#[template(path = "admin/event_type.html")]
struct EditTypePage {
    chrome: Chrome,
    form: TypeForm,
    archived: bool,
}

/// An event type's page with a confirmation notice.
fn type_link(name: &str, ok: &str) -> String {
    let name: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    format!("/admin/event-types/{name}?ok={ok}")
}

async fn find_type(st: &Data, req: &HttpRequest) -> Result<EventType, ConsoleError> {
    let name = req.match_info().get("name").unwrap_or_default().to_owned();
    if !is_valid_event_type(&name) {
        return Err(ConsoleError::NotFound("event type"));
    }
    st.store
        .event_type(&name)
        .await?
        .ok_or(ConsoleError::NotFound("event type"))
}

/// `GET /admin/event-types/{name}`: the edit form.
pub async fn edit_event_type(
    st: Data,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let t = find_type(&st, &req).await?;
    page(&EditTypePage {
        chrome: admin.chrome_with_notice("catalog", &req),
        form: TypeForm::from_type(&t),
        archived: t.archived,
    })
}

/// `POST /admin/event-types/{name}`: saves description, group, example and deprecation.
pub async fn update_event_type(
    st: Data,
    req: HttpRequest,
    Posted { admin, form }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let t = find_type(&st, &req).await?;
    let mut f = TypeForm::parse(&form, &t.name);
    let Some(example) = f.validate() else {
        return page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &EditTypePage {
                chrome: admin.chrome("catalog"),
                form: f,
                archived: t.archived,
            },
        );
    };
    let link = type_link(&t.name, "type-saved");
    let archived = t.archived;
    let updated = EventType {
        description: f.description.clone(),
        group_name: (!f.group.is_empty()).then(|| f.group.clone()),
        schemas: with_example(t.schemas.clone(), example),
        deprecated: f.deprecated,
        updated_at: now_ms(),
        ..t
    };
    if let Err(e) = crate::service::event_types::check(&updated) {
        f.example_error = Some(sentence(&e.msg));
        return page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &EditTypePage {
                chrome: admin.chrome("catalog"),
                form: f,
                archived,
            },
        );
    }
    crate::service::event_types::update(&st.store, updated).await?;
    Ok(redirect(&link))
}

/// `POST /admin/event-types/{name}/archive`: archives (`archive=1`) or restores it.
pub async fn archive_event_type(
    st: Data,
    req: HttpRequest,
    Posted { form, .. }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let t = find_type(&st, &req).await?;
    let archive = form.get("archive") == "1";
    let link = type_link(
        &t.name,
        if archive {
            "type-archived"
        } else {
            "type-restored"
        },
    );
    let updated = EventType {
        archived: archive,
        updated_at: now_ms(),
        ..t
    };
    crate::service::event_types::update(&st.store, updated).await?;
    Ok(redirect(&link))
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
    let list = st.store.tokens().await?;
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

pub async fn api_tokens(
    st: Data,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
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
    Posted { admin, form }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let name = form.get("name").to_owned();
    if let Err(why) = crate::service::tokens::check_name(&name) {
        return page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &TokensPage {
                chrome: admin.chrome("tokens"),
                tokens: token_rows(&st).await?,
                name,
                name_error: Some(why.into()),
                created: None,
            },
        );
    }
    let token = crate::service::tokens::create(&st.store, &name, now_ms()).await?;
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
    _post: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let id = super::path(&req, "token_id")?;
    if !id.starts_with("tok_") {
        return Err(ConsoleError::NotFound("token"));
    }
    let n = crate::service::tokens::revoke(&st.store, id, now_ms()).await?;
    if n == 0 {
        return Err(ConsoleError::NotFound("token"));
    }
    st.tokens.clear();
    Ok(redirect("/admin/tokens?ok=token-revoked"))
}
