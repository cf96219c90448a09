//! "Did you mean …?" for misspelt attribute words.

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&word, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1) || c.starts_with(&word) && word.len() >= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_word() {
        let words = [
            "track", "ignore", "secret", "reason", "rename", "id", "target", "flatten",
        ];
        assert_eq!(closest("trak", &words), Some("track"));
        assert_eq!(closest("secrt", &words), Some("secret"));
        assert_eq!(closest("ignored", &words), Some("ignore"));
        assert_eq!(closest("Track", &words), Some("track"));
        assert_eq!(closest("flat", &words), Some("flatten"));
        assert_eq!(closest("banana", &words), None);
    }
}
