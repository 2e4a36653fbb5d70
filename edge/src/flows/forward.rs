//! `users/` (register), `users/activation/`, `jwt/create/` and `jwt/refresh/`: throttled here,
//! answered by the origin with the body as the client sent it.

use shared::internal::InternalRoute;
use shared::signing::Identity;

use super::{Answered, Counted, Flow};
use crate::ports::Ports;

impl<P: Ports> Flow<'_, P> {
    pub(super) async fn forward(&self, to: InternalRoute) -> Answered {
        self.throttle(Counted::Client).await?;
        let (_, bytes) = self.json_body()?;
        self.origin(to, None, Identity::Anonymous, Some(bytes))
            .await
    }
}
