//! The web viewer at `/audit`: the audit log as a page an auditor reads, served by the same
//! router, with the same authorizer, scope, store readers and read records as the API.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /audit?q=&after=&before=` | one page of the log, newest first, grouped by day; `q` is the filter language |
//! | `POST /audit/sign-in`, `POST /audit/sign-out` | the token form's session (only with [`SignIn::Token`]) |
//! | `GET /audit/live?q=&after=` | Server-Sent Events of new entries, each a rendered row (the page's "Live" toggle) |
//! | `GET /audit/suggest` | completion data for the filter box: keys, resource types, actions, recent usernames |
//! | `GET /audit/assets/…` | the page's one script and one style sheet (content-addressed, cached for a year) |
//!
//! Everything is rendered on the server from compile-time checked templates (askama, which
//! escapes every value), so the page works without JavaScript: the filter, the quick filters
//! and the Newer/Older links are plain forms and links, and an entry's details are a
//! `<details>` element. The script adds completion, local times, day groups in the local
//! time zone, and live updates. Every answer carries a strict Content-Security-Policy (no
//! inline script or style, no framing).
//!
//! Owners also see an integrity line over the list: what the latest verification of the log
//! ([`AuditApi::verify`](crate::AuditApi::verify), an owner's `GET /api/v2/audit/verify`, or
//! `audit serve --verify-every`) found — "Integrity: verified up to #N at T", the first bad
//! event, or "not verified since the server started".
//!
//! Who may read is decided by the application's [`Authorizer`](crate::Authorizer) on every
//! request, exactly as for the API. [`SignIn`] says what a signed-out visitor sees: the token
//! form of `audit serve`, or a pointer to the application's own sign-in.

mod assets;
mod changes;
mod entry;
mod html;
mod links;
mod live;
mod page;
mod quick;
mod session;
mod suggest;
mod user_agent;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use axum::routing::{get, post};

use crate::api::AuditApi;

/// The viewer's page.
pub const VIEWER_PATH: &str = "/audit";
/// Where the token form posts.
pub const SIGN_IN_PATH: &str = "/audit/sign-in";
/// Where the sign-out button posts.
pub const SIGN_OUT_PATH: &str = "/audit/sign-out";
/// The viewer's live stream: rendered rows as Server-Sent Events.
pub const LIVE_PATH: &str = "/audit/live";
/// Completion data for the filter box.
pub const SUGGEST_PATH: &str = "/audit/suggest";

/// Entries per page when not configured.
const DEFAULT_PAGE_SIZE: usize = 50;

/// The Content-Security-Policy of every viewer answer: nothing but this origin's own files,
/// no inline script or style, no plugins, no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// How the viewer signs people in and how it is reached. Set with
/// [`AuditApiBuilder::viewer`](crate::AuditApiBuilder::viewer).
///
/// ```
/// use audit_http::{SignIn, Transport, Viewer};
///
/// // `audit serve`: a token form, plain HTTP.
/// let served = Viewer::token_sign_in();
/// // An application behind a TLS-terminating proxy, with its own sign-in page.
/// let mounted = Viewer::default()
///     .sign_in(SignIn::Application { link: Some("/login?next=/audit".into()) })
///     .transport(Transport::Proxy);
/// # let _ = (served, mounted);
/// ```
#[derive(Debug, Clone)]
pub struct Viewer {
    pub(crate) sign_in: SignIn,
    pub(crate) transport: Transport,
    pub(crate) page_size: usize,
}

impl Default for Viewer {
    /// The application's own sessions ([`SignIn::Application`] without a link), reached
    /// directly ([`Transport::Direct`]), 50 entries per page.
    fn default() -> Self {
        Viewer {
            sign_in: SignIn::Application { link: None },
            transport: Transport::Direct,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

impl Viewer {
    /// A viewer whose signed-out visitors get the token form ([`SignIn::Token`]).
    pub fn token_sign_in() -> Self {
        Viewer::default().sign_in(SignIn::Token)
    }

    /// What a signed-out visitor sees.
    pub fn sign_in(mut self, sign_in: SignIn) -> Self {
        self.sign_in = sign_in;
        self
    }

    /// How requests reach the server (for the `Secure` cookie flag and the sign-in's origin
    /// check).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Entries per page (1 to [`MAX_PAGE_SIZE`](audit_core::store::MAX_PAGE_SIZE); default 50).
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, audit_core::store::MAX_PAGE_SIZE);
        self
    }
}

/// What a signed-out visitor of `/audit` sees.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignIn {
    /// A form that asks for an API token (`<input name="token" type="password">`). The
    /// token is checked with the authorizer as `Authorization: Bearer TOKEN`; a good one is
    /// kept in the `audit_session` cookie (`HttpOnly`, `SameSite=Strict`, `Secure` over
    /// TLS), which the authorizer must accept — [`TokenAuthorizer`](crate::tokens::TokenAuthorizer)
    /// does. Sign-in and sign-out are `POST`s that must come from this origin.
    Token,
    /// The application signs people in with its own session, which its authorizer reads on
    /// every request; the viewer shows no form, only a "Sign in" link to `link` if given.
    Application {
        /// Where the application's sign-in page is (a path such as `/login`, or an
        /// `https://` URL).
        link: Option<String>,
    },
}

/// How requests reach the server. It decides whether the session cookie is `Secure` and
/// which origin a sign-in form must come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// Browsers talk to this server directly: HTTPS only if the request's URI says so
    /// (`audit serve` speaks plain HTTP). `X-Forwarded-*` headers are ignored: anyone can
    /// send them.
    Direct,
    /// Behind a reverse proxy that terminates TLS and sets `X-Forwarded-Proto` (and
    /// `X-Forwarded-Host` if it changes the host): those headers are trusted. Choose this
    /// only when every request comes through the proxy.
    Proxy,
    /// Always HTTPS (the application terminates TLS itself).
    Tls,
}

/// The viewer's routes, to merge into the audit router.
pub(crate) fn routes() -> Router<AuditApi> {
    Router::new()
        .route(VIEWER_PATH, get(page::list))
        .route(SIGN_IN_PATH, post(session::sign_in))
        .route(SIGN_OUT_PATH, post(session::sign_out))
        .route(LIVE_PATH, get(live::live))
        .route(SUGGEST_PATH, get(suggest::suggest))
        .route(assets::ROUTE, get(assets::serve))
        .layer(from_fn(security_headers))
}

/// The viewer's answers may only run this origin's own files and are never framed.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Same-origin requests keep their Referer and Origin (the sign-in check reads them);
    // no filter in a URL leaks to another site.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}
