//! Cursor pagination shared by GraphQL connections and REST lists.
//!
//! Cursors are record ids, which sort by creation time; a page is a window of ids after
//! and/or before a cursor, read from the front (`first`) or the back (`last`).

use crate::error::AppError;

/// Page size when the client gives none.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: u64 = 100;

/// A validated window over an id-ordered list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PageRequest {
    /// Only ids strictly greater than this.
    pub after: Option<String>,
    /// Only ids strictly smaller than this.
    pub before: Option<String>,
    /// How many items.
    pub limit: u64,
    /// Take the last `limit` items of the window instead of the first.
    pub from_end: bool,
}

/// One page of items, in ascending id order.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// More items follow the last one.
    pub has_next: bool,
    /// Items precede the first one.
    pub has_previous: bool,
}

impl<T> Page<T> {
    /// The same page with each item transformed.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next: self.has_next,
            has_previous: self.has_previous,
        }
    }
}

impl PageRequest {
    /// Relay arguments: `first`/`after` and `last`/`before`.
    pub fn relay(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Self, AppError> {
        if first.is_some() && last.is_some() {
            return Err(AppError::bad_input(
                "last",
                "pass either `first` or `last`, not both",
            ));
        }
        let size = |value: Option<i32>, field: &str| -> Result<u64, AppError> {
            match value {
                None => Ok(DEFAULT_PAGE_SIZE),
                Some(n) if (0..=MAX_PAGE_SIZE as i32).contains(&n) => Ok(n as u64),
                Some(_) => Err(AppError::bad_input(
                    field,
                    format!("must be between 0 and {MAX_PAGE_SIZE}"),
                )),
            }
        };
        Ok(Self {
            limit: if last.is_some() {
                size(last, "last")?
            } else {
                size(first, "first")?
            },
            from_end: last.is_some(),
            after: cursor(after, "after")?,
            before: cursor(before, "before")?,
        })
    }

    /// REST arguments: `limit` and `cursor` (read forwards).
    pub fn rest(limit: Option<u64>, next: Option<String>) -> Result<Self, AppError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(AppError::bad_input(
                "limit",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        Ok(Self {
            after: cursor(next, "cursor")?,
            before: None,
            limit,
            from_end: false,
        })
    }

    /// Turns the rows read with [`Self::fetch_limit`] (in query order) into a page.
    pub fn finish<T>(&self, mut rows: Vec<T>) -> Page<T> {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(self.limit as usize);
        if self.from_end {
            rows.reverse();
            Page {
                items: rows,
                has_next: self.before.is_some(),
                has_previous: more,
            }
        } else {
            Page {
                items: rows,
                has_next: more,
                has_previous: self.after.is_some(),
            }
        }
    }

    /// Rows to read: one more than the page, to learn whether more exist.
    pub fn fetch_limit(&self) -> u64 {
        self.limit + 1
    }
}

/// Cursors are ids: printable ASCII without quotes, of bounded length.
fn cursor(raw: Option<String>, field: &str) -> Result<Option<String>, AppError> {
    match raw {
        Some(c)
            if c.is_empty()
                || c.len() > 64
                || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            Err(AppError::bad_input(field, "is not a valid cursor"))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_from_the_end_returns_items_in_ascending_order() {
        let req = PageRequest::relay(None, None, Some(2), None).expect("valid");
        let page = req.finish(vec![5, 4, 3]);
        assert_eq!(page.items, vec![4, 5]);
        assert!(page.has_previous);
        assert!(!page.has_next);
    }

    #[test]
    fn a_full_extra_row_means_there_is_a_next_page() {
        let req = PageRequest::rest(Some(2), None).expect("valid");
        let page = req.finish(vec![1, 2, 3]);
        assert_eq!(page.items, vec![1, 2]);
        assert!(page.has_next);
    }

    #[test]
    fn out_of_range_sizes_and_mixed_directions_are_refused() {
        assert!(PageRequest::relay(Some(101), None, None, None).is_err());
        assert!(PageRequest::relay(Some(1), None, Some(1), None).is_err());
        assert!(PageRequest::rest(Some(0), None).is_err());
        assert!(PageRequest::rest(None, Some("x' or 1=1".into())).is_err());
    }
}
