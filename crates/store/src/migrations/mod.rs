//! The one migration set for SQLite and PostgreSQL (sea-orm-migration), run at start-up.
//!
//! Migrations are append-only: a committed migration file is never edited (CI runs
//! `scripts/check-migrations`); every schema change is a new file here, added at the end of
//! [`Migrator::migrations`].

use sea_orm_migration::prelude::*;

mod m20261120_000001_init;
mod m20261121_000001_foundation;
mod m20261122_000001_queue_stats;
mod m20261123_000001_identity;
mod m20261124_000001_agents;
mod m20261124_000002_campaigns;

/// All migrations, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261120_000001_init::Init),
            Box::new(m20261121_000001_foundation::Foundation),
            Box::new(m20261122_000001_queue_stats::QueueStats),
            Box::new(m20261123_000001_identity::Identity),
            Box::new(m20261124_000001_agents::Agents),
            Box::new(m20261124_000002_campaigns::Campaigns),
        ]
    }
}
