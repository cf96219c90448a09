//! A short, realistic day on a Coder-like deployment, played against an [`Auditor`].
//!
//! Users log in, create and update a template and a workspace, rotate an SSH key, change a
//! password, start and stop builds (one started by the autostart scheduler), fail to delete a
//! template they do not own (403), delete a workspace and log out. Every secret value used
//! here contains [`SECRET_MARKER`], so tests can prove that none reaches any output.

use std::collections::BTreeMap;
use std::net::IpAddr;

use audit_core::{Actor, Auditor, RecordError, RequestContext, action};
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use crate::resources::{
    APIKey, GitSSHKey, LoginType, Template, Timestamps, User, UserStatus, Workspace, WorkspaceBuild,
};

/// Every secret value in the scenario contains this text.
pub const SECRET_MARKER: &str = "SECRET-DEMO-VALUE";

fn secret(what: &str) -> String {
    format!("{SECRET_MARKER}-{what}")
}

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 13, hour, minute, 0)
        .single()
        .unwrap_or_default()
}

fn stamps(t: DateTime<Utc>) -> Timestamps {
    Timestamps {
        created_at: t,
        updated_at: t,
    }
}

struct Person {
    user: User,
    ctx_ip: IpAddr,
    user_agent: &'static str,
}

impl Person {
    fn actor(&self) -> Actor {
        Actor::new(
            self.user.id.to_string(),
            &self.user.username,
            &self.user.email,
        )
    }

    /// A request context: who, from where, with which client, and a fresh request id.
    fn request(&self) -> RequestContext {
        RequestContext::new(self.actor())
            .ip(self.ctx_ip)
            .user_agent(self.user_agent)
            .request_id(Uuid::now_v7())
    }
}

fn person(
    n: u128,
    username: &str,
    roles: &[&str],
    ip: [u8; 4],
    user_agent: &'static str,
) -> Person {
    let t = at(8, 0);
    Person {
        user: User {
            id: Uuid::from_u128(0xa000 + n),
            email: format!("{username}@example.com"),
            username: username.into(),
            hashed_password: secret(&format!("{username}-password-hash")).into_bytes(),
            avatar_url: String::new(),
            status: UserStatus::Active,
            rbac_roles: roles.iter().map(|r| r.to_string()).collect(),
            login_type: LoginType::Password,
            deleted: false,
            last_seen_at: t,
            timestamps: stamps(t),
        },
        ctx_ip: IpAddr::from(ip),
        user_agent,
    }
}

fn session(p: &Person, name: &str) -> APIKey {
    APIKey {
        id: format!("{}-{name}", p.user.username),
        user_id: p.user.id,
        hashed_secret: secret(&format!("{name}-api-key")).into_bytes(),
        expires_at: at(8, 0) + Duration::hours(24),
        last_used: at(8, 0),
        lifetime_seconds: 86_400,
        ip_address: p.ctx_ip.to_string(),
        login_type: LoginType::Password,
        scope: "all".into(),
        token_name: format!("{name} session"),
        timestamps: stamps(at(8, 0)),
    }
}

/// Plays the scenario; every event goes through `auditor`. Returns the number of events
/// recorded.
pub fn run(auditor: &Auditor) -> Result<usize, RecordError> {
    let mut recorded = 0usize;
    let alice = person(
        1,
        "alice",
        &["owner"],
        [10, 0, 0, 7],
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0",
    );
    let bob = person(
        2,
        "bob",
        &["member"],
        [10, 0, 0, 42],
        "coder/2.12.0 (linux/amd64)",
    );

    // 1. Both log in.
    for (p, name) in [(&alice, "alice"), (&bob, "bob")] {
        let mut audit = auditor.request::<APIKey>(&p.request(), action::LOGIN);
        audit.set_new(session(p, name)).set_status(201);
        audit.commit()?;
        recorded += 1;
    }

    // 2. Alice creates a template, then updates it.
    let template = Template {
        id: Uuid::from_u128(0x7e0001),
        organization_id: Uuid::nil(),
        deleted: false,
        name: "docker".into(),
        display_name: "Docker containers".into(),
        description: "Develop in a container on the Docker host".into(),
        icon: "/icon/docker.png".into(),
        provisioner: "terraform".into(),
        active_version_id: Uuid::from_u128(0x007e_0001_0001),
        default_ttl: 8 * 3600,
        max_ttl: 24 * 3600,
        created_by: alice.user.id,
        group_acl: BTreeMap::from([("everyone".to_string(), vec!["use".to_string()])]),
        user_acl: BTreeMap::new(),
        allow_user_cancel_workspace_jobs: true,
        timestamps: stamps(at(9, 0)),
    };
    let mut audit = auditor.request::<Template>(&alice.request(), action::CREATE);
    audit.set_new(template.clone()).set_status(201);
    audit.commit()?;
    recorded += 1;

    let mut updated_template = template.clone();
    updated_template.display_name = "Docker (GPU)".into();
    updated_template.default_ttl = 4 * 3600;
    updated_template.timestamps.updated_at = at(9, 5);
    let mut audit = auditor.request::<Template>(&alice.request(), action::WRITE);
    audit
        .set_old(template.clone())
        .set_new(updated_template.clone())
        .set_status(200);
    audit.commit()?;
    recorded += 1;

    // 3. Bob creates a workspace from it and sets a schedule.
    let workspace = Workspace {
        id: Uuid::from_u128(0x3e0001),
        owner_id: bob.user.id,
        organization_id: Uuid::nil(),
        template_id: template.id,
        deleted: false,
        name: "dev".into(),
        autostart_schedule: None,
        ttl: Some(8 * 3600),
        last_used_at: at(9, 30),
        agent_token: Uuid::from_u128(0x5ec7e7),
        timestamps: stamps(at(9, 30)),
    };
    let mut audit = auditor.request::<Workspace>(&bob.request(), action::CREATE);
    audit.set_new(workspace.clone()).set_status(201);
    audit.commit()?;
    recorded += 1;

    let mut scheduled = workspace.clone();
    scheduled.autostart_schedule = Some("CRON_TZ=Europe/Berlin 30 8 * * 1-5".into());
    scheduled.ttl = Some(10 * 3600);
    scheduled.last_used_at = at(9, 40);
    let mut audit = auditor.request::<Workspace>(&bob.request(), action::WRITE);
    audit
        .set_old(workspace.clone())
        .set_new(scheduled.clone())
        .set_status(200);
    audit.commit()?;
    recorded += 1;

    // 4. Bob rotates his Git SSH key.
    let key = GitSSHKey {
        user_id: bob.user.id,
        private_key: secret("ssh-private-key-1"),
        public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOld bob@example.com".into(),
        timestamps: stamps(at(8, 0)),
    };
    let rotated = GitSSHKey {
        private_key: secret("ssh-private-key-2"),
        public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINew bob@example.com".into(),
        timestamps: stamps(at(10, 0)),
        ..key.clone()
    };
    let mut audit = auditor.request::<GitSSHKey>(&bob.request(), action::WRITE);
    audit.set_old(key).set_new(rotated).set_status(200);
    audit.commit()?;
    recorded += 1;

    // 5. Alice changes her password: the diff says it changed, never what it is.
    let mut new_password = alice.user.clone();
    new_password.hashed_password = secret("alice-new-password-hash").into_bytes();
    new_password.timestamps.updated_at = at(10, 15);
    let mut audit = auditor.request::<User>(&alice.request(), action::WRITE);
    audit
        .set_old(alice.user.clone())
        .set_new(new_password)
        .set_status(200);
    audit.commit()?;
    recorded += 1;

    // 6. Bob starts a build; the next morning the autostart scheduler starts one; Bob stops it.
    let build = |n: i32, transition: &str, reason: &str, initiator: Uuid| WorkspaceBuild {
        id: Uuid::from_u128(0x00b0_0000 + n as u128),
        workspace_id: workspace.id,
        template_version_id: updated_template.active_version_id,
        build_number: n,
        transition: transition.into(),
        initiator_id: initiator,
        provisioner_state: secret(&format!("terraform-state-{n}")).into_bytes(),
        job_id: Uuid::from_u128(0x010b_0000 + n as u128),
        deadline: None,
        max_deadline: None,
        reason: reason.into(),
        daily_cost: 0,
        timestamps: stamps(at(11, 0)),
    };
    let mut audit = auditor.request::<WorkspaceBuild>(&bob.request(), action::START);
    audit
        .set_new(build(1, "start", "initiator", bob.user.id))
        .set_status(200)
        .set_field("workspace_name", "dev")
        .set_field("build_number", "1")
        .set_field("build_reason", "initiator");
    audit.commit()?;
    recorded += 1;

    auditor.background(
        action::START,
        Actor::system("autostart"),
        None,
        Some(&build(2, "start", "autostart", Uuid::nil())),
        200,
        [
            ("workspace_name", "dev"),
            ("build_number", "2"),
            ("build_reason", "autostart"),
            ("subsystem", "autostart_scheduler"),
        ],
    )?;
    recorded += 1;

    let mut audit = auditor.request::<WorkspaceBuild>(&bob.request(), action::STOP);
    audit
        .set_new(build(3, "stop", "initiator", bob.user.id))
        .set_status(200)
        .set_field("workspace_name", "dev")
        .set_field("build_number", "3")
        .set_field("build_reason", "initiator");
    audit.commit()?;
    recorded += 1;

    // 7. Bob tries to delete Alice's template: forbidden. Recorded, without a diff.
    let mut audit = auditor.request::<Template>(&bob.request(), action::DELETE);
    audit.set_old(updated_template).set_status(403);
    audit.commit()?;
    recorded += 1;

    // 8. Bob deletes his workspace (id and target come from the old snapshot) and logs out.
    let mut audit = auditor.request::<Workspace>(&bob.request(), action::DELETE);
    audit.set_old(scheduled).set_status(200);
    audit.commit()?;
    recorded += 1;

    let mut audit = auditor.request::<APIKey>(&bob.request(), action::LOGOUT);
    audit.set_old(session(&bob, "bob")).set_status(200);
    audit.commit()?;
    recorded += 1;

    Ok(recorded)
}
