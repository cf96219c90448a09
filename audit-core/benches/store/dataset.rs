//! The benchmark's data set: a deterministic log of realistic events, each generated from its
//! index alone.

use std::net::IpAddr;

use audit_core::{Actor, AuditEvent, Auditable, Diff};
use chrono::{DateTime, Duration as TimeDelta, TimeZone, Utc};
use serde_json::{Map, json};
use uuid::Uuid;

/// The shape every audited resource has here; writes change two tracked fields.
#[derive(Auditable)]
#[audit(resource = "bench_resource", actions(create, write, delete))]
struct Resource {
    #[audit(track, id)]
    id: String,
    #[audit(track, target)]
    name: String,
    #[audit(track)]
    description: String,
    #[audit(track)]
    ttl_ms: Option<i64>,
    #[audit(track)]
    autostart_schedule: Option<String>,
    #[audit(track)]
    owner_id: String,
    #[audit(secret)]
    token: String,
}

/// `(resource_type, weight, [(action, weight)])`, roughly the mix of a Coder deployment.
/// `(name, weight)`.
type Weighted = (&'static str, u32);

const RESOURCES: &[(&str, u32, &[Weighted])] = &[
    ("workspace_build", 28, &[("start", 55), ("stop", 45)]),
    (
        "workspace",
        18,
        &[
            ("create", 15),
            ("write", 40),
            ("delete", 10),
            ("start", 20),
            ("stop", 15),
        ],
    ),
    (
        "user",
        14,
        &[
            ("login", 60),
            ("logout", 20),
            ("write", 12),
            ("create", 5),
            ("delete", 3),
        ],
    ),
    ("workspace_agent", 9, &[("connect", 55), ("disconnect", 45)]),
    ("workspace_app", 7, &[("open", 70), ("close", 30)]),
    (
        "template",
        5,
        &[("create", 10), ("write", 80), ("delete", 10)],
    ),
    ("template_version", 5, &[("create", 70), ("write", 30)]),
    (
        "api_key",
        4,
        &[("create", 40), ("delete", 30), ("login", 30)],
    ),
    ("group", 2, &[("create", 20), ("write", 70), ("delete", 10)]),
    ("git_ssh_key", 2, &[("create", 50), ("write", 50)]),
    ("notification_template", 2, &[("write", 100)]),
    ("organization", 1, &[("create", 20), ("write", 80)]),
    ("license", 1, &[("create", 80), ("delete", 20)]),
    (
        "workspace_proxy",
        1,
        &[("create", 30), ("write", 50), ("delete", 20)],
    ),
    (
        "oauth2_provider_app",
        1,
        &[("create", 30), ("write", 50), ("delete", 20)],
    ),
];

/// Twenty users with skewed activity (weight), plus the system actor of automatic builds.
const USERS: &[(&str, u32)] = &[
    ("alice", 14),
    ("bob", 11),
    ("carol", 9),
    ("dana", 8),
    ("erin", 7),
    ("frank", 6),
    ("grace", 6),
    ("heidi", 5),
    ("ivan", 5),
    ("judy", 4),
    ("mallory", 4),
    ("niaj", 3),
    ("olivia", 3),
    ("peggy", 3),
    ("rupert", 3),
    ("sybil", 2),
    ("trent", 2),
    ("victor", 2),
    ("walter", 1),
    ("Zoe", 2),
];

/// The user of the username filter: ~8 % of the events.
pub(crate) const FILTER_USER: &str = "dana";

/// A user with one event in every 9,973 (about a hundred in a million): a rare email.
pub(crate) const RARE_USER: &str = "quinn";

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "coder/v2.10.2 (linux/amd64)",
    "coder-vscode/0.1.37",
    "Go-http-client/1.1",
];

const BUILD_REASONS: &[&str] = &["initiator", "autostart", "autostop", "dormancy"];

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Picks from `(item, weight)` pairs with `roll` (any u64).
fn weighted<T: Copy>(items: impl Iterator<Item = (T, u32)> + Clone, roll: u64) -> T {
    let total: u64 = items.clone().map(|(_, w)| u64::from(w)).sum();
    let mut r = roll % total;
    let mut last = None;
    for (item, w) in items {
        if r < u64::from(w) {
            return item;
        }
        r -= u64::from(w);
        last = Some(item);
    }
    last.expect("non-empty")
}

/// A deterministic log of `n` events spread evenly over 2024 (one every ~31.5 s at 1M), each
/// built from its index alone so that any slice can be regenerated without the rest.
pub(crate) struct Dataset {
    pub(crate) n: usize,
    start: DateTime<Utc>,
    step_micros: i64,
}

impl Dataset {
    pub(crate) fn new(n: usize) -> Self {
        let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single().unwrap();
        let span = TimeDelta::days(366).num_microseconds().unwrap();
        Dataset {
            n,
            start,
            step_micros: (span / n.max(1) as i64).max(1),
        }
    }

    pub(crate) fn batch(&self, range: std::ops::Range<usize>) -> Vec<AuditEvent> {
        range.map(|i| self.event(i)).collect()
    }

    pub(crate) fn event(&self, i: usize) -> AuditEvent {
        let r = |k: u64| splitmix((i as u64) << 8 | k);
        // Increasing times with jitter inside the step, so ids (v7) increase with time.
        let time = self.start
            + TimeDelta::microseconds(
                i as i64 * self.step_micros + (r(1) % self.step_micros as u64) as i64,
            );
        let (resource_type, actions) = weighted(
            RESOURCES.iter().map(|(t, w, actions)| ((*t, *actions), *w)),
            r(2),
        );
        let action = weighted(actions.iter().copied(), r(3));
        let build_reason = (resource_type == "workspace_build").then(|| {
            weighted(
                BUILD_REASONS
                    .iter()
                    .zip([70, 12, 12, 6])
                    .map(|(b, w)| (*b, w)),
                r(4),
            )
        });
        let system = matches!(build_reason, Some("autostart" | "autostop" | "dormancy"));
        let (mut actor, ip, user_agent) = if system {
            (
                Actor {
                    id: "00000000-0000-0000-0000-000000000001".into(),
                    username: "autobuild".into(),
                    email: "".into(),
                },
                None,
                None,
            )
        } else {
            let u = weighted(
                USERS.iter().copied().enumerate().map(|(k, (_, w))| (k, w)),
                r(5),
            );
            let name = USERS[u].0;
            let ip: IpAddr = if u % 7 == 6 {
                format!("2001:db8::{:x}", 0x100 + u * 3 + (r(6) % 3) as usize)
                    .parse()
                    .unwrap()
            } else {
                IpAddr::from([10, 20, u as u8, (r(6) % 4) as u8 + 10])
            };
            (
                Actor {
                    id: format!(
                        "{:08x}-1111-4111-8111-{:012x}",
                        u + 1,
                        splitmix(u as u64) >> 16
                    ),
                    username: name.into(),
                    email: format!("{}@example.com", name.to_ascii_lowercase()),
                },
                Some(ip),
                Some(USER_AGENTS[(u + (r(7) % 2) as usize) % USER_AGENTS.len()].to_owned()),
            )
        };
        if !system && i % 9_973 == 4_321 {
            actor = Actor {
                id: "00000000-2222-4222-8222-000000000001".into(),
                username: RARE_USER.into(),
                email: format!("{RARE_USER}@example.com"),
            };
        }
        let object = r(8) % 2_000;
        let resource_id = Uuid::from_u128(
            u128::from(splitmix(object ^ 0xabcd)) << 64 | u128::from(splitmix(object)),
        )
        .to_string();
        let resource_target = format!("{resource_type}-{object}");
        let snapshot = |version: u64| Resource {
            id: resource_id.clone(),
            name: resource_target.clone(),
            description: format!("revision {version} of {resource_target}"),
            ttl_ms: Some(3_600_000 * (1 + (version % 12) as i64)),
            autostart_schedule: (!version.is_multiple_of(3))
                .then(|| format!("CRON_TZ=UTC 0 {} * * 1-5", version % 24)),
            owner_id: actor.id.clone(),
            token: format!("token-{version}"),
        };
        let diff = match action {
            "write" => {
                let version = r(9) % 1_000;
                let mut new = snapshot(version);
                // A couple of fields change on a write (and the name stays).
                new.description = snapshot(version + 1).description;
                new.ttl_ms = snapshot(version + 1).ttl_ms;
                audit_core::diff(Some(&snapshot(version)), Some(&new))
            }
            "create" => audit_core::diff(None, Some(&snapshot(0))),
            "delete" => audit_core::diff(Some(&snapshot(r(9) % 1_000)), None),
            _ => Diff::default(),
        };
        let mut additional_fields = Map::new();
        if let Some(reason) = build_reason {
            additional_fields.insert("build_reason".into(), json!(reason));
            additional_fields.insert("build_number".into(), json!(r(10) % 500 + 1));
            additional_fields.insert("workspace_name".into(), json!(format!("ws-{object}")));
        }
        let status_code = match r(11) % 100 {
            0..=2 => 403,
            3 => 500,
            4..=5 => 400,
            _ => 200,
        };
        let ms = time.timestamp_millis() as u128;
        let id = Uuid::from_u128(
            ms << 80
                | 0x7 << 76
                | u128::from(r(12) & 0xfff) << 64
                | 0b10 << 62
                | u128::from(r(13) >> 2),
        );
        AuditEvent {
            id,
            time,
            actor,
            organization_id: Some(format!("org-{}", object % 3)),
            ip,
            user_agent,
            resource_type: resource_type.into(),
            resource_id,
            resource_target,
            resource_icon: format!("/icon/{resource_type}.svg"),
            action: action.into(),
            diff,
            status_code,
            additional_fields,
            request_id: (!system)
                .then(|| Uuid::from_u128(u128::from(r(14)) << 64 | u128::from(r(15)))),
        }
    }
}
