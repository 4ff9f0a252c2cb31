//! Envoy's response flags: why a request ended the way it did, as the `response.flags`
//! attribute (a bit field) and the access log's `%RESPONSE_FLAGS%` (short names) show it.

/// The bits wasp sets, with Envoy's values (`StreamInfo::CoreResponseFlag`).
pub const UPSTREAM_REQUEST_TIMEOUT: u32 = 0x4;
pub const UPSTREAM_CONNECTION_FAILURE: u32 = 0x20;
pub const UPSTREAM_CONNECTION_TERMINATION: u32 = 0x40;
pub const UPSTREAM_OVERFLOW: u32 = 0x80;
pub const NO_ROUTE_FOUND: u32 = 0x100;
pub const UPSTREAM_RETRY_LIMIT_EXCEEDED: u32 = 0x8000;
pub const STREAM_IDLE_TIMEOUT: u32 = 0x1_0000;
pub const DOWNSTREAM_PROTOCOL_ERROR: u32 = 0x4_0000;
pub const NO_CLUSTER_FOUND: u32 = 0x100_0000;

/// Short names, in the order Envoy prints them.
const NAMES: [(u32, &str); 9] = [
    (UPSTREAM_REQUEST_TIMEOUT, "UT"),
    (UPSTREAM_CONNECTION_FAILURE, "UF"),
    (UPSTREAM_CONNECTION_TERMINATION, "UC"),
    (UPSTREAM_OVERFLOW, "UO"),
    (NO_ROUTE_FOUND, "NR"),
    (UPSTREAM_RETRY_LIMIT_EXCEEDED, "URX"),
    (STREAM_IDLE_TIMEOUT, "SI"),
    (DOWNSTREAM_PROTOCOL_ERROR, "DPE"),
    (NO_CLUSTER_FOUND, "NC"),
];

/// `UF,URX`, or `""` when no flag is set.
pub fn short_names(bits: u32) -> String {
    NAMES
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_in_envoys_order() {
        use super::*;
        assert_eq!(short_names(0), "");
        assert_eq!(
            short_names(UPSTREAM_RETRY_LIMIT_EXCEEDED | UPSTREAM_CONNECTION_FAILURE),
            "UF,URX"
        );
    }
}
