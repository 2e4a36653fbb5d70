//! `users/` (register), `users/activation/`, `jwt/create/` and `jwt/refresh/`: throttled here,
//! answered by the origin with the body as the client sent it.

use shared::internal::InternalRoute;
use shared::signing::Identity;

use super::{Answered, Counted, Flow};
use crate::ports::Ports;
use crate::routes::Route;

impl<P: Ports> Flow<'_, P> {
    pub(super) async fn forward(&self) -> Answered {
        self.throttle(Counted::Client).await?;
        let (_, bytes) = self.json_body()?;
        let internal = match self.route {
            Route::Register => InternalRoute::Register,
            Route::Activation => InternalRoute::Activate,
            Route::JwtCreate => InternalRoute::Login,
            _ => InternalRoute::Refresh,
        };
        self.origin(internal, None, Identity::Anonymous, Some(bytes))
            .await
    }
}
