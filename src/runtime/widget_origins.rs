//! The origins the chat widget may run on, for answering CORS preflights.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use sea_orm::DatabaseConnection;
use tokio::sync::RwLock;

use crate::repo;

/// How long the set of origins answered in CORS preflights is cached.
const ORIGINS_TTL: Duration = Duration::from_secs(10);

/// Origins some active app allows, for answering CORS preflights. Refreshed every
/// [`ORIGINS_TTL`], and at once on this server when an app is created or revoked.
pub struct WidgetOrigins {
    db: DatabaseConnection,
    cache: RwLock<Option<(Instant, HashSet<String>)>>,
}

impl std::fmt::Debug for WidgetOrigins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WidgetOrigins").finish_non_exhaustive()
    }
}

impl WidgetOrigins {
    /// An empty cache over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            cache: RwLock::new(None),
        }
    }

    /// Whether some active app allows `origin`.
    pub async fn allows(&self, origin: &str) -> bool {
        if let Some((at, origins)) = &*self.cache.read().await
            && at.elapsed() < ORIGINS_TTL
        {
            return origins.contains(origin);
        }
        let origins: HashSet<String> = match repo::oauth_apps::all_active_origins(&self.db).await {
            Ok(rows) => rows
                .into_iter()
                .filter_map(|v| serde_json::from_value::<Vec<String>>(v).ok())
                .flatten()
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the widget origins");
                return false;
            }
        };
        let allowed = origins.contains(origin);
        *self.cache.write().await = Some((Instant::now(), origins));
        allowed
    }

    /// Forgets the cached set.
    pub async fn invalidate(&self) {
        *self.cache.write().await = None;
    }
}
