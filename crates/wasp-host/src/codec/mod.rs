//! The byte formats that cross the ABI: header "pairs" and property values/paths.

pub mod pairs;
pub mod property;
pub mod protobuf;
