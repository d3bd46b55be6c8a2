//! Per-thread memo of parsed expressions (JSONPaths, intrinsic calls) keyed by their text.
//!
//! A definition's paths and intrinsic calls are fixed strings, but they are evaluated once per
//! state entered: a Map over 100,000 items evaluates `$.id` 100,000 times. Parsing with the
//! RFC 9535 parser each time was a third of the engine's run time, so each thread keeps what
//! it has parsed. The cache is per thread (no lock on the hot path) and bounded: past
//! [`CAPACITY`] entries it starts over, so a long-running host that sees many definitions
//! cannot grow it without limit. Failed parses are not cached (they end the state anyway).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::thread::LocalKey;

/// Most entries a thread keeps per kind of expression.
pub(crate) const CAPACITY: usize = 4096;

/// What a thread-local cache of `T` is.
pub(crate) type Cache<T> = RefCell<HashMap<Box<str>, Rc<T>>>;

/// The parse of `text` from `cache`, parsing (and remembering) it on a miss.
pub(crate) fn cached<T: 'static, E>(
    cache: &'static LocalKey<Cache<T>>,
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Rc<T>, E> {
    if let Some(hit) = cache.with(|c| c.borrow().get(text).cloned()) {
        return Ok(hit);
    }
    let parsed = Rc::new(parse(text)?);
    cache.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CAPACITY {
            c.clear();
        }
        c.insert(text.into(), parsed.clone());
    });
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static LENGTHS: Cache<usize> = RefCell::new(HashMap::new());
    }

    #[test]
    fn parses_once_per_text_and_stays_bounded() {
        let mut parses = 0;
        for _ in 0..3 {
            let n = cached(&LENGTHS, "abc", |t| {
                parses += 1;
                Ok::<_, ()>(t.len())
            });
            assert_eq!(*n.unwrap(), 3);
        }
        assert_eq!(parses, 1, "a hit must not parse again");
        assert!(cached(&LENGTHS, "bad", |_| Err::<usize, _>("no")).is_err());
        assert!(
            LENGTHS.with(|c| !c.borrow().contains_key("bad")),
            "errors are not cached"
        );
        for i in 0..CAPACITY + 10 {
            cached(&LENGTHS, &format!("k{i}"), |t| Ok::<_, ()>(t.len())).unwrap();
        }
        assert!(LENGTHS.with(|c| c.borrow().len()) <= CAPACITY);
    }
}
