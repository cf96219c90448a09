//! A small user-agent reader: the browser (or command-line client) and operating system a
//! `User-Agent` names, when they are recognisable — "Firefox 128 on Linux", "curl 8.5" —
//! for an entry's details. The raw value is always shown beside it: this is a reading aid,
//! not evidence.

/// What the user agent says about the client, or `None` if nothing is recognised.
///
/// ```text
/// Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15
///   → "Safari 17 on macOS"
/// ```
pub(crate) fn describe(ua: &str) -> Option<String> {
    let browser = browser(ua);
    let os = os(ua);
    match (browser, os) {
        (Some(b), Some(o)) => Some(format!("{b} on {o}")),
        (Some(b), None) => Some(b),
        (None, Some(o)) => Some(o.to_owned()),
        (None, None) => None,
    }
}

/// Product tokens checked in order: the first found names the client. Browsers that build on
/// Chrome also send `Chrome/` (and Chrome sends `Safari/`), so they come first.
const CLIENTS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Vivaldi/", "Vivaldi"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("HeadlessChrome/", "Headless Chrome"),
    ("Chrome/", "Chrome"),
    ("curl/", "curl"),
    ("Wget/", "Wget"),
    ("python-requests/", "Python requests"),
    ("python-httpx/", "Python httpx"),
    ("Go-http-client/", "Go HTTP client"),
    ("okhttp/", "OkHttp"),
    ("axios/", "axios"),
    ("node-fetch/", "node-fetch"),
    ("PostmanRuntime/", "Postman"),
    ("Terraform/", "Terraform"),
    ("Coder/", "Coder CLI"),
    ("coder/", "Coder CLI"),
];

fn browser(ua: &str) -> Option<String> {
    for (token, name) in CLIENTS {
        if let Some(version) = version_after(ua, token) {
            return Some(join(name, version, is_browser(name)));
        }
    }
    // Safari names its version in `Version/`, and only Safari sends `Safari/` without
    // `Chrome/` (checked above).
    if ua.contains("Safari/") {
        return Some(join(
            "Safari",
            version_after(ua, "Version/").unwrap_or(""),
            true,
        ));
    }
    None
}

fn is_browser(name: &str) -> bool {
    !matches!(
        name,
        "curl"
            | "Wget"
            | "Python requests"
            | "Python httpx"
            | "Go HTTP client"
            | "OkHttp"
            | "axios"
            | "node-fetch"
            | "Postman"
            | "Terraform"
            | "Coder CLI"
    )
}

/// `name` with its version: a browser's major version only, a tool's whole version.
fn join(name: &str, version: &str, major_only: bool) -> String {
    let version = if major_only {
        version.split('.').next().unwrap_or("")
    } else {
        version
    };
    if version.is_empty() {
        name.to_owned()
    } else {
        format!("{name} {version}")
    }
}

/// The longest version shown.
const MAX_VERSION_LEN: usize = 16;

/// The version after `token` (digits and dots, at most [`MAX_VERSION_LEN`]), if `token` is
/// in `ua`.
fn version_after<'a>(ua: &'a str, token: &str) -> Option<&'a str> {
    let start = ua.find(token)? + token.len();
    let rest = &ua[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len())
        .min(MAX_VERSION_LEN);
    Some(rest[..end].trim_end_matches('.'))
}

fn os(ua: &str) -> Option<&'static str> {
    // Order matters: iOS and Android user agents also say "like Mac OS X" and "Linux".
    const SYSTEMS: &[(&str, &str)] = &[
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("FreeBSD", "FreeBSD"),
        ("OpenBSD", "OpenBSD"),
        ("Linux", "Linux"),
        ("X11", "Unix"),
    ];
    SYSTEMS
        .iter()
        .find(|(token, _)| ua.contains(token))
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn common_browsers_and_systems() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
                "Chrome 124 on Windows",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
                "Edge 124 on Windows",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox 128 on Linux",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
                "Safari 17 on macOS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
                "Safari 17 on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
                "Chrome 124 on Android",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
                "Headless Chrome 156 on Linux",
            ),
            ("curl/8.5.0", "curl 8.5.0"),
            ("Go-http-client/1.1", "Go HTTP client 1.1"),
            ("python-requests/2.31.0", "Python requests 2.31.0"),
        ];
        for (ua, want) in cases {
            assert_eq!(describe(ua).as_deref(), Some(want), "{ua}");
        }
    }

    #[test]
    fn unknown_or_hostile_values_give_nothing_or_stay_short() {
        assert_eq!(describe(""), None);
        assert_eq!(describe("my-script"), None);
        assert_eq!(describe("=cmd|' /C calc'!A0"), None);
        // A version is digits and dots only: markup after a token never comes along.
        assert_eq!(
            describe("curl/<script>alert(1)</script>").as_deref(),
            Some("curl")
        );
        assert_eq!(describe("Firefox/").as_deref(), Some("Firefox"));
        let long = format!("Chrome/{}", "9".repeat(10_000));
        assert_eq!(
            describe(&long).unwrap(),
            format!("Chrome {}", "9".repeat(16))
        );
    }
}
