//! The incoming trace context, whichever format carries it.

use crate::context::Incoming;

/// Reads the incoming trace context: W3C first, then B3 (single header, then multi). A format
/// whose headers are invalid counts as absent, so the next one is tried; `None` when no
/// format gave a context.
pub fn extract<'h>(get: &dyn Fn(&str) -> Option<&'h str>) -> Option<Incoming> {
    crate::w3c::extract(get).or_else(|| crate::b3::extract(get))
}
