//! Configuration errors. Nothing on the request path returns an error: bad trace headers are
//! ignored and export failures are counted, so only building a [`Tracer`](crate::Tracer) can
//! fail.

/// Why a [`TracingConfig`](crate::TracingConfig) was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// `otlp_endpoint` is not an absolute `http://` or `https://` URL.
    #[error("invalid OTLP endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },

    /// `sampling_percent` is not a number between 0 and 100 (Envoy's `random_sampling`).
    #[error("invalid trace sampling percentage {0}: expected a number from 0 to 100")]
    InvalidSampling(f64),

    /// The export thread, its runtime or its TLS client could not be set up.
    #[error("cannot start the OTLP trace exporter: {0}")]
    Exporter(String),
}
