//! Background tasks: every bulk replay, with its progress.

use super::endpoints::TaskRow;
use super::{page, Admin, ConsoleError};
use crate::db::{PageQuery, TaskFilter};
use crate::http::Data;
use actix_web::HttpResponse;
use askama::Template;

#[derive(Template)]
#[template(path = "admin/tasks.html")]
struct TasksPage {
    chrome: super::Chrome,
    tasks: Vec<TaskRow>,
}

pub async fn show(st: Data, admin: Admin) -> Result<HttpResponse, ConsoleError> {
    let q = PageQuery {
        limit: 100,
        after: None,
        before: None,
        descending: true,
    };
    let tasks = st.store.tasks(&TaskFilter::default(), &q).await?;
    page(&TasksPage {
        chrome: admin.chrome("tasks"),
        tasks: tasks.items.into_iter().map(TaskRow::of).collect(),
    })
}
