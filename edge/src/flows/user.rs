//! The Bearer routes: `me/` and `users/me/` (GET, PATCH, DELETE), `users/set_username/`,
//! `users/set_password/`, `sessions/` (list, end one, end the others), `logout/` and the admin
//! list `users/`.

use serde_json::Value;
use shared::internal::InternalRoute;
use shared::problem::Problem;
use shared::signing::SessionId;

use super::{Answered, Counted, Flow};
use crate::http::Reply;
use crate::ports::Ports;
use crate::routes::session_id;

impl<P: Ports> Flow<'_, P> {
    /// A Bearer route: the token verified and counted, then forwarded as `to` with the caller's
    /// identity, and with the JSON body when `body`.
    pub(super) async fn user(&self, to: InternalRoute, body: bool) -> Answered {
        let (user_id, identity) = self.bearer().await?;
        self.throttle(Counted::User(&user_id.to_string())).await?;
        let bytes = if body {
            Some(self.json_body()?.1)
        } else {
            None
        };
        match to {
            InternalRoute::RevokeSession => {
                // Not a session id: no session of anyone's, answered without asking.
                let id = session_id(&self.req.path)
                    .and_then(SessionId::parse)
                    .ok_or(Problem::NotFound)?;
                let query = format!("id={id}");
                self.origin(to, Some(&query), identity, bytes).await
            }
            InternalRoute::ListUsers => {
                let page = self
                    .origin(to, self.req.query.as_deref(), identity, bytes)
                    .await?;
                self.absolute_page_links(page)
            }
            _ => self.origin(to, None, identity, bytes).await,
        }
    }

    /// The origin gives `next`/`previous` as public paths; clients expect absolute URLs (DRF).
    fn absolute_page_links(&self, reply: Reply) -> Answered {
        if reply.status != 200 {
            return Ok(reply);
        }
        let mut page: Value = reply
            .json_body()
            .ok_or_else(|| self.server_error("origin page not JSON", "list users"))?;
        for key in ["next", "previous"] {
            if let Some(Value::String(link)) = page.get_mut(key) {
                if link.starts_with('/') {
                    *link = format!("{}{link}", self.req.public_base);
                }
            }
        }
        Ok(Reply::json(200, page))
    }
}
