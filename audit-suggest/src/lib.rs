//! "Did you mean …?": the one typo-suggestion rule of the audit crates.
//!
//! The `#[derive(Auditable)]` macro suggests attribute words (`trak` → `track`) and the
//! query language suggests filter keys and values (`usrname` → `username`). Both call
//! [`closest`], so a typo is corrected the same way wherever a user makes it.
//!
//! The rule: compare without regard to ASCII case; the distance is the optimal string
//! alignment distance (insertions, deletions, substitutions and adjacent transpositions
//! cost 1 each, [`strsim::osa_distance`]); a candidate is close enough when the distance is
//! at most a third of the longer word's length (at least 1, at most 3), or when the candidate
//! starts with the word and the word has at least 3 characters (`flat` → `flatten`). The
//! nearest candidate wins; on a tie, the one listed first.
//!
//! ```
//! let keys = ["resource_type", "action", "username", "date_from"];
//! assert_eq!(audit_suggest::closest("usrname", keys), Some("username"));
//! assert_eq!(audit_suggest::closest("DATEFROM", keys), Some("date_from"));
//! assert_eq!(audit_suggest::closest("colour", keys), None);
//! ```

/// Words longer than this are never typos of a candidate (and are not compared, so a hostile
/// input cannot make the comparison expensive).
pub const MAX_LEN: usize = 64;

/// The candidate closest to `word`, if it is close enough to be a likely typo of it.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let word_len = word.chars().count();
    if word_len == 0 || word_len > MAX_LEN {
        return None;
    }
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let candidate_len = candidate.chars().count();
        if candidate_len > MAX_LEN {
            continue;
        }
        let distance = strsim::osa_distance(&word, &candidate.to_ascii_lowercase());
        let limit = (word_len.max(candidate_len) / 3).clamp(1, 3);
        let prefix = word_len >= 3 && candidate.to_ascii_lowercase().starts_with(&word);
        let close = distance <= limit || prefix;
        if close && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::closest;

    const WORDS: [&str; 8] = [
        "track", "ignore", "secret", "reason", "rename", "id", "target", "flatten",
    ];

    #[test]
    fn typos_find_their_word() {
        assert_eq!(closest("trak", WORDS), Some("track"));
        assert_eq!(closest("secrt", WORDS), Some("secret"));
        assert_eq!(closest("ignored", WORDS), Some("ignore"));
        assert_eq!(closest("Track", WORDS), Some("track"));
        assert_eq!(closest("flat", WORDS), Some("flatten"));
        assert_eq!(
            closest("traget", WORDS),
            Some("target"),
            "a transposition costs 1"
        );
    }

    #[test]
    fn unrelated_and_degenerate_words_get_no_suggestion() {
        assert_eq!(closest("banana", WORDS), None);
        assert_eq!(closest("", WORDS), None);
        assert_eq!(
            closest("x", WORDS),
            None,
            "too short to be a typo of a 2+ letter word"
        );
        assert_eq!(
            closest("fl", WORDS),
            None,
            "a 2-letter prefix is not enough"
        );
        assert_eq!(closest(&"a".repeat(10_000), WORDS), None);
    }

    #[test]
    fn the_nearest_wins_and_ties_go_to_the_first_listed() {
        assert_eq!(closest("rename", WORDS), Some("rename"));
        assert_eq!(closest("reasn", ["rename", "reason"]), Some("reason"));
        assert_eq!(closest("ab", ["ac", "ad"]), Some("ac"));
    }
}
