//! Applications.

use crate::db::{App, DbResult, Store};
use crate::delivery::Dispatcher;

/// Deletes an application with its endpoints, messages and their history; the endpoints'
/// cached sending details go too.
pub async fn delete(store: &Store, dispatcher: &Dispatcher, app: &App) -> DbResult<()> {
    let gone = store.delete_app(&app.id).await?;
    for ep in gone {
        dispatcher.endpoint_changed(&ep);
    }
    Ok(())
}
