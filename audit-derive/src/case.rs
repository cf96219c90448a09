//! Name conventions: serde's `rename_all` rules, and snake_case resource names.

/// A serde `rename_all` rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

/// The rule names serde accepts, in the order serde documents them.
pub(crate) const RULE_NAMES: &[(&str, RenameRule)] = &[
    ("lowercase", RenameRule::Lower),
    ("UPPERCASE", RenameRule::Upper),
    ("PascalCase", RenameRule::Pascal),
    ("camelCase", RenameRule::Camel),
    ("snake_case", RenameRule::Snake),
    ("SCREAMING_SNAKE_CASE", RenameRule::ScreamingSnake),
    ("kebab-case", RenameRule::Kebab),
    ("SCREAMING-KEBAB-CASE", RenameRule::ScreamingKebab),
];

impl RenameRule {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        RULE_NAMES.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
    }

    /// Applies the rule to a snake_case field name, exactly as serde does for fields.
    pub(crate) fn apply_to_field(self, field: &str) -> String {
        match self {
            RenameRule::Lower | RenameRule::Snake => field.to_owned(),
            RenameRule::Upper | RenameRule::ScreamingSnake => field.to_ascii_uppercase(),
            RenameRule::Pascal => {
                let mut out = String::new();
                let mut capitalize = true;
                for ch in field.chars() {
                    if ch == '_' {
                        capitalize = true;
                    } else if capitalize {
                        out.push(ch.to_ascii_uppercase());
                        capitalize = false;
                    } else {
                        out.push(ch);
                    }
                }
                out
            }
            RenameRule::Camel => {
                let pascal = RenameRule::Pascal.apply_to_field(field);
                let mut chars = pascal.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => pascal,
                }
            }
            RenameRule::Kebab => field.replace('_', "-"),
            RenameRule::ScreamingKebab => field.to_ascii_uppercase().replace('_', "-"),
        }
    }
}

/// `WorkspaceBuild` → `workspace_build`, `APIKey` → `api_key`, `GitSSHKey` → `git_ssh_key`.
pub(crate) fn to_snake_case(type_name: &str) -> String {
    let chars: Vec<char> = type_name.chars().collect();
    let mut out = String::with_capacity(type_name.len() + 4);
    for (i, &ch) in chars.iter().enumerate() {
        if ch.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let starts_word = match prev {
                None | Some('_') => false,
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                // The last capital of an acronym starts a new word: `SSHKey` → `ssh_key`.
                Some(p) if p.is_uppercase() => next.is_some_and(|n| n.is_lowercase()),
                Some(_) => false,
            };
            if starts_word {
                out.push('_');
            }
            out.extend(ch.to_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_become_snake_case() {
        for (name, snake) in [
            ("Workspace", "workspace"),
            ("WorkspaceBuild", "workspace_build"),
            ("APIKey", "api_key"),
            ("GitSSHKey", "git_ssh_key"),
            ("OAuth2ProviderApp", "o_auth2_provider_app"),
            ("User", "user"),
            ("already_snake", "already_snake"),
        ] {
            assert_eq!(to_snake_case(name), snake, "{name}");
        }
    }

    #[test]
    fn rename_rules_match_serde() {
        let f = "last_used_at";
        let expected = [
            "last_used_at",
            "LAST_USED_AT",
            "LastUsedAt",
            "lastUsedAt",
            "last_used_at",
            "LAST_USED_AT",
            "last-used-at",
            "LAST-USED-AT",
        ];
        for ((_, rule), want) in RULE_NAMES.iter().zip(expected) {
            assert_eq!(rule.apply_to_field(f), want, "{rule:?}");
        }
    }
}
