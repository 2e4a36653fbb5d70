//! Django's common-password list (see `data/README.md` for its source and licence).

use std::sync::OnceLock;

/// Sorted (bytewise), de-duplicated, lowercase, one password per line.
static LIST: &str = include_str!("../data/common-passwords.txt");

/// Whether `candidate` (already lowercased and trimmed, as Django compares) is on the list.
pub(crate) fn contains(candidate: &str) -> bool {
    // The file is sorted with `LC_ALL=C sort`, i.e. by bytes, which is `str`'s ordering, so the
    // index is one slice of borrowed lines searched in O(log n): no hashing of 19,640 entries.
    static INDEX: OnceLock<Vec<&'static str>> = OnceLock::new();
    INDEX
        .get_or_init(|| LIST.lines().collect())
        .binary_search(&candidate)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_and_unique_so_binary_search_is_valid() {
        let lines: Vec<&str> = LIST.lines().collect();
        assert!(lines.len() > 19_000);
        assert!(lines.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn finds_known_entries_and_not_others() {
        assert!(contains("password"));
        assert!(contains("12345678"));
        assert!(contains("qwerty"));
        assert!(!contains("correct horse battery staple zebra"));
        assert!(!contains("73926481"));
    }
}
