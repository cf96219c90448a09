//! The token form's session ([`SignIn::Token`]): `POST /audit/sign-in` checks a token with the
//! authorizer and keeps it in the `audit_session` cookie; `POST /audit/sign-out` drops it.
//!
//! The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page
//! sends it), `Path=/` (the page, its stream and the export links all carry it) and `Secure`
//! when the page is served over TLS ([`Transport`]). It lasts for the browser session. Both
//! forms are also refused unless the browser says they come from this origin
//! (`Sec-Fetch-Site`, `Origin`, else `Referer`), so another site cannot sign a visitor in or
//! out. A failed sign-in says only that the token was not accepted, whatever was wrong with
//! it.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::html::{self, Chrome, SignInPage};
use super::{SIGN_IN_PATH, SignIn, Transport, links};
use crate::api::{Access, AuditApi, READ};
use crate::params::MAX_Q_LEN;
use crate::routes::MAX_BODY;
use crate::tokens::{CODER_SESSION_HEADER, SESSION_COOKIE};

/// What a failed sign-in says, whatever was wrong with the token.
pub(crate) const NOT_ACCEPTED: &str =
    "That token was not accepted. Check that you pasted all of it, or ask for a new one.";

/// What a valid token without a reading role hears.
pub(crate) const NO_ROLE: &str =
    "That token may not read the audit log: reading it needs the owner role, or the auditor role.";

/// The longest token the form takes.
const MAX_TOKEN_LEN: usize = 4096;

/// Whether the request reached the server over TLS.
pub(crate) fn is_tls(parts: &Parts, transport: Transport) -> bool {
    match transport {
        Transport::Tls => true,
        Transport::Proxy => match forwarded(parts, "x-forwarded-proto") {
            Some(proto) => proto.eq_ignore_ascii_case("https"),
            None => parts.uri.scheme_str() == Some("https"),
        },
        Transport::Direct => parts.uri.scheme_str() == Some("https"),
    }
}

/// The first value of a proxy's `X-Forwarded-…` header.
fn forwarded<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    let value = parts.headers.get(name)?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    (!first.is_empty()).then_some(first)
}

/// This server's origin as the browser addressed it: `http://host:port`, lower-case.
fn own_origin(parts: &Parts, transport: Transport) -> Option<String> {
    let host = match transport {
        Transport::Proxy => forwarded(parts, "x-forwarded-host"),
        _ => None,
    }
    .or_else(|| parts.headers.get(HOST)?.to_str().ok())
    .or_else(|| parts.uri.authority().map(|a| a.as_str()))?;
    let scheme = if is_tls(parts, transport) {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}").to_ascii_lowercase())
}

/// Whether a form post comes from a page of this origin: the browser's `Sec-Fetch-Site`
/// must not say otherwise, and its `Origin` (or, without one, its `Referer`) must be this
/// origin. A request that says neither is refused: browsers send `Origin` on every post.
pub(crate) fn from_own_page(parts: &Parts, transport: Transport) -> bool {
    let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if header("sec-fetch-site").is_some_and(|site| site != "same-origin") {
        return false;
    }
    let Some(own) = own_origin(parts, transport) else {
        return false;
    };
    match header("origin") {
        Some(origin) => origin.eq_ignore_ascii_case(&own),
        None => header("referer").is_some_and(|referer| {
            let referer = referer.to_ascii_lowercase();
            referer
                .strip_prefix(&own)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        }),
    }
}

/// The `Set-Cookie` value of a session holding `token`.
fn session_cookie(token: &str, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

/// The `Set-Cookie` value that ends a session.
pub(crate) fn ended_cookie(secure: bool) -> HeaderValue {
    if secure {
        HeaderValue::from_static(
            "audit_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure",
        )
    } else {
        HeaderValue::from_static("audit_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
    }
}

/// Whether the request carries a session cookie (valid or not).
pub(crate) fn has_session_cookie(parts: &Parts) -> bool {
    parts.headers.get_all(COOKIE).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(';').any(|pair| {
                pair.trim()
                    .split_once('=')
                    .is_some_and(|(n, _)| n == SESSION_COOKIE)
            })
        })
    })
}

/// Whether `token` can be a cookie's value unchanged (RFC 6265 cookie-octets).
fn cookie_safe(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E))
}

/// The sign-in page (also what a signed-out visit of `/audit` gets).
pub(crate) fn sign_in_page(
    api: &AuditApi,
    status: StatusCode,
    q: &str,
    problem: Option<String>,
    refresh: bool,
) -> Response {
    let viewer = api.viewer();
    let (token_form, link) = match &viewer.sign_in {
        SignIn::Token => (true, None),
        SignIn::Application { link } => (false, link.clone().filter(|l| safe_link(l))),
    };
    html::page(
        status,
        &SignInPage {
            chrome: Chrome::new(None, false),
            token_form,
            link,
            q: q.to_owned(),
            problem,
            refresh,
        },
    )
}

/// A sign-in link the application configured: a path on this site, or an http(s) URL.
fn safe_link(link: &str) -> bool {
    (link.starts_with('/') && !link.starts_with("//"))
        || link.starts_with("https://")
        || link.starts_with("http://")
}

/// `POST /audit/sign-in` (form: `token`, and `q`, the query to open).
pub(crate) async fn sign_in(State(api): State<AuditApi>, request: Request) -> Response {
    let viewer = api.viewer();
    if viewer.sign_in != SignIn::Token {
        return StatusCode::NOT_FOUND.into_response();
    }
    let (parts, body) = request.into_parts();
    if !from_own_page(&parts, viewer.transport) {
        return not_from_this_site("Sign-in", "sign-in form");
    }
    let Some(form) = read_form(body).await else {
        return html::message(
            StatusCode::PAYLOAD_TOO_LARGE,
            Chrome::new(None, false),
            "Sign-in refused",
            "The sign-in form was larger than a sign-in form can be.",
        );
    };
    let mut token = String::new();
    let mut q = String::new();
    for (key, value) in form_urlencoded::parse(&form) {
        match key.as_ref() {
            "token" => token = value.trim().to_owned(),
            "q" => {
                q = value
                    .chars()
                    .take(MAX_Q_LEN)
                    .filter(|c| *c != '\0')
                    .collect()
            }
            _ => {}
        }
    }
    let failed =
        |status, problem: &str| sign_in_page(&api, status, &q, Some(problem.to_owned()), false);
    if token.is_empty() {
        return failed(StatusCode::BAD_REQUEST, "Enter a token.");
    }
    if !cookie_safe(&token) {
        return failed(StatusCode::UNAUTHORIZED, NOT_ACCEPTED);
    }
    // Ask the authorizer about this token alone, as the API would be asked.
    let mut probe = parts.clone();
    for name in [
        AUTHORIZATION.as_str(),
        CODER_SESSION_HEADER,
        COOKIE.as_str(),
    ] {
        probe.headers.remove(name);
    }
    let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {token}")) else {
        return failed(StatusCode::UNAUTHORIZED, NOT_ACCEPTED);
    };
    probe.headers.insert(AUTHORIZATION, bearer);
    let access = Access {
        action: READ,
        endpoint: SIGN_IN_PATH,
        q: "",
        format: None,
    };
    match api.reader(&probe, &access).await {
        Ok(_) => {
            let secure = is_tls(&parts, viewer.transport);
            let Some(cookie) = session_cookie(&token, secure) else {
                return failed(StatusCode::UNAUTHORIZED, NOT_ACCEPTED);
            };
            let mut response = html::see_other(&links::page_url(&q, &[]));
            response.headers_mut().insert(SET_COOKIE, cookie);
            response
        }
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
            failed(StatusCode::UNAUTHORIZED, NOT_ACCEPTED)
        }
        Err(e) if e.status() == StatusCode::FORBIDDEN => failed(StatusCode::FORBIDDEN, NO_ROLE),
        Err(e) => failed(e.status(), e.message()),
    }
}

/// `POST /audit/sign-out`.
pub(crate) async fn sign_out(State(api): State<AuditApi>, request: Request) -> Response {
    let viewer = api.viewer();
    if viewer.sign_in != SignIn::Token {
        return StatusCode::NOT_FOUND.into_response();
    }
    let (parts, _) = request.into_parts();
    if !from_own_page(&parts, viewer.transport) {
        return not_from_this_site("Sign-out", "Sign out button");
    }
    let mut response = html::see_other(super::VIEWER_PATH);
    response
        .headers_mut()
        .insert(SET_COOKIE, ended_cookie(is_tls(&parts, viewer.transport)));
    response
}

/// The answer to a form post that did not come from this site's own page.
fn not_from_this_site(what: &str, control: &str) -> Response {
    html::message(
        StatusCode::FORBIDDEN,
        Chrome::new(None, false),
        format!("{what} refused"),
        format!(
            "This {} did not come from this site's own page. Open the audit log and use its {control}.",
            what.to_lowercase()
        ),
    )
}

/// The body of a form, if it fits in [`MAX_BODY`].
async fn read_form(body: Body) -> Option<axum::body::Bytes> {
    axum::body::to_bytes(body, MAX_BODY).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().method("POST").uri(uri);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn posts_must_come_from_this_origin() {
        let direct = Transport::Direct;
        let host = ("host", "127.0.0.1:8080");
        let own = parts(
            "/audit/sign-in",
            &[host, ("origin", "http://127.0.0.1:8080")],
        );
        assert!(from_own_page(&own, direct));
        let other = parts("/audit/sign-in", &[host, ("origin", "http://evil.example")]);
        assert!(!from_own_page(&other, direct));
        let null = parts("/audit/sign-in", &[host, ("origin", "null")]);
        assert!(!from_own_page(&null, direct));
        let https_origin = parts("/", &[host, ("origin", "https://127.0.0.1:8080")]);
        assert!(!from_own_page(&https_origin, direct), "the scheme counts");
        let cross = parts(
            "/",
            &[
                host,
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "cross-site"),
            ],
        );
        assert!(!from_own_page(&cross, direct));
        let referer = parts("/", &[host, ("referer", "http://127.0.0.1:8080/audit?q=x")]);
        assert!(from_own_page(&referer, direct));
        let lookalike = parts("/", &[host, ("referer", "http://127.0.0.1:80800/audit")]);
        assert!(!from_own_page(&lookalike, direct));
        let neither = parts("/", &[host]);
        assert!(!from_own_page(&neither, direct));
    }

    #[test]
    fn forwarded_headers_count_only_behind_a_proxy() {
        let headers = [
            ("host", "10.0.0.5:8080"),
            ("x-forwarded-host", "audit.example.com"),
            ("x-forwarded-proto", "https"),
            ("origin", "https://audit.example.com"),
        ];
        let p = parts("/audit/sign-in", &headers);
        assert!(from_own_page(&p, Transport::Proxy));
        assert!(is_tls(&p, Transport::Proxy));
        assert!(!from_own_page(&p, Transport::Direct));
        assert!(!is_tls(&p, Transport::Direct));
        assert!(is_tls(&parts("/", &[]), Transport::Tls));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_tls() {
        let plain = session_cookie("audit_1_2", false).unwrap();
        assert_eq!(
            plain,
            "audit_session=audit_1_2; Path=/; HttpOnly; SameSite=Strict"
        );
        let tls = session_cookie("audit_1_2", true).unwrap();
        assert!(tls.to_str().unwrap().ends_with("; Secure"));
        assert!(ended_cookie(true).to_str().unwrap().contains("Max-Age=0"));
        assert!(cookie_safe("audit_0123_abcd"));
        for bad in ["", "a b", "a;b", "a,b", "a\"b", "a\\b", "é"] {
            assert!(!cookie_safe(bad), "{bad:?}");
        }
        assert!(!cookie_safe(&"a".repeat(MAX_TOKEN_LEN + 1)));
    }

    #[test]
    fn only_local_or_web_links_are_offered() {
        assert!(safe_link("/login?next=/audit"));
        assert!(safe_link("https://sso.example.com/"));
        assert!(!safe_link("//evil.example"));
        assert!(!safe_link("javascript:alert(1)"));
    }
}
