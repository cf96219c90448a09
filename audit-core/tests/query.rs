//! The audit filter language, against resources registered by this test binary.

use audit_core::query::{
    AdditionalKey, BUILD_REASON, BUILD_REASONS, Filter, Key, KeyError, MAX_VALIDATIONS, QueryError,
    UserMatch, Validation, Vocabulary,
};
use audit_core::{Actor, AuditEvent, Auditable, Diff};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

#[derive(Auditable)]
#[audit(resource = "workspace", actions(create, write, delete))]
struct Workspace {
    #[audit(track, id)]
    id: u64,
    #[audit(track, target)]
    name: String,
}

#[derive(Auditable)]
#[audit(resource = "template", actions(create, write, delete))]
struct Template {
    #[audit(track, id)]
    id: u64,
}

#[derive(Auditable)]
#[audit(resource = "workspace_build", actions(start, stop))]
struct WorkspaceBuild {
    #[audit(track, id)]
    id: u64,
}

#[derive(Auditable)]
#[audit(resource = "api_key", actions(login, logout))]
struct ApiKey {
    #[audit(secret)]
    key: String,
}

const REQUEST: &str = "bb791ac3-f6ee-4da8-8ec2-f54e87013e93";

fn day(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

/// The registered resources plus Coder's `build_reason`, as an application recording it has.
fn vocabulary() -> Vocabulary {
    Vocabulary::registered().with_key(BUILD_REASON)
}

fn parse(q: &str) -> Filter {
    match vocabulary().parse(q) {
        Ok(f) => f,
        Err(e) => panic!("{q:?} should parse: {e}"),
    }
}

fn problems(q: &str) -> Vec<Validation> {
    match vocabulary().parse(q) {
        Ok(f) => panic!("{q:?} should be rejected, got {f:?}"),
        Err(e) => e.validations().to_vec(),
    }
}

/// The single problem of `q`, as (field, detail).
fn problem(q: &str) -> (String, String) {
    let mut all = problems(q);
    assert_eq!(all.len(), 1, "{q:?}: {all:?}");
    let v = all.remove(0);
    (v.field, v.detail)
}

fn event() -> AuditEvent {
    AuditEvent {
        id: Uuid::nil(),
        time: "2024-01-31T12:00:00Z".parse().expect("time"),
        actor: Actor {
            id: "u1".into(),
            username: "Alice".into(),
            email: "Alice@Example.com".into(),
        },
        organization_id: None,
        ip: None,
        user_agent: None,
        resource_type: "workspace".into(),
        resource_id: "ws-1".into(),
        resource_target: "my ws".into(),
        resource_icon: String::new(),
        action: "delete".into(),
        diff: Diff::default(),
        status_code: 200,
        additional_fields: serde_json::json!({"build_reason": "autostart", "build_number": 7})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        request_id: Some(REQUEST.parse().expect("uuid")),
    }
}

mod parsing {
    use super::*;

    #[test]
    fn empty_and_blank_queries_match_everything() {
        for q in ["", " ", "\t\n  \u{3000}"] {
            let f = parse(q);
            assert!(f.is_empty());
            assert_eq!(f, Filter::default());
            assert_eq!(serde_json::to_string(&f).unwrap(), "{}");
            assert_eq!(f.to_query_string(), "");
            assert!(f.matches(&event(), None));
        }
    }

    #[test]
    fn every_key_parses_into_its_getter() {
        let f = parse(&format!(
            "resource_type:workspace resource_id:ws-1 resource_target:dev action:delete \
             username:alice email:a@x.io date_from:2024-01-01 date_to:2024-01-31 \
             request_id:{REQUEST} build_reason:autostart"
        ));
        assert_eq!(f.resource_type(), Some("workspace"));
        assert_eq!(f.resource_id(), Some("ws-1"));
        assert_eq!(f.resource_target(), Some("dev"));
        assert_eq!(f.action(), Some("delete"));
        assert_eq!(f.username(), Some(&UserMatch::Username("alice".into())));
        assert_eq!(f.email(), Some("a@x.io"));
        assert_eq!(f.date_from_day(), Some(day("2024-01-01")));
        assert_eq!(f.date_to_day(), Some(day("2024-01-31")));
        assert_eq!(f.request_id(), Some(REQUEST.parse().unwrap()));
        assert_eq!(f.additional("build_reason"), Some("autostart"));
        assert_eq!(
            f.additional_terms().collect::<Vec<_>>(),
            [("build_reason", "autostart")]
        );
        assert!(!f.is_empty());
    }

    #[test]
    fn serializes_only_the_terms_that_were_set() {
        let f = parse("resource_type:workspace action:delete");
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"resource_type":"workspace","action":"delete"}"#
        );
    }

    #[test]
    fn full_filter_snapshot() {
        let f = parse(&format!(
            r#"workspace resource_id:ws-1 resource_target:"my ws" action:write username:me
               email:Alice@Example.com date_from:2024-01-01 date_to:2024-01-31
               request_id:{REQUEST} build_reason:initiator"#
        ));
        insta::assert_json_snapshot!("full_filter", f);
    }

    #[test]
    fn dates_are_whole_utc_days() {
        let f = parse("date_from:2024-01-01 date_to:2024-01-31");
        let instant = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(f.date_from(), Some(instant("2024-01-01T00:00:00Z")));
        assert_eq!(f.date_to(), Some(instant("2024-01-31T23:59:59.999999Z")));
        assert_eq!(f.date_to_exclusive(), Some(instant("2024-02-01T00:00:00Z")));
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({
                "date_from": "2024-01-01T00:00:00Z",
                "date_to": "2024-01-31T23:59:59.999999Z",
            })
        );
        // One day: from == to is allowed.
        let f = parse("date_from:2024-02-29 date_to:2024-02-29");
        assert_eq!(f.date_from_day(), f.date_to_day());
        // The last representable day has no exclusive end, and still serializes.
        let f = parse("date_to:9999-12-31");
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"date_to":"9999-12-31T23:59:59.999999Z"}"#
        );
    }

    #[test]
    fn keys_are_case_insensitive_and_values_keep_their_case() {
        let f = parse("EMAIL:Alice@Example.COM Resource_Target:MyWS UserName:Bob");
        assert_eq!(f.email(), Some("Alice@Example.COM"));
        assert_eq!(f.resource_target(), Some("MyWS"));
        assert_eq!(f.username(), Some(&UserMatch::Username("Bob".into())));
    }

    #[test]
    fn a_bare_word_is_a_resource_type() {
        assert_eq!(parse("template").resource_type(), Some("template"));
        assert_eq!(parse("template action:create").action(), Some("create"));
    }

    #[test]
    fn quotes_group_values_with_spaces_and_colons() {
        assert_eq!(
            parse(r#"resource_target:"my ws""#).resource_target(),
            Some("my ws")
        );
        assert_eq!(
            parse(r#"resource_id:"urn:ws:1""#).resource_id(),
            Some("urn:ws:1")
        );
        assert_eq!(
            parse(r#"resource_target:"say \"hi\"""#).resource_target(),
            Some(r#"say "hi""#)
        );
        assert_eq!(parse(r#""email":"a@x.io""#).email(), Some("a@x.io"));
        // A quoted `key:value` is one bare word, so a resource type (as in Coder's audit search).
        let (field, detail) = problem(r#""action:delete""#);
        assert_eq!(field, "resource_type");
        assert!(detail.contains(r#""action:delete""#), "{detail}");
    }

    #[test]
    fn username_me_is_the_caller() {
        assert_eq!(parse("username:me").username(), Some(&UserMatch::Me));
        assert_eq!(parse("username:ME").username(), Some(&UserMatch::Me));
        assert_eq!(
            parse("username:mel").username(),
            Some(&UserMatch::Username("mel".into()))
        );
        let resolved = parse("username:me action:delete").resolve_me("alice");
        assert_eq!(
            resolved.username(),
            Some(&UserMatch::Username("alice".into()))
        );
        assert_eq!(resolved.action(), Some("delete"));
        let other = parse("username:bob");
        assert_eq!(other.resolve_me("alice"), other);
        assert_eq!(
            serde_json::to_string(&parse("username:me")).unwrap(),
            r#"{"username":"me"}"#
        );
    }

    #[test]
    fn non_ascii_values_are_kept() {
        let f = parse(r#"resource_target:"café ☕" username:Jürgen email:ü@例え.jp"#);
        assert_eq!(f.resource_target(), Some("café ☕"));
        assert_eq!(f.username(), Some(&UserMatch::Username("Jürgen".into())));
        assert_eq!(f.email(), Some("ü@例え.jp"));
    }

    #[test]
    fn to_query_string_renders_canonically() {
        let f = parse(&format!(
            r#"build_reason:autostop request_id:{REQUEST} date_to:2024-01-02 date_from:2024-01-01
               email:a@x.io username:me action:start resource_target:"a \"b\" c:d"
               resource_id:1 workspace_build"#
        ));
        let q = f.to_query_string();
        assert_eq!(
            q,
            format!(
                r#"resource_type:workspace_build resource_id:1 resource_target:"a \"b\" c:d" action:start username:me email:a@x.io date_from:2024-01-01 date_to:2024-01-02 request_id:{REQUEST} build_reason:autostop"#
            )
        );
        assert_eq!(f.to_string(), q);
        assert_eq!(parse(&q), f);
    }
}

mod validation {
    use super::*;

    #[test]
    fn unknown_key_suggests_the_closest_one() {
        // The rule the derive uses too (audit_suggest::closest): a typo, or a prefix.
        let (field, detail) = problem("act:delete");
        assert_eq!(field, "act");
        assert!(detail.contains(r#"Did you mean "action"?"#), "{detail}");

        let (field, detail) = problem("usrname:alice");
        assert_eq!(field, "usrname");
        assert!(detail.contains(r#"Did you mean "username"?"#), "{detail}");
        assert!(detail.contains("Valid keys: resource_type,"), "{detail}");
        assert!(detail.contains("build_reason"), "{detail}");

        let (field, detail) = problem("Actoin:delete");
        assert_eq!(field, "actoin");
        assert!(detail.contains(r#"Did you mean "action"?"#), "{detail}");

        let (field, detail) = problem("colour:red");
        assert_eq!(field, "colour");
        assert!(!detail.contains("Did you mean"), "{detail}");
    }

    #[test]
    fn a_key_given_twice_is_an_error() {
        let (field, detail) = problem("action:create action:delete");
        assert_eq!(field, "action");
        assert!(detail.contains("more than once"), "{detail}");
        // Keys are case-insensitive, so this is the same key twice.
        assert_eq!(problem("email:a@x.io EMAIL:a@x.io").0, "email");
        // A bare word is a resource_type too.
        let (field, detail) = problem("workspace resource_type:template");
        assert_eq!(field, "resource_type");
        assert!(
            detail.contains("A word without a key is a resource_type"),
            "{detail}"
        );
        assert_eq!(problem("workspace template").0, "resource_type");
    }

    #[test]
    fn invalid_dates_name_the_expected_format() {
        for bad in [
            "yesterday",
            "2024-1-1",
            "2024-02-30",
            "2024-13-01",
            "01/31/2024",
            "2024-01-31T00:00:00Z",
        ] {
            let (field, detail) = problem(&format!(r#"date_from:"{bad}""#));
            assert_eq!(field, "date_from", "{bad}");
            assert!(detail.contains("YYYY-MM-DD"), "{detail}");
            assert_eq!(problem(&format!(r#"date_to:"{bad}""#)).0, "date_to");
        }
    }

    #[test]
    fn date_from_after_date_to_is_an_error() {
        let (field, detail) = problem("date_from:2024-02-01 date_to:2024-01-31");
        assert_eq!(field, "date_from");
        assert!(
            detail.contains("2024-02-01") && detail.contains("2024-01-31"),
            "{detail}"
        );
    }

    #[test]
    fn request_id_must_be_a_uuid() {
        let (field, detail) = problem("request_id:42");
        assert_eq!(field, "request_id");
        assert!(detail.contains("UUID"), "{detail}");
        assert_eq!(
            parse(&format!("request_id:{}", REQUEST.to_uppercase())).request_id(),
            Some(REQUEST.parse().unwrap())
        );
    }

    #[test]
    fn unknown_resource_type_lists_the_valid_ones() {
        let (field, detail) = problem("resource_type:workspaces");
        assert_eq!(field, "resource_type");
        assert!(detail.contains(r#"Did you mean "workspace"?"#), "{detail}");
        assert!(
            detail.contains("Valid resource types: api_key, template, workspace, workspace_build."),
            "{detail}"
        );
        // Values are case-sensitive: resource types are snake_case.
        assert_eq!(problem("Workspace").0, "resource_type");
    }

    #[test]
    fn unknown_action_lists_the_valid_ones() {
        let (field, detail) = problem("action:destroy");
        assert_eq!(field, "action");
        assert!(
            detail.contains("Valid actions: create, delete, login, logout, start, stop, write."),
            "{detail}"
        );
        // With a resource type, the action must be one of that resource's.
        let (field, detail) = problem("resource_type:workspace_build action:delete");
        assert_eq!(field, "action");
        assert!(detail.contains("Its actions: start, stop."), "{detail}");
        assert_eq!(
            parse("workspace_build action:start").action(),
            Some("start")
        );
        // An unknown resource type does not hide a bad action.
        assert_eq!(problems("resource_type:nope action:destroy").len(), 2);
    }

    #[test]
    fn build_reason_must_be_one_of_coders() {
        for reason in BUILD_REASONS {
            assert_eq!(
                parse(&format!("build_reason:{reason}")).additional("build_reason"),
                Some(*reason)
            );
        }
        let (field, detail) = problem("build_reason:cron");
        assert_eq!(field, "build_reason");
        assert!(
            detail.contains("autostart, autostop, dormancy, initiator"),
            "{detail}"
        );
    }

    #[test]
    fn malformed_terms_are_reported_under_q() {
        for (q, needle) in [
            (":workspace", "cannot start or end with ':'"),
            ("action:", "cannot start or end with ':'"),
            (":", "cannot start or end with ':'"),
            ("action:delete:now", "only contain one ':'"),
            ("action::delete", "only contain one ':'"),
            (r#"resource_target:"my ws"#, "unterminated quote"),
            (r#""""#, "is empty"),
        ] {
            let (field, detail) = problem(q);
            assert_eq!(field, "q", "{q}");
            assert!(detail.contains(needle), "{q}: {detail}");
        }
        let (field, detail) = problem(r#"resource_target:"""#);
        assert_eq!(field, "resource_target");
        assert!(detail.contains("empty value"), "{detail}");
    }

    #[test]
    fn an_unterminated_quote_swallows_the_rest_of_the_query() {
        // Everything after the quote is inside it, so only one problem is reported.
        let (field, _) = problem(r#"action:delete resource_target:"oops email:x"#);
        assert_eq!(field, "q");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let q = r#"usrname:bob action:delete action:create :oops a:b:c resource_type:workspacez
                   date_from:2024-02-30 date_to:tomorrow request_id:not-a-uuid build_reason:cron
                   resource_target:"unterminated"#;
        let err = vocabulary().parse(q).unwrap_err();
        insta::assert_json_snapshot!("many_problems", err);
        assert_eq!(err.validations().len(), 10);
    }

    #[test]
    fn date_order_is_checked_alongside_other_problems() {
        let fields: Vec<_> = problems("date_from:2024-03-01 date_to:2024-01-01 colour:red")
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["colour", "date_from"]);
    }

    #[test]
    fn error_display_lists_one_validation_per_line() {
        let err = Filter::parse("colour:red date_to:x").unwrap_err();
        let text = err.to_string();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "Invalid audit search query.");
        assert!(
            lines[1].starts_with(r#"  colour: "colour" is not"#),
            "{text}"
        );
        assert!(
            lines[2].starts_with(r#"  date_to: Query key "date_to""#),
            "{text}"
        );
        assert_eq!(err.message(), QueryError::MESSAGE);
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
        assert!(boxed.source().is_none());
        let json = serde_json::to_value(Filter::parse("x:y").unwrap_err()).unwrap();
        assert_eq!(json["message"], "Invalid audit search query.");
        assert_eq!(json["validations"][0]["field"], "x");
        assert!(json["validations"][0]["detail"].is_string());
    }

    /// Every piece of user text in an error is escaped: a terminal printing `field: detail`
    /// never receives an escape sequence, a line break, a bidirectional override or an
    /// invisible character from the query.
    #[test]
    fn errors_escape_control_and_invisible_characters() {
        let hostile = [
            "\u{1b}[2J\u{1b}]0;pwned\u{7}",
            "line\u{2028}break\u{2029}",
            "evil\u{202e}txt.exe",
            "zero\u{200b}width\u{feff}",
            "hangul\u{3164}filler",
            "c1\u{85}\u{9b}31m",
        ];
        let printable = |text: &str| {
            !text.chars().any(|c| {
                (c.is_control() && c != '\n')
                    || matches!(
                        c,
                        '\u{2028}' | '\u{2029}' | '\u{202e}' | '\u{200b}' | '\u{feff}' | '\u{3164}'
                    )
            })
        };
        for bad in hostile {
            let quoted = format!(r#""{}""#, bad.replace('"', ""));
            for q in [
                format!("{quoted}:v"),                // unknown key (the field too)
                format!("resource_type:{quoted}"),    // unknown resource type
                format!("action:{quoted}"),           // unknown action
                format!("workspace action:{quoted}"), // unknown action of a type
                format!("date_from:{quoted}"),        // bad date
                format!("request_id:{quoted}"),       // bad UUID
                format!("build_reason:{quoted}"),     // value not allowed
                format!("email:a email:{quoted}"),    // given twice
                format!("{quoted}:a:b"),              // malformed term
                format!("resource_target:\"{bad}"),   // unterminated quote
            ] {
                let err = vocabulary().parse(&q).unwrap_err();
                let text = err.to_string();
                assert!(printable(&text), "{q:?} → {text:?}");
                assert_eq!(
                    text.lines().count(),
                    1 + err.validations().len(),
                    "{text:?}"
                );
                for v in err.validations() {
                    assert!(printable(&v.field) && printable(&v.detail), "{v:?}");
                    assert!(!v.detail.contains('\n') && !v.field.contains('\n'), "{v:?}");
                }
            }
        }
        let (field, detail) = problem("\"\u{1b}[31mred\":x");
        assert_eq!(field, r"\u{1b}[31mred");
        assert!(
            detail.starts_with(r#""\u{1b}[31mred" is not a valid query key."#),
            "{detail}"
        );
    }

    #[test]
    fn huge_and_odd_inputs_do_not_panic_and_errors_stay_small() {
        let long = "é".repeat(200_000);
        let (field, detail) = problem(&format!("resource_target:x {long}:v"));
        assert!(
            field.starts_with("éé") && field.chars().count() <= 65,
            "{field}"
        );
        assert!(detail.len() < 1_000, "{}", detail.len());

        // Listed up to MAX_VALIDATIONS, then counted.
        let many = "x:y ".repeat(20_000);
        let listed = problems(&many);
        assert_eq!(listed.len(), MAX_VALIDATIONS + 1);
        assert_eq!(listed[MAX_VALIDATIONS].field, "q");
        assert!(
            listed[MAX_VALIDATIONS]
                .detail
                .starts_with("19900 more problems")
        );
        assert!(Filter::parse(&"\"".repeat(100_001)).is_err());
        assert!(Filter::parse(&"\\".repeat(1000)).is_err());
        for q in ["\0", "\u{feff}", "🦀:🦀", "\"\\", "a:\"\\\"", "\u{200b}"] {
            let _ = Filter::parse(q);
        }
    }
}

mod matching {
    use super::*;

    fn m(q: &str, me: Option<&str>) -> bool {
        parse(q).matches(&event(), me)
    }

    #[test]
    fn each_term_matches_its_event_field() {
        assert!(m("workspace", None));
        assert!(!m("template", None));
        assert!(m("resource_id:ws-1", None));
        assert!(!m("resource_id:WS-1", None));
        assert!(m(r#"resource_target:"my ws""#, None));
        assert!(!m("resource_target:my", None));
        assert!(m("action:delete", None));
        assert!(!m("action:create", None));
        assert!(m(&format!("request_id:{REQUEST}"), None));
        assert!(!m("request_id:00000000-0000-0000-0000-000000000000", None));
        assert!(m("build_reason:autostart", None));
        assert!(!m("build_reason:initiator", None));
        assert!(m("workspace action:delete username:alice", None));
        assert!(!m("workspace action:write username:alice", None));
    }

    #[test]
    fn username_and_email_ignore_ascii_case() {
        assert!(m("username:alice", None));
        assert!(m("username:ALICE", None));
        assert!(!m("username:bob", None));
        assert!(m("email:alice@example.com", None));
        assert!(m("email:Alice@Example.com", None));
        assert!(!m("email:bob@example.com", None));
    }

    #[test]
    fn username_me_needs_the_caller() {
        assert!(m("username:me", Some("alice")));
        assert!(!m("username:me", Some("bob")));
        assert!(!m("username:me", None));
        assert!(
            parse("username:me")
                .resolve_me("Alice")
                .matches(&event(), None)
        );
    }

    #[test]
    fn date_bounds_are_inclusive_whole_days() {
        let at = |time: &str, q: &str| {
            let mut e = event();
            e.time = time.parse().unwrap();
            parse(q).matches(&e, None)
        };
        let q = "date_from:2024-01-01 date_to:2024-01-31";
        assert!(at("2024-01-01T00:00:00Z", q));
        assert!(!at("2023-12-31T23:59:59.999999999Z", q));
        assert!(
            at("2024-01-31T23:59:59Z", q),
            "the last second of the day is in (Coder's audit search misses it)"
        );
        assert!(at("2024-01-31T23:59:59.999999999Z", q));
        assert!(!at("2024-02-01T00:00:00Z", q));
        assert!(at("9999-12-31T23:59:59Z", "date_to:9999-12-31"));
    }

    #[test]
    fn additional_fields_compare_as_text() {
        let vocabulary = Vocabulary::registered().additional_key_any("build_number");
        let f = vocabulary.parse("build_number:7").unwrap();
        assert!(f.matches(&event(), None));
        assert!(
            !vocabulary
                .parse("build_number:8")
                .unwrap()
                .matches(&event(), None)
        );
        // A key the event does not have never matches.
        let f = Filter::default().with_additional("workspace_owner", "x");
        assert!(!f.matches(&event(), None));
    }
}

mod vocabulary {
    use super::*;

    #[test]
    fn default_vocabulary_is_the_registry_and_the_built_in_keys() {
        let v = Vocabulary::default();
        assert_eq!(
            v.resource_types().collect::<Vec<_>>(),
            ["api_key", "template", "workspace", "workspace_build"]
        );
        assert_eq!(
            v.actions("workspace").collect::<Vec<_>>(),
            ["create", "delete", "write"]
        );
        assert_eq!(
            v.keys().collect::<Vec<_>>(),
            Key::ALL.map(Key::name),
            "no application key unless the application adds it"
        );
        assert_eq!(v, Vocabulary::registered());
    }

    #[test]
    fn build_reason_is_a_key_the_application_adds() {
        let (field, detail) = match Filter::parse("build_reason:autostart") {
            Ok(f) => panic!("accepted without the key: {f:?}"),
            Err(e) => (
                e.validations()[0].field.clone(),
                e.validations()[0].detail.clone(),
            ),
        };
        assert_eq!(field, "build_reason");
        assert!(detail.contains("is not a valid query key"), "{detail}");
        assert_eq!(
            vocabulary(),
            Vocabulary::registered().additional_key("build_reason", BUILD_REASONS)
        );
        assert_eq!(vocabulary().keys().last(), Some("build_reason"));
        assert_eq!(BUILD_REASON.allowed(), Some(BUILD_REASONS));
    }

    /// Names from users (the CLI's `--key`) are checked by `FromStr`: a bad one is an error
    /// that says what is wrong, never a panic.
    #[test]
    fn a_bad_key_name_from_a_user_is_an_error() {
        let cases: [(&str, KeyError); 5] = [
            ("", KeyError::Empty),
            ("username", KeyError::BuiltIn(Key::Username)),
            ("Date_From", KeyError::BuiltIn(Key::DateFrom)),
            (
                "a b",
                KeyError::Character {
                    name: "a b".into(),
                    character: ' ',
                },
            ),
            (
                "a:b",
                KeyError::Character {
                    name: "a:b".into(),
                    character: ':',
                },
            ),
        ];
        for (name, expected) in cases {
            let err = name.parse::<AdditionalKey>().unwrap_err();
            assert_eq!(err, expected, "{name:?}");
            let text = err.to_string();
            let fix = matches!(err, KeyError::BuiltIn(_))
                .then_some("every vocabulary has it already")
                .unwrap_or("made of ASCII letters, digits, '_', '-' and '.'");
            assert!(text.contains(fix), "{name:?}: {text}");
        }
        for name in [
            "\"",
            "tab\t",
            "\u{1b}[31m",
            "k\u{200b}",
            "\u{202e}x",
            "é",
            "x\n",
        ] {
            assert!(
                matches!(
                    name.parse::<AdditionalKey>(),
                    Err(KeyError::Character { .. })
                ),
                "{name:?}"
            );
        }
        assert!(matches!(
            "k".repeat(65).parse::<AdditionalKey>(),
            Err(KeyError::TooLong { .. })
        ));
        let key: AdditionalKey = "Build_Number".parse().unwrap();
        assert_eq!(key.name(), "build_number");
        assert_eq!(key.allowed(), None);
        let f = Vocabulary::registered()
            .with_key(key)
            .parse("build_number:7")
            .unwrap();
        assert_eq!(f.additional("build_number"), Some("7"));
    }

    #[test]
    fn adding_a_key_again_replaces_it() {
        let v = Vocabulary::new()
            .with_key(BUILD_REASON)
            .with_key("build_reason".parse().unwrap());
        assert!(v.parse("build_reason:cron").is_ok());
        assert_eq!(v.keys().filter(|k| *k == "build_reason").count(), 1);
    }

    #[test]
    fn a_custom_vocabulary_checks_its_own_terms() {
        let v = Vocabulary::new()
            .resource("organization", &["create"])
            .resource("organization", &["delete"])
            .additional_key("Region", &["eu", "us"]);
        assert_eq!(
            v.actions("organization").collect::<Vec<_>>(),
            ["create", "delete"]
        );
        let f = v.parse("organization action:delete REGION:eu").unwrap();
        assert_eq!(f.additional("region"), Some("eu"));
        assert_eq!(
            v.parse("workspace").unwrap_err().validations()[0].field,
            "resource_type"
        );
        // build_reason is not in this vocabulary.
        assert_eq!(
            v.parse("build_reason:autostart").unwrap_err().validations()[0].field,
            "build_reason"
        );
        let err = v.parse("regoin:eu").unwrap_err();
        assert!(
            err.validations()[0]
                .detail
                .contains(r#"Did you mean "region"?"#)
        );
    }

    #[test]
    fn an_empty_vocabulary_says_nothing_is_registered() {
        let err = Vocabulary::new()
            .parse("workspace action:delete")
            .unwrap_err();
        let details: Vec<_> = err
            .validations()
            .iter()
            .map(|v| v.detail.as_str())
            .collect();
        assert!(
            details[0].contains("no resource types are registered"),
            "{details:?}"
        );
        assert!(
            details[1].contains("no resource types with actions"),
            "{details:?}"
        );
    }

    #[test]
    #[should_panic(expected = "is a built-in key")]
    fn additional_keys_cannot_shadow_built_in_ones() {
        let _ = Vocabulary::new().additional_key("Action", &["x"]);
    }

    #[test]
    #[should_panic(expected = "must be non-empty")]
    fn additional_keys_must_be_plain_words() {
        let _ = Vocabulary::new().additional_key_any("a b");
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Strings rich in the characters the grammar cares about.
    fn tricky_string(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                3 => prop::sample::select(vec![
                    ' ', ':', '"', '\\', '\t', '\n', 'a', 'Z', '-', '_', 'é', '\u{3000}', '🦀',
                ]),
                1 => any::<char>(),
            ],
            0..max,
        )
        .prop_map(String::from_iter)
    }

    fn query_like() -> impl Strategy<Value = String> {
        let word = prop::sample::select(vec![
            "workspace",
            "action",
            "resource_type",
            "username",
            "me",
            "date_from",
            "date_to",
            "2024-01-31",
            "2024-02-30",
            "request_id",
            REQUEST,
            "build_reason",
            "autostart",
            "delete",
            "start",
            "email",
            ":",
            "\"",
            " ",
            "\\",
            "x",
        ]);
        prop::collection::vec(
            prop_oneof![word.prop_map(str::to_owned), tricky_string(4)],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    fn value() -> impl Strategy<Value = String> {
        tricky_string(12).prop_filter("non-empty", |s| !s.is_empty())
    }

    fn valid_filter() -> impl Strategy<Value = Filter> {
        let resources = [
            ("workspace", &["create", "write", "delete"][..]),
            ("template", &["create", "write", "delete"][..]),
            ("workspace_build", &["start", "stop"][..]),
            ("api_key", &["login", "logout"][..]),
        ];
        let typed = prop::sample::select(resources.to_vec()).prop_flat_map(|(t, actions)| {
            (
                prop::option::of(Just(t)),
                prop::option::of(prop::sample::select(actions.to_vec())),
            )
        });
        let days = (0i32..3_000_000, 0i32..3_000_000).prop_map(|(a, b)| {
            let epoch = NaiveDate::from_ymd_opt(1, 1, 1).unwrap();
            let d = |n: i32| epoch + chrono::Days::new(n as u64);
            (d(a.min(b)), d(a.max(b)))
        });
        (
            typed,
            (prop::option::of(value()), prop::option::of(value())),
            prop::option::of(prop_oneof![
                Just(UserMatch::Me),
                value().prop_map(UserMatch::from)
            ]),
            prop::option::of(value()),
            (prop::option::of(days), any::<bool>(), any::<bool>()),
            prop::option::of(any::<u128>()),
            prop::option::of(prop::sample::select(BUILD_REASONS.to_vec())),
        )
            .prop_map(
                |((rtype, action), (id, target), user, email, (days, from, to), req, reason)| {
                    let mut f = Filter::default();
                    if let Some(t) = rtype {
                        f = f.with_resource_type(t);
                    }
                    if let Some(a) = action {
                        f = f.with_action(a);
                    }
                    if let Some(v) = id {
                        f = f.with_resource_id(v);
                    }
                    if let Some(v) = target {
                        f = f.with_resource_target(v);
                    }
                    if let Some(u) = user {
                        f = f.with_username(u);
                    }
                    if let Some(v) = email {
                        f = f.with_email(v);
                    }
                    if let Some((a, b)) = days {
                        if from {
                            f = f.with_date_from(a);
                        }
                        if to {
                            f = f.with_date_to(b);
                        }
                    }
                    if let Some(r) = req {
                        f = f.with_request_id(Uuid::from_u128(r));
                    }
                    if let Some(r) = reason {
                        f = f.with_additional("build_reason", r);
                    }
                    f
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_never_panics_and_its_rendering_is_stable(q in prop_oneof![any::<String>(), query_like()]) {
            for vocabulary in [Vocabulary::registered(), vocabulary()] {
                match vocabulary.parse(&q) {
                    Ok(f) => {
                        let again = vocabulary.parse(&f.to_query_string());
                        prop_assert_eq!(again, Ok(f));
                    }
                    Err(e) => {
                        // Printable as is: one line per validation, nothing that drives or
                        // hides from a terminal.
                        let text = e.to_string();
                        prop_assert_eq!(text.lines().count(), e.validations().len() + 1);
                        prop_assert!(
                            !text.chars().any(|c| (c.is_control() && c != '\n')
                                || ('\u{2028}'..='\u{202e}').contains(&c)
                                || c == '\u{200b}' || c == '\u{feff}'),
                            "{:?}", text
                        );
                    }
                }
            }
        }

        #[test]
        fn valid_filters_round_trip(f in valid_filter()) {
            let q = f.to_query_string();
            prop_assert_eq!(vocabulary().parse(&q), Ok(f), "query: {}", q);
        }
    }
}
