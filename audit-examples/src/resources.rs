//! The audited resources of a Coder-like deployment.
//!
//! Classifications follow Coder's audit table, with one deliberate change: values that grant
//! access (password hashes, private keys, API key secrets, license JWTs, OAuth2 secrets) are
//! `secret` — their changes are recorded, their values never are — where Coder either tracked
//! them in clear or ignored them entirely.

use std::collections::BTreeMap;

use audit_core::Auditable;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// How a user signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginType {
    Password,
    Github,
    Oidc,
    Token,
}

/// Whether a user may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Suspended,
    Dormant,
}

/// Creation and update times, embedded (flattened) in several resources.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(embedded)]
pub struct Timestamps {
    #[audit(ignore, reason = "set once by the database")]
    pub created_at: DateTime<Utc>,
    #[audit(ignore, reason = "bumped on every write; the event time says when")]
    pub updated_at: DateTime<Utc>,
}

/// An API key or session token.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(
    resource = "api_key",
    actions(login, logout, register, create, delete),
    icon = "key"
)]
pub struct APIKey {
    #[audit(ignore, id, reason = "the key id is shown as the resource id")]
    pub id: String,
    #[audit(track)]
    pub user_id: Uuid,
    #[audit(secret, reason = "hash of the key's secret half")]
    pub hashed_secret: Vec<u8>,
    #[audit(track)]
    pub expires_at: DateTime<Utc>,
    #[audit(track)]
    pub last_used: DateTime<Utc>,
    #[audit(ignore, reason = "derived from expires_at")]
    pub lifetime_seconds: i64,
    #[audit(ignore, reason = "changes with every request")]
    pub ip_address: String,
    #[audit(ignore, reason = "fixed when the key is made")]
    pub login_type: LoginType,
    #[audit(track)]
    pub scope: String,
    #[audit(track, target)]
    pub token_name: String,
    #[audit(flatten)]
    pub timestamps: Timestamps,
}

/// A group of users with a shared quota.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(resource = "group", actions(create, write, delete), icon = "group")]
pub struct Group {
    #[audit(track, id)]
    pub id: Uuid,
    #[audit(track, target)]
    pub name: String,
    #[audit(track)]
    pub display_name: String,
    #[audit(ignore, reason = "a group never moves between organizations")]
    pub organization_id: Uuid,
    #[audit(track)]
    pub avatar_url: String,
    #[audit(track)]
    pub members: Vec<Uuid>,
    #[audit(track)]
    pub quota_allowance: i32,
}

/// A user's Git SSH key pair.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(resource = "git_ssh_key", actions(create, write))]
pub struct GitSSHKey {
    #[audit(track, id)]
    pub user_id: Uuid,
    #[audit(secret, reason = "grants push access to every repository of the user")]
    pub private_key: String,
    #[audit(track)]
    pub public_key: String,
    #[audit(flatten)]
    pub timestamps: Timestamps,
}

/// An installed license.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(resource = "license", actions(create, delete))]
pub struct License {
    #[audit(ignore, reason = "database row number")]
    pub id: i32,
    #[audit(track, target)]
    pub uuid: Uuid,
    #[audit(track)]
    pub uploaded_at: DateTime<Utc>,
    #[audit(secret, reason = "the signed license; whoever holds it can install it")]
    pub jwt: String,
    #[audit(track)]
    pub exp: DateTime<Utc>,
}

/// An organization.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(resource = "organization", actions(create, write, delete))]
pub struct Organization {
    #[audit(track, id)]
    pub id: Uuid,
    #[audit(track, target)]
    pub name: String,
    #[audit(track)]
    pub display_name: String,
    #[audit(track)]
    pub description: String,
    #[audit(track)]
    pub icon: String,
    #[audit(flatten)]
    pub timestamps: Timestamps,
}

/// A user's membership of an organization.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(resource = "organization_member", actions(create, write, delete))]
pub struct OrganizationMember {
    #[audit(track, id)]
    pub user_id: Uuid,
    #[audit(track)]
    pub organization_id: Uuid,
    #[audit(track)]
    pub roles: Vec<String>,
    #[audit(flatten)]
    pub timestamps: Timestamps,
}

/// A workspace template.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(
    resource = "template",
    actions(create, write, delete),
    icon = "template"
)]
pub struct Template {
    #[audit(track, id)]
    pub id: Uuid,
    #[audit(ignore, reason = "a template never moves between organizations")]
    pub organization_id: Uuid,
    #[audit(ignore, reason = "soft-delete flag; the delete action records it")]
    pub deleted: bool,
    #[audit(track, target)]
    pub name: String,
    #[audit(track)]
    pub display_name: String,
    #[audit(track)]
    pub description: String,
    #[audit(track)]
    pub icon: String,
    #[audit(track)]
    pub provisioner: String,
    #[audit(track)]
    pub active_version_id: Uuid,
    #[audit(track)]
    pub default_ttl: i64,
    #[audit(track)]
    pub max_ttl: i64,
    #[audit(track)]
    pub created_by: Uuid,
    #[audit(track)]
    pub group_acl: BTreeMap<String, Vec<String>>,
    #[audit(track)]
    pub user_acl: BTreeMap<String, Vec<String>>,
    #[audit(track)]
    pub allow_user_cancel_workspace_jobs: bool,
    #[audit(flatten)]
    pub timestamps: Timestamps,
}

/// One version of a template.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(resource = "template_version", actions(create, write))]
pub struct TemplateVersion {
    #[audit(track, id)]
    pub id: Uuid,
    #[audit(track)]
    pub template_id: Option<Uuid>,
    #[audit(ignore, reason = "a version never moves between organizations")]
    pub organization_id: Uuid,
    #[audit(track, target)]
    pub name: String,
    #[audit(track)]
    pub readme: String,
    #[audit(ignore, reason = "internal provisioner job reference")]
    pub job_id: Uuid,
    #[audit(track)]
    pub created_by: Uuid,
    #[audit(flatten)]
    pub timestamps: Timestamps,
}

/// A user account.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(resource = "user", actions(create, write, delete), icon = "user")]
pub struct User {
    #[audit(track, id)]
    pub id: Uuid,
    #[audit(track)]
    pub email: String,
    #[audit(track, target)]
    pub username: String,
    #[audit(secret, reason = "password hash; a change means the password changed")]
    pub hashed_password: Vec<u8>,
    #[audit(ignore, reason = "cosmetic")]
    pub avatar_url: String,
    #[audit(track)]
    pub status: UserStatus,
    #[audit(track)]
    pub rbac_roles: Vec<String>,
    #[audit(
        ignore,
        reason = "changed by the identity provider, not by a user action"
    )]
    pub login_type: LoginType,
    #[audit(track)]
    pub deleted: bool,
    #[audit(ignore, reason = "bumped on every request")]
    pub last_seen_at: DateTime<Utc>,
    #[audit(flatten)]
    pub timestamps: Timestamps,
}

/// A development workspace.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(
    resource = "workspace",
    actions(create, write, delete),
    icon = "workspace"
)]
pub struct Workspace {
    #[audit(track, id)]
    pub id: Uuid,
    #[audit(track)]
    pub owner_id: Uuid,
    #[audit(ignore, reason = "follows the template's organization")]
    pub organization_id: Uuid,
    #[audit(track)]
    pub template_id: Uuid,
    #[audit(ignore, reason = "soft-delete flag; the delete action records it")]
    pub deleted: bool,
    #[audit(track, target)]
    pub name: String,
    #[audit(track)]
    pub autostart_schedule: Option<String>,
    #[audit(track)]
    pub ttl: Option<i64>,
    #[audit(ignore, reason = "bumped on every request")]
    pub last_used_at: DateTime<Utc>,
    #[audit(secret, reason = "authenticates the workspace agent")]
    pub agent_token: Uuid,
    #[audit(flatten)]
    pub timestamps: Timestamps,
}

/// One start or stop of a workspace.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(resource = "workspace_build", actions(start, stop))]
pub struct WorkspaceBuild {
    #[audit(ignore, id, reason = "a new build each time; shown as the resource id")]
    pub id: Uuid,
    #[audit(
        ignore,
        reason = "the workspace is named in the event's additional fields"
    )]
    pub workspace_id: Uuid,
    #[audit(track)]
    pub template_version_id: Uuid,
    #[audit(ignore, reason = "sequence number, in additional fields")]
    pub build_number: i32,
    #[audit(ignore, reason = "the action (start or stop) records it")]
    pub transition: String,
    #[audit(ignore, reason = "the actor records it")]
    pub initiator_id: Uuid,
    #[audit(secret, reason = "Terraform state can hold cloud credentials")]
    pub provisioner_state: Vec<u8>,
    #[audit(ignore, reason = "internal provisioner job reference")]
    pub job_id: Uuid,
    #[audit(ignore, reason = "recomputed by the scheduler")]
    pub deadline: Option<DateTime<Utc>>,
    #[audit(ignore, reason = "recomputed by the scheduler")]
    pub max_deadline: Option<DateTime<Utc>>,
    #[audit(ignore, reason = "in additional fields as build_reason")]
    pub reason: String,
    #[audit(ignore, reason = "billing data, audited by the billing system")]
    pub daily_cost: i32,
    #[audit(flatten)]
    pub timestamps: Timestamps,
}

/// A workspace proxy (a regional relay).
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(resource = "workspace_proxy", actions(create, write, delete))]
pub struct WorkspaceProxy {
    #[audit(track, id)]
    pub id: Uuid,
    #[audit(track, target)]
    pub name: String,
    #[audit(track)]
    pub display_name: String,
    #[audit(track)]
    pub url: String,
    #[audit(track)]
    pub wildcard_hostname: String,
    #[audit(secret, reason = "authenticates the proxy to the control plane")]
    pub token_hashed_secret: Vec<u8>,
    #[audit(track)]
    pub deleted: bool,
    #[audit(flatten)]
    pub timestamps: Timestamps,
}

/// An OAuth2 application for which this deployment is the provider.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(resource = "oauth2_provider_app", actions(create, write, delete))]
pub struct OAuth2ProviderApp {
    #[audit(track, id)]
    pub id: Uuid,
    #[audit(track, target)]
    pub name: String,
    #[audit(track)]
    pub icon: String,
    #[audit(track)]
    pub callback_url: String,
    #[audit(flatten)]
    pub timestamps: Timestamps,
}

/// A client secret of an OAuth2 provider app.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(resource = "oauth2_provider_app_secret", actions(create, delete))]
pub struct OAuth2ProviderAppSecret {
    #[audit(track, id)]
    pub id: Uuid,
    #[audit(track)]
    pub app_id: Uuid,
    #[audit(track, target)]
    pub display_secret: String,
    #[audit(secret, reason = "hash of the client secret")]
    pub hashed_secret: Vec<u8>,
    #[audit(ignore, reason = "bumped on every token exchange")]
    pub last_used_at: Option<DateTime<Utc>>,
    #[audit(ignore, reason = "set once by the database")]
    pub created_at: DateTime<Utc>,
}

/// A custom role with site or organization permissions.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(resource = "custom_role", actions(create, write, delete))]
pub struct CustomRole {
    #[audit(track, id, target)]
    pub name: String,
    #[audit(track)]
    pub display_name: String,
    #[audit(track)]
    pub organization_id: Option<Uuid>,
    #[audit(track)]
    pub site_permissions: Vec<String>,
    #[audit(track)]
    pub org_permissions: Vec<String>,
    #[audit(track)]
    pub user_permissions: Vec<String>,
    #[audit(flatten)]
    pub timestamps: Timestamps,
}

/// Deployment health-check settings.
#[derive(Auditable, Debug, Clone, PartialEq)]
#[audit(resource = "health_settings", actions(write))]
pub struct HealthSettings {
    #[audit(ignore, id, reason = "a singleton; the id never changes")]
    pub id: Uuid,
    #[audit(track)]
    pub dismissed_healthchecks: Vec<String>,
}
