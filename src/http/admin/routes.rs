//! Every console route: `/admin` and the customer portal under `/portal`.

use super::*;

/// A console page: methods it does not answer get an HTML 405.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// An application's Settings → Webhooks pages: served under `/admin` to admins and under
/// `/portal` to a customer's portal session for that application.
fn webhook_pages(scope: actix_web::Scope, form_limit: usize) -> actix_web::Scope {
    use web::{get, post};
    let ep = "/apps/{app_id}/endpoints/{endpoint_id}";
    scope
        .service(resource("/apps/{app_id}/webhooks").route(get().to(endpoints::list)))
        .service(
            resource("/apps/{app_id}/alerts")
                .route(get().to(notifications::app_page))
                .route(post().to(notifications::app_add)),
        )
        .service(
            resource("/apps/{app_id}/alerts/{recipient_id}/remove")
                .route(post().to(notifications::app_remove)),
        )
        .service(
            resource("/apps/{app_id}/webhooks/new")
                .route(get().to(endpoints::new_form))
                .route(post().to(endpoints::create)),
        )
        .service(resource(ep).route(get().to(endpoints::overview)))
        .service(resource(&format!("{ep}/logs")).route(get().to(endpoints::logs)))
        .service(
            resource(&format!("{ep}/settings"))
                .route(get().to(endpoints::edit_form))
                .route(post().to(endpoints::update)),
        )
        .service(
            resource(&format!("{ep}/replay"))
                .route(get().to(endpoints::replay))
                .route(post().to(endpoints::start_replay)),
        )
        .service(
            resource(&format!("{ep}/testing"))
                // The one form that carries a payload: as large as the API takes.
                .app_data(web::PayloadConfig::new(form_limit))
                .route(get().to(endpoints::testing))
                .route(post().to(endpoints::send_test)),
        )
        .service(
            resource(&format!("{ep}/attempts/{{msg_id}}/{{attempt_id}}"))
                .route(get().to(endpoints::attempt)),
        )
        .service(
            resource(&format!("{ep}/messages/{{msg_id}}/resend"))
                .route(post().to(endpoints::resend)),
        )
        .service(resource(&format!("{ep}/secret")).route(post().to(endpoints::reveal_secret)))
        .service(
            resource(&format!("{ep}/secret/rotate")).route(post().to(endpoints::rotate_secret)),
        )
        .service(resource(&format!("{ep}/disable")).route(post().to(endpoints::disable)))
        .service(resource(&format!("{ep}/line")).route(post().to(endpoints::unblock)))
        .service(
            resource(&format!("{ep}/delete"))
                .route(get().to(endpoints::confirm_delete))
                .route(post().to(endpoints::delete)),
        )
        .service(
            resource(&format!("{ep}/enable"))
                .route(get().to(endpoints::confirm_enable))
                .route(post().to(endpoints::enable)),
        )
        .default_service(web::to(not_found))
}

/// Registers every console route: `/admin` and the customer portal under `/portal`.
pub fn routes(cfg: &mut web::ServiceConfig, form_limit: usize) {
    use web::{get, post};
    let admin = web::scope("/admin")
        .service(resource("").route(get().to(dashboard::show)))
        .service(resource("/static/{file:.*}").route(get().to(assets::serve)))
        .service(
            resource("/login")
                .route(get().to(auth::login_form))
                .route(post().to(auth::login)),
        )
        .service(resource("/logout").route(post().to(auth::logout)))
        .service(
            resource("/setup")
                .route(get().to(auth::setup_form))
                .route(post().to(auth::setup)),
        )
        .service(
            resource("/event-types")
                .route(get().to(catalog::event_catalog))
                .route(post().to(catalog::create_event_type)),
        )
        .service(
            resource("/event-types/{name}")
                .route(get().to(catalog::edit_event_type))
                .route(post().to(catalog::update_event_type)),
        )
        .service(
            resource("/event-types/{name}/archive").route(post().to(catalog::archive_event_type)),
        )
        .service(
            resource("/tokens")
                .route(get().to(catalog::api_tokens))
                .route(post().to(catalog::create_token)),
        )
        .service(resource("/tokens/{token_id}/revoke").route(post().to(catalog::revoke_token)))
        .service(resource("/tasks").route(get().to(tasks::show)))
        .service(resource("/notifications").route(get().to(notifications::show)))
        .service(resource("/notifications/recipients").route(post().to(notifications::add)))
        .service(
            resource("/notifications/recipients/{recipient_id}/remove")
                .route(post().to(notifications::remove)),
        )
        .service(resource("/notifications/test").route(post().to(notifications::test)))
        .service(
            resource("/apps")
                .route(get().to(apps::list))
                .route(post().to(apps::create)),
        )
        .service(resource("/apps/{app_id}").route(get().to(apps::open)))
        .service(resource("/operational").route(get().to(apps::operational)))
        .service(
            resource("/apps/{app_id}/settings")
                .route(get().to(apps::settings))
                .route(post().to(apps::rename)),
        )
        .service(
            resource("/apps/{app_id}/delete")
                .route(get().to(apps::confirm_delete))
                .route(post().to(apps::delete)),
        )
        .service(
            resource("/apps/{app_id}/portal")
                .route(get().to(portal::links))
                .route(post().to(portal::create)),
        )
        .service(
            resource("/apps/{app_id}/portal/{link_id}/revoke").route(post().to(portal::revoke)),
        );
    let portal = webhook_pages(
        web::scope(PORTAL_ROOT).service(resource("/open/{token}").route(get().to(portal::open))),
        form_limit,
    )
    // Portal pages are made to be embedded in the operator's own product.
    .wrap_fn(|req, srv| {
        use actix_web::dev::Service;
        let fut = srv.call(req);
        async {
            let res = fut.await?;
            // Error pages in the portal don't point at the admin console.
            let shown = res.response().extensions().get::<Shown>().cloned();
            let mut res = match shown {
                Some(s) => res.map_body(|head, _| {
                    let page = ErrorPage {
                        status: head.status.as_u16(),
                        title: s.title,
                        message: s.message,
                        back: None,
                    };
                    actix_web::body::EitherBody::right(actix_web::body::BoxBody::new(page.html()))
                }),
                None => res.map_into_left_body(),
            };
            res.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                header::HeaderValue::from_static(PORTAL_CSP),
            );
            Ok(res)
        }
    });
    cfg.service(webhook_pages(admin, form_limit))
        .service(portal);
}

async fn method_not_allowed() -> Result<HttpResponse, ConsoleError> {
    Err(ConsoleError::MethodNotAllowed)
}

async fn not_found() -> Result<HttpResponse, ConsoleError> {
    Err(ConsoleError::NotFound("page"))
}
