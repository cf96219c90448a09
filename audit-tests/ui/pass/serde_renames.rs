//! Audit names follow `rename`, then `#[serde(rename)]`, then `#[serde(rename_all)]`.
use audit_core::Auditable;
use serde::Serialize;

#[derive(Auditable, Serialize)]
#[serde(rename_all = "camelCase")]
struct OAuth2App {
    #[audit(track, id)]
    app_id: u64,
    #[audit(track)]
    #[serde(rename = "callback")]
    callback_url: String,
    #[audit(track, rename = "display")]
    display_name: String,
    #[audit(secret)]
    #[serde(rename(serialize = "secretHash", deserialize = "secret_hash"), skip_serializing_if = "String::is_empty")]
    client_secret_hash: String,
    #[audit(ignore)]
    r#type: String,
}

fn main() {
    let names: Vec<_> = OAuth2App::schema().fields.iter().map(|f| f.name).collect();
    assert_eq!(names, ["appId", "callback", "display", "secretHash", "type"]);
    let rust_names: Vec<_> = OAuth2App::schema().fields.iter().map(|f| f.rust_name).collect();
    assert_eq!(rust_names, ["app_id", "callback_url", "display_name", "client_secret_hash", "type"]);
    assert_eq!(OAuth2App::schema().resource_type, "o_auth2_app");
    let app = OAuth2App {
        app_id: 1,
        callback_url: "https://x".into(),
        display_name: "X".into(),
        client_secret_hash: "h".into(),
        r#type: "web".into(),
    };
    let d = audit_core::diff(None, Some(&app));
    let keys: Vec<_> = d.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["appId", "callback", "display", "secretHash"]);
}
