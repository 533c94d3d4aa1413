//! `writer_probe`: one row the group-commit writer rewrites to learn whether the store can
//! commit again after a failure (`/ready`).
use sea_orm::entity::prelude::*;

/// The probe row (`id` = 1).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "writer_probe")]
pub struct Model {
    /// Always 1.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// Time of the last probe, epoch ms.
    pub at: i64,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
