//! The page's static files — one script, one style sheet — compiled into the binary and
//! served under content-addressed names (`viewer.3f9a0c1b2d4e5f60.js`), so a browser may
//! keep them for a year and a new build is fetched at once. No build step: the files in
//! `audit-http/assets/` are served as written.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The route of the assets.
pub(crate) const ROUTE: &str = "/audit/assets/{name}";

struct Asset {
    /// The content-addressed name.
    name: String,
    body: &'static [u8],
    content_type: &'static str,
}

impl Asset {
    fn new(stem: &str, extension: &str, body: &'static [u8], content_type: &'static str) -> Asset {
        let digest = Sha256::digest(body);
        let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Asset {
            name: format!("{stem}.{hash}.{extension}"),
            body,
            content_type,
        }
    }

    fn url(&self) -> String {
        format!("/audit/assets/{}", self.name)
    }
}

static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "viewer",
        "js",
        include_bytes!("../../assets/viewer.js"),
        "text/javascript; charset=utf-8",
    )
});

static STYLE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "viewer",
        "css",
        include_bytes!("../../assets/viewer.css"),
        "text/css; charset=utf-8",
    )
});

static URLS: LazyLock<(String, String)> = LazyLock::new(|| (SCRIPT.url(), STYLE.url()));

/// The script's URL.
pub(crate) fn script_url() -> &'static str {
    &URLS.0
}

/// The style sheet's URL.
pub(crate) fn style_url() -> &'static str {
    &URLS.1
}

/// `GET /audit/assets/{name}`.
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = [&*SCRIPT, &*STYLE].into_iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_change_with_the_content() {
        let a = Asset::new("viewer", "js", b"a", "text/javascript");
        let b = Asset::new("viewer", "js", b"b", "text/javascript");
        assert_ne!(a.name, b.name);
        assert!(a.name.starts_with("viewer.") && a.name.ends_with(".js"));
        assert_eq!(a.name.len(), "viewer..js".len() + 16);
        assert!(script_url().starts_with("/audit/assets/viewer."));
        assert!(style_url().ends_with(".css"));
    }
}
