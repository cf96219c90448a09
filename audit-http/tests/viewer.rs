//! The web viewer over HTTP, on every store: sign-in and its cookie, the origin check of its
//! forms, the page's policy, paging, rejected queries, quick filters, escaping, scopes, the
//! live rows, completion data and the records of reads. (`viewer_browser.rs` uses the same
//! pages in a real browser.)

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use audit_http::{CONTENT_SECURITY_POLICY, SignIn, Transport, Viewer};
use serde_json::json;

use common::{Fixture, Reply, SECRET, Server, dataset, hostile, post_form};

/// What a failed sign-in says, whatever was wrong.
const NOT_ACCEPTED: &str = "That token was not accepted.";

async fn viewer(f: &Fixture, viewer: Viewer) -> Server {
    f.start_with(f.builder().viewer(viewer).build().unwrap())
        .await
}

async fn page(server: &Server, path: &str, token: &str) -> Reply {
    server.get(path, Some(token)).await
}

/// POSTs the sign-in form as the page would (same origin).
async fn sign_in(addr: SocketAddr, token: &str, q: &str) -> Reply {
    let origin = format!("http://{addr}");
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .append_pair("q", q)
        .finish();
    post_form(addr, "/audit/sign-in", &[("origin", &origin)], &body).await
}

/// The ids of the rows of a page, in order.
fn row_ids(html: &str) -> Vec<String> {
    html.split(r#"<li class="entry "#)
        .skip(1)
        .filter_map(|row| {
            let id = row.split(r#"data-id=""#).nth(1)?;
            Some(id.split('"').next()?.to_owned())
        })
        .collect()
}

/// The value of the attribute `attr` of the first element after `marker`.
fn attribute(html: &str, marker: &str, attr: &str) -> Option<String> {
    let rest = &html[html.find(marker)?..];
    let value = rest.split(&format!(r#"{attr}=""#)).nth(1)?;
    Some(value.split('"').next()?.replace("&#38;", "&"))
}

on_every_store! {
    signed_out_visitors_get_the_token_form_under_a_strict_policy => |f: Fixture| async move {
        let server = viewer(&f, Viewer::token_sign_in()).await;
        let reply = server.get("/audit?q=action:delete", None).await;
        assert_eq!(reply.status, 401);
        assert!(reply.body.contains(r#"<input id="token" name="token" type="password""#), "{}", reply.body);
        assert!(reply.body.contains(r#"name="q" value="action:delete""#), "the query survives sign-in");
        assert_eq!(reply.header("content-security-policy"), CONTENT_SECURITY_POLICY);
        assert!(CONTENT_SECURITY_POLICY.contains("default-src 'self'; script-src 'self'"));
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
        assert_eq!(reply.header("x-frame-options"), "DENY");
        assert!(!reply.body.contains("http-equiv=\"refresh\""));
        // A link from another site arrives without the SameSite=Strict cookie: the page
        // reloads itself once, as a same-site request that carries it.
        let cross = server
            .get_with("/audit", &[("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "navigate")])
            .await;
        assert_eq!(cross.status, 401);
        assert!(cross.body.contains(r#"<meta http-equiv="refresh" content="0">"#), "{}", cross.body);
        assert_eq!(reply.header("cache-control"), "no-store");
        // No inline script or style anywhere: every script has a src, no style attributes.
        for html in [&reply.body, &page(&server, "/audit", &f.tokens.owner).await.body] {
            assert_eq!(html.matches("<script").count(), html.matches("<script src=").count());
            assert!(!html.contains(" style=") && !html.contains("<style"), "{html}");
            assert!(!html.contains(" on") || !html.contains("onclick="), "no inline handlers");
        }
        server.shutdown().await.unwrap();
    };

    a_valid_token_sets_a_strict_http_only_session_and_lands_on_the_page => |f: Fixture| async move {
        f.append(&dataset());
        let server = viewer(&f, Viewer::token_sign_in()).await;
        let reply = sign_in(server.addr, &f.tokens.owner, "action:delete").await;
        assert_eq!(reply.status, 303, "{}", reply.body);
        assert_eq!(reply.header("location"), "/audit?q=action%3Adelete");
        let cookie = reply.header("set-cookie").to_owned();
        assert_eq!(
            cookie,
            format!("audit_session={}; Path=/; HttpOnly; SameSite=Strict", f.tokens.owner)
        );
        // The cookie authenticates the page, the export and the streams.
        let session = format!("audit_session={}", f.tokens.owner);
        let headers = [("cookie", session.as_str())];
        let list = server.get_with("/audit?q=action:delete", &headers).await;
        assert_eq!(list.status, 200);
        assert_eq!(row_ids(&list.body).len(), 1);
        assert!(list.body.contains("Signed in as <strong>root</strong>"));
        let export = server.get_with("/api/v2/audit/export?q=action:delete&format=csv", &headers).await;
        assert_eq!(export.status, 200);
        assert_eq!(export.body.lines().count(), 2, "{}", export.body);
        server.shutdown().await.unwrap();

        // Over TLS (here: behind a proxy that says so), the cookie is Secure.
        let server = viewer(&f, Viewer::token_sign_in().transport(Transport::Proxy)).await;
        let body = format!("token={}", f.tokens.owner);
        let reply = post_form(
            server.addr,
            "/audit/sign-in",
            &[("origin", "https://audit.example.com"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "audit.example.com")],
            &body,
        )
        .await;
        assert_eq!(reply.status, 303, "{}", reply.body);
        assert!(reply.header("set-cookie").ends_with("; SameSite=Strict; Secure"));
        server.shutdown().await.unwrap();
    };

    a_failed_sign_in_says_so_without_telling_whether_the_token_exists => |f: Fixture| async move {
        let server = viewer(&f, Viewer::token_sign_in()).await;
        let revoked = f.tokens.file.create("gone", "owner", &[]).unwrap();
        assert!(f.tokens.file.revoke(&revoked.id).unwrap());
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let mut wrong_secret = f.tokens.owner.clone();
        wrong_secret.pop();
        wrong_secret.push('x');
        let mut bodies = Vec::new();
        for token in [
            "audit_0000000000000000_nope".to_owned(),
            wrong_secret,
            revoked.token().to_owned(),
            "not a token; at all".to_owned(),
        ] {
            let reply = sign_in(server.addr, &token, "").await;
            assert_eq!(reply.status, 401, "{token}");
            assert!(reply.header("set-cookie").is_empty());
            assert!(reply.body.contains(NOT_ACCEPTED), "{}", reply.body);
            bodies.push(reply.body);
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "every failure looks the same");
        let member = sign_in(server.addr, &f.tokens.member, "").await;
        assert_eq!(member.status, 403);
        assert!(member.body.contains("owner role, or the auditor role"));
        let empty = sign_in(server.addr, "", "").await;
        assert!(empty.body.contains("Enter a token."));
        server.shutdown().await.unwrap();
    };

    sign_in_and_sign_out_must_come_from_this_origin => |f: Fixture| async move {
        let server = viewer(&f, Viewer::token_sign_in()).await;
        let body = format!("token={}", f.tokens.owner);
        let own = format!("http://{}", server.addr);
        for headers in [
            vec![],
            vec![("origin", "http://evil.example")],
            vec![("origin", "null")],
            vec![("origin", own.as_str()), ("sec-fetch-site", "cross-site")],
            vec![("referer", "http://evil.example/audit")],
        ] {
            let reply = post_form(server.addr, "/audit/sign-in", &headers, &body).await;
            assert_eq!(reply.status, 403, "{headers:?}");
            assert!(reply.header("set-cookie").is_empty());
            let out = post_form(server.addr, "/audit/sign-out", &headers, "").await;
            assert_eq!(out.status, 403, "{headers:?}");
        }
        let referer = format!("{own}/audit?q=x");
        let reply = post_form(server.addr, "/audit/sign-in", &[("referer", &referer)], &body).await;
        assert_eq!(reply.status, 303, "a same-origin Referer will do without Origin");
        let out = post_form(server.addr, "/audit/sign-out", &[("origin", &own)], "").await;
        assert_eq!(out.status, 303);
        assert_eq!(out.header("location"), "/audit");
        assert!(out.header("set-cookie").starts_with("audit_session=; Path=/; Max-Age=0; HttpOnly"));
        // A session cookie whose token was revoked ends with a message.
        let gone = f.tokens.file.create("gone", "owner", &[]).unwrap();
        f.tokens.file.revoke(&gone.id).unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let stale = format!("audit_session={}", gone.token());
        let reply = server.get_with("/audit", &[("cookie", &stale)]).await;
        assert_eq!(reply.status, 401);
        assert!(reply.body.contains("Your session has ended"));
        assert!(reply.header("set-cookie").contains("Max-Age=0"));
        server.shutdown().await.unwrap();
    };

    applications_with_their_own_sessions_get_no_token_form => |f: Fixture| async move {
        let link = Viewer::default().sign_in(SignIn::Application { link: Some("/login?next=/audit".into()) });
        let server = viewer(&f, link).await;
        let reply = server.get("/audit", None).await;
        assert_eq!(reply.status, 401);
        assert!(!reply.body.contains(r#"name="token""#));
        assert!(reply.body.contains(r#"href="/login?next=/audit""#), "{}", reply.body);
        let body = format!("token={}", f.tokens.owner);
        let own = format!("http://{}", server.addr);
        let post = post_form(server.addr, "/audit/sign-in", &[("origin", &own)], &body).await;
        assert_eq!(post.status, 404, "no token sign-in for application sessions");
        // The authorizer still decides on every request: a Bearer token reads the page.
        assert_eq!(page(&server, "/audit", &f.tokens.owner).await.status, 200);
        server.shutdown().await.unwrap();
        // A link that is not a web address is not offered.
        let bad = Viewer::default().sign_in(SignIn::Application { link: Some("javascript:alert(1)".into()) });
        let server = viewer(&f, bad).await;
        assert!(!server.get("/audit", None).await.body.contains("javascript:"));
        server.shutdown().await.unwrap();
    };

    pages_are_keyset_pages_with_newer_and_older_links => |f: Fixture| async move {
        f.append(&dataset());
        let server = viewer(&f, Viewer::token_sign_in().page_size(2)).await;
        let owner = &f.tokens.owner;
        let mut expected: Vec<String> = dataset_ids(&f);
        expected.reverse();
        let first = page(&server, "/audit", owner).await;
        assert_eq!(first.status, 200);
        assert_eq!(row_ids(&first.body), expected[..2]);
        assert!(first.body.contains("Showing 2 of 6 events"), "{}", first.body);
        assert!(first.body.contains(r#"<span class="button disabled" aria-disabled="true">← Newer</span>"#));
        let older = attribute(&first.body, r#"rel="next""#, "href").unwrap();
        let second = page(&server, &older, owner).await;
        assert_eq!(row_ids(&second.body), expected[2..4]);
        let third = page(&server, &attribute(&second.body, r#"rel="next""#, "href").unwrap(), owner).await;
        assert_eq!(row_ids(&third.body), expected[4..6]);
        assert!(third.body.contains(r#"aria-disabled="true">Older →</span>"#), "the last page");
        // Newer walks back, page by page, to the first page.
        let back = page(&server, &attribute(&third.body, r#"rel="prev""#, "href").unwrap(), owner).await;
        assert_eq!(row_ids(&back.body), expected[2..4]);
        let top = page(&server, &attribute(&back.body, r#"rel="prev""#, "href").unwrap(), owner).await;
        assert_eq!(row_ids(&top.body), expected[..2]);
        assert!(top.body.contains(r#"id="live""#), "back at the first page, which may go live");
        assert!(!second.body.contains(r#"id="live""#), "only the first page goes live");
        let both = page(&server, &format!("{older}&before=1.00000000000000000000000000000000"), owner).await;
        assert_eq!(both.status, 400);
        let damaged = page(&server, "/audit?after=nonsense", owner).await;
        assert_eq!(damaged.status, 400);
        assert!(damaged.body.contains("This link is not valid"));
        server.shutdown().await.unwrap();
    };

    rejected_queries_show_every_problem_and_keep_the_previous_results => |f: Fixture| async move {
        f.append(&dataset());
        let server = viewer(&f, Viewer::token_sign_in()).await;
        let reply = page(
            &server,
            "/audit?q=usrname%3Abob+resource_type%3Awrkspace&shown=username%3Aalice",
            &f.tokens.owner,
        )
        .await;
        assert_eq!(reply.status, 400);
        assert!(reply.body.contains(r#"id="q-problems""#));
        assert!(reply.body.contains("<code>usrname</code>") && reply.body.contains("<code>resource_type</code>"));
        assert!(reply.body.contains("Did you mean &#34;username&#34;?"), "{}", reply.body);
        assert!(reply.body.contains(r#"value="usrname:bob resource_type:wrkspace""#), "the box keeps what was typed");
        assert!(reply.body.contains("Still showing <code>username:alice</code>"));
        assert_eq!(row_ids(&reply.body).len(), 3, "alice's three events stay");
        assert!(reply.body.contains(r#"aria-invalid="true""#));
        server.shutdown().await.unwrap();
    };

    quick_filters_write_into_the_query => |f: Fixture| async move {
        f.append(&dataset());
        let server = viewer(&f, Viewer::token_sign_in()).await;
        let reply = page(&server, "/audit?q=username%3Aalice&action=delete&resource_type=workspace&range=7d", &f.tokens.owner).await;
        assert_eq!(reply.status, 303, "{}", reply.body);
        let day = (chrono::Utc::now() - chrono::Duration::days(7)).date_naive();
        let location = reply.header("location");
        let q: String = form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
            .find(|(k, _)| k == "q").unwrap().1.into_owned();
        assert_eq!(q, format!("resource_type:workspace action:delete username:alice date_from:{day}"));
        let shown = page(&server, location, &f.tokens.owner).await;
        assert!(shown.body.contains(r#"<option value="delete" selected>"#), "the controls mirror the query");
        assert!(shown.body.contains(r#"<option value="7d" selected>"#));
        let bad = page(&server, "/audit?range=custom&from=tomorrow", &f.tokens.owner).await;
        assert_eq!(bad.status, 400);
        assert!(bad.body.contains("YYYY-MM-DD"));
        server.shutdown().await.unwrap();
    };

    hostile_values_are_text_and_secrets_never_appear => |f: Fixture| async move {
        f.append(&dataset());
        f.append(&hostile());
        let server = viewer(&f, Viewer::token_sign_in()).await;
        let reply = page(&server, "/audit", &f.tokens.owner).await;
        assert_eq!(reply.status, 200);
        let html = &reply.body;
        for raw in ["<script>window", "<svg onload", "<img src=x", "\"><svg onload"] {
            assert!(!html.contains(raw), "{raw} reached the page unescaped");
        }
        assert!(html.contains("&#60;script&#62;window.__pwned=1&#60;/script&#62;"));
        assert!(html.contains("&#34;&#62;&#60;svg onload=window.__pwned=2&#62;"));
        assert!(!html.contains(SECRET), "a secret value reached the page");
        assert!(html.contains("secret changed"));
        // The live rows are escaped the same way.
        let mut stream = server
            .sse("/audit/live?after=0", &f.tokens.owner, &[])
            .await;
        let frames = stream.events(9, Duration::from_secs(10)).await;
        for frame in &frames {
            let row = frame.data.as_deref().unwrap();
            assert!(row.starts_with(r#"<li class="entry "#), "{row}");
            assert!(!row.contains('\n'), "one data line per event");
            assert!(!row.contains("<script>") && !row.contains("<svg onload") && !row.contains(SECRET));
        }
        server.shutdown().await.unwrap();
    };

    organization_auditors_see_only_their_organizations => |f: Fixture| async move {
        f.append(&dataset());
        let server = viewer(&f, Viewer::token_sign_in()).await;
        let reply = page(&server, "/audit", &f.tokens.org1).await;
        assert_eq!(reply.status, 200);
        assert_eq!(row_ids(&reply.body).len(), 3, "org-1's three events");
        assert!(!reply.body.contains("logged in"), "no site-wide login");
        assert!(reply.body.contains("auditor of org-1"));
        let suggest = page(&server, "/audit/suggest", &f.tokens.org1).await.json();
        let users: Vec<&str> = suggest["values"]["username"].as_array().unwrap().iter().map(|v| v["value"].as_str().unwrap()).collect();
        assert_eq!(users, ["me", "carol", "alice"], "only users of org-1's events");
        server.shutdown().await.unwrap();
    };

    live_rows_are_rendered_rows_and_resume_after_the_last_event => |f: Fixture| async move {
        let server = viewer(&f, Viewer::token_sign_in()).await;
        let first = page(&server, "/audit", &f.tokens.owner).await;
        let live = attribute(&first.body, r#"id="live""#, "data-src").unwrap();
        assert!(live.starts_with("/audit/live?q=&after="), "{live}");
        let mut stream = server.sse(&live, &f.tokens.owner, &[]).await;
        f.append(&dataset()[..2]);
        let frames = stream.events(2, Duration::from_secs(10)).await;
        assert!(frames[0].data.as_deref().unwrap().contains("created workspace"));
        let last = frames[1].id.clone().unwrap();
        drop(stream);
        f.append(&dataset()[2..4]);
        let mut resumed = server.sse(&live, &f.tokens.owner, &[("last-event-id", &last)]).await;
        let frames = resumed.events(2, Duration::from_secs(10)).await;
        let rows: Vec<&str> = frames.iter().map(|fr| fr.data.as_deref().unwrap()).collect();
        assert!(rows[0].contains("bob") && rows[1].contains("alice"), "{rows:?}");
        server.shutdown().await.unwrap();
    };

    page_views_are_recorded_as_reads => |f: Fixture| async move {
        f.append(&dataset());
        let server = viewer(&f, Viewer::token_sign_in()).await;
        page(&server, "/audit?q=username%3Aalice", &f.tokens.auditor).await;
        page(&server, "/audit/suggest", &f.tokens.auditor).await;
        server.get("/audit", Some(&f.tokens.member)).await;
        let reads: Vec<(String, String, String, u16)> = f
            .recorded_reads()
            .iter()
            .map(|e| (
                e.actor.username.clone(),
                e.additional_fields["endpoint"].as_str().unwrap().to_owned(),
                e.additional_fields["query"].as_str().unwrap().to_owned(),
                e.status_code,
            ))
            .collect();
        assert!(reads.contains(&("audra".into(), "/audit".into(), "username:alice".into(), 200)), "{reads:?}");
        assert!(reads.contains(&("audra".into(), "/audit/suggest".into(), String::new(), 200)), "{reads:?}");
        assert!(reads.contains(&("mel".into(), "/audit".into(), String::new(), 403)), "{reads:?}");
        server.shutdown().await.unwrap();
    };

    completion_offers_keys_values_and_recent_users => |f: Fixture| async move {
        f.append(&dataset());
        let server = viewer(&f, Viewer::token_sign_in()).await;
        let reply = page(&server, "/audit/suggest", &f.tokens.owner).await;
        assert_eq!(reply.status, 200);
        let json = reply.json();
        let keys: Vec<&str> = json["keys"].as_array().unwrap().iter().map(|k| k["key"].as_str().unwrap()).collect();
        assert_eq!(keys[..3], ["resource_type", "resource_id", "resource_target"]);
        let types: Vec<&str> = json["values"]["resource_type"].as_array().unwrap().iter().map(|v| v["term"].as_str().unwrap()).collect();
        assert!(types.contains(&"resource_type:workspace") && types.contains(&"resource_type:audit_log"), "{types:?}");
        let delete = json["values"]["action"].as_array().unwrap().iter().find(|v| v["value"] == "delete").unwrap();
        assert_eq!(delete["of"], json!(["template", "workspace"]));
        let users: Vec<&str> = json["values"]["username"].as_array().unwrap().iter().map(|v| v["value"].as_str().unwrap()).collect();
        assert_eq!(users, ["me", "carol", "root", "alice", "bob"], "newest first");
        assert_eq!(server.get("/audit/suggest", None).await.status, 401);
        server.shutdown().await.unwrap();
    };

    assets_are_named_by_content_and_cached => |f: Fixture| async move {
        let server = viewer(&f, Viewer::token_sign_in()).await;
        let html = server.get("/audit", None).await.body;
        let script = attribute(&html, "<script", "src").unwrap();
        let style = attribute(&html, "<link rel=\"stylesheet\"", "href").unwrap();
        for (path, kind) in [(&script, "text/javascript"), (&style, "text/css")] {
            let reply = server.get(path, None).await;
            assert_eq!(reply.status, 200, "{path}");
            assert!(reply.header("content-type").starts_with(kind));
            assert_eq!(reply.header("cache-control"), "public, max-age=31536000, immutable");
        }
        assert_eq!(server.get("/audit/assets/viewer.0000000000000000.js", None).await.status, 404);
        server.shutdown().await.unwrap();
    };
}

/// The ids of the fixture's dataset, oldest first (as appended).
fn dataset_ids(f: &Fixture) -> Vec<String> {
    let mut events = common::blocking(|| {
        let mut store = f.store();
        store
            .newer(&audit_core::query::Filter::default(), Some(0), 100)
            .unwrap()
    });
    events.retain(|e| e.resource_type != "audit_log");
    events.iter().map(|e| e.id.to_string()).collect()
}
