//! A small unified line diff, for telling a user how a committed document differs from what
//! the code generates (kept here rather than pulling a diff crate into audit-core's default
//! build).
//!
//! Common leading and trailing lines are skipped first; the lines left in between are
//! matched by a longest-common-subsequence table when that table is small, else shown as all
//! removed then all added (still a correct diff, only longer).

use std::fmt::Write as _;

/// Lines of context around each change.
const CONTEXT: usize = 2;
/// The largest LCS table (cells) built for the changed middle of the two texts.
const MAX_TABLE: usize = 4_000_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Removed,
    Added,
}

/// `old` → `new` as a unified diff with `label_old` / `label_new` headers, or `""` if the
/// texts are equal.
pub(crate) fn unified(old: &str, new: &str, label_old: &str, label_new: &str) -> String {
    if old == new {
        return String::new();
    }
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let ops = edit_script(&a, &b);
    let mut out = format!("--- {label_old}\n+++ {label_new}\n");
    for hunk in hunks(&ops) {
        write_hunk(
            &mut out,
            &ops[hunk.clone()],
            &a,
            &b,
            line_numbers(&ops, hunk.start),
        );
    }
    out
}

/// The operations turning `a` into `b`, in order.
fn edit_script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a_mid, b_mid) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops = vec![Op::Same; prefix];
    if a_mid.len().saturating_mul(b_mid.len()) <= MAX_TABLE {
        ops.extend(lcs_script(a_mid, b_mid));
    } else {
        ops.extend(std::iter::repeat_n(Op::Removed, a_mid.len()));
        ops.extend(std::iter::repeat_n(Op::Added, b_mid.len()));
    }
    ops.extend(std::iter::repeat_n(Op::Same, suffix));
    ops
}

fn lcs_script(a: &[&str], b: &[&str]) -> Vec<Op> {
    // lengths[i][j]: the LCS length of a[i..] and b[j..].
    let width = b.len() + 1;
    let mut lengths = vec![0u32; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lengths[i * width + j] = if a[i] == b[j] {
                lengths[(i + 1) * width + j + 1] + 1
            } else {
                lengths[(i + 1) * width + j].max(lengths[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(a.len() + b.len());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push(Op::Same);
            (i, j) = (i + 1, j + 1);
        } else if i < a.len()
            && (j == b.len() || lengths[(i + 1) * width + j] >= lengths[i * width + j + 1])
        {
            ops.push(Op::Removed);
            i += 1;
        } else {
            ops.push(Op::Added);
            j += 1;
        }
    }
    ops
}

/// Ranges of `ops` to print: each change with up to `CONTEXT` unchanged lines around it,
/// changes closer than that merged into one hunk.
fn hunks(ops: &[Op]) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for (at, op) in ops.iter().enumerate() {
        if *op == Op::Same {
            continue;
        }
        let start = at.saturating_sub(CONTEXT);
        let end = (at + 1 + CONTEXT).min(ops.len());
        match out.last_mut() {
            Some(last) if start <= last.end => last.end = end,
            _ => out.push(start..end),
        }
    }
    out
}

/// The 1-based line numbers in the old and new text where the op at `index` starts.
fn line_numbers(ops: &[Op], index: usize) -> (usize, usize) {
    let before = &ops[..index];
    let old = before.iter().filter(|op| **op != Op::Added).count();
    let new = before.iter().filter(|op| **op != Op::Removed).count();
    (old + 1, new + 1)
}

fn write_hunk(out: &mut String, ops: &[Op], a: &[&str], b: &[&str], start: (usize, usize)) {
    let old_len = ops.iter().filter(|op| **op != Op::Added).count();
    let new_len = ops.iter().filter(|op| **op != Op::Removed).count();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "@@ -{},{old_len} +{},{new_len} @@", start.0, start.1);
    let (mut i, mut j) = (start.0 - 1, start.1 - 1);
    for op in ops {
        let _ = match op {
            Op::Same => {
                (i, j) = (i + 1, j + 1);
                writeln!(out, " {}", a[i - 1])
            }
            Op::Removed => {
                i += 1;
                writeln!(out, "-{}", a[i - 1])
            }
            Op::Added => {
                j += 1;
                writeln!(out, "+{}", b[j - 1])
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified("a\nb\n", "a\nb\n", "old", "new"), "");
    }

    #[test]
    fn a_change_is_shown_with_its_context_and_line_numbers() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n11\n12\n";
        assert_eq!(
            unified(old, new, "doc.md (committed)", "doc.md (generated)"),
            "--- doc.md (committed)\n+++ doc.md (generated)\n\
             @@ -3,5 +3,5 @@\n 3\n 4\n-5\n+five\n 6\n 7\n\
             @@ -10,2 +10,3 @@\n 10\n 11\n+12\n"
        );
    }

    #[test]
    fn nearby_changes_share_a_hunk_and_insertions_keep_their_place() {
        let diff = unified("a\nb\nc\nd\n", "a\nx\nc\nd\ny\n", "o", "n");
        assert_eq!(
            diff,
            "--- o\n+++ n\n@@ -1,4 +1,5 @@\n a\n-b\n+x\n c\n d\n+y\n"
        );
    }

    #[test]
    fn a_huge_change_falls_back_to_removed_then_added() {
        let old: String = (0..3000).map(|i| format!("old {i}\n")).collect();
        let new: String = (0..3000).map(|i| format!("new {i}\n")).collect();
        let diff = unified(&old, &new, "o", "n");
        assert_eq!(diff.lines().filter(|l| l.starts_with('-')).count(), 3001);
        assert_eq!(diff.lines().filter(|l| l.starts_with('+')).count(), 3001);
    }
}
