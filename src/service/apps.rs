//! Applications.

use crate::db::apps::App;
use crate::db::{apps, endpoints, Db, DbResult};
use crate::delivery::Dispatcher;

/// Deletes an application with its endpoints, messages and their history; the endpoints'
/// cached sending details go too.
pub async fn delete(db: &Db, dispatcher: &Dispatcher, app: &App) -> DbResult<()> {
    let (id, key) = (app.id.clone(), db.main_key.clone());
    let gone = db
        .write(move |c| {
            let eps = endpoints::all_in_app(c, &key, &id)?;
            apps::delete(c, &id)?;
            Ok(eps)
        })
        .await?;
    for ep in gone {
        dispatcher.endpoint_changed(&ep.id);
    }
    Ok(())
}
