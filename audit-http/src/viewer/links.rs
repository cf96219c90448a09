//! The viewer's URLs: a page of a query (`/audit?q=…`), and the links that filter by what an
//! entry shows — its user, its resource, its request — built from the query the page shows,
//! so that a click changes one term and keeps the others. Queries are written by the filter
//! language itself ([`Filter::to_query_string`]), which quotes values that need it.

use audit_core::AuditEvent;
use audit_core::query::{Filter, UserMatch};
use audit_core::store::Cursor;

use super::VIEWER_PATH;
use crate::routes::EXPORT_PATH;

/// `/audit?q=…` with `extra` parameters; just `/audit` for the empty query.
pub(crate) fn page_url(q: &str, extra: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if !q.is_empty() {
        query.append_pair("q", q);
    }
    for (k, v) in extra {
        query.append_pair(k, v);
    }
    let query = query.finish();
    if query.is_empty() {
        VIEWER_PATH.to_owned()
    } else {
        format!("{VIEWER_PATH}?{query}")
    }
}

/// The page of `filter`.
pub(crate) fn filter_url(filter: &Filter) -> String {
    page_url(&filter.to_query_string(), &[])
}

/// The page older than `cursor`.
pub(crate) fn older_url(q: &str, cursor: &Cursor) -> String {
    page_url(q, &[("after", &cursor.to_string())])
}

/// The page newer than `cursor`.
pub(crate) fn newer_url(q: &str, cursor: &Cursor) -> String {
    page_url(q, &[("before", &cursor.to_string())])
}

/// The export of everything `q` selects, in `format` (`csv` or `jsonl`).
pub(crate) fn export_url(q: &str, format: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("q", q);
    query.append_pair("format", format);
    format!("{EXPORT_PATH}?{}", query.finish())
}

/// Links that filter by a part of an entry, starting from the query a page shows.
pub(crate) struct Links<'a> {
    base: &'a Filter,
}

impl<'a> Links<'a> {
    pub(crate) fn new(base: &'a Filter) -> Self {
        Links { base }
    }

    /// The current query, narrowed to this user's events.
    pub(crate) fn user(&self, username: &str) -> String {
        filter_url(
            &self
                .base
                .clone()
                .with_username(UserMatch::Username(username.to_owned())),
        )
    }

    /// The current query, narrowed to this resource type.
    pub(crate) fn resource_type(&self, resource_type: &str) -> String {
        filter_url(&self.base.clone().with_resource_type(resource_type))
    }

    /// The current query, narrowed to this organization.
    pub(crate) fn organization(&self, organization: &str) -> String {
        filter_url(&self.base.clone().with_organization_id(organization))
    }

    /// Every event of one request.
    pub(crate) fn request(&self, request_id: uuid::Uuid) -> String {
        filter_url(&Filter::default().with_request_id(request_id))
    }

    /// The whole history of the event's resource: its type and id (or its name when it has
    /// no id), nothing else.
    pub(crate) fn history(&self, event: &AuditEvent) -> String {
        let mut filter = Filter::default();
        if !event.resource_type.is_empty() {
            filter = filter.with_resource_type(&event.resource_type);
        }
        if !event.resource_id.is_empty() {
            filter = filter.with_resource_id(&event.resource_id);
        } else if !event.resource_target.is_empty() {
            filter = filter.with_resource_target(&event.resource_target);
        }
        filter_url(&filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_urls_encode_the_query() {
        assert_eq!(page_url("", &[]), "/audit");
        assert_eq!(
            page_url("username:\"a b\" action:delete", &[("after", "1.x")]),
            "/audit?q=username%3A%22a+b%22+action%3Adelete&after=1.x"
        );
        assert_eq!(export_url("", "csv"), "/api/v2/audit/export?q=&format=csv");
    }

    #[test]
    fn links_change_one_term_and_quote_values() {
        let base = Filter::default().with_action("delete").with_username("me");
        let links = Links::new(&base);
        assert_eq!(
            links.user("<b>bob smith</b>"),
            page_url("action:delete username:\"<b>bob smith</b>\"", &[])
        );
        let event = AuditEvent::builder("write")
            .resource_type("workspace")
            .resource_id("7")
            .resource_target("dev")
            .build();
        assert_eq!(
            links.history(&event),
            page_url("resource_type:workspace resource_id:7", &[])
        );
        let unnamed = AuditEvent::builder("login")
            .resource_type("api_key")
            .build();
        assert_eq!(
            links.history(&unnamed),
            page_url("resource_type:api_key", &[])
        );
    }
}
