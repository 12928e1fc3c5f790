//! The meta half of the emulator (to be written).

use axum::Router;

use crate::ctx::Ctx;

#[derive(Debug, Clone, Default)]
pub struct Config {}

pub fn router(_ctx: Ctx) -> Router {
    Router::new()
}
