//! Configuration errors: a format that Envoy would reject, or one wasp cannot honour.

/// Why a format string (or a JSON format) was rejected.
///
/// Every message names the operator and where it starts: `position` is the byte offset of its
/// opening `%` in the format string. Envoy rejects the same formats when it loads its
/// configuration, so wasp does too, rather than logging `-` for a typo for ever.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// A `%` that starts neither `%%` nor a well-formed operator (`%NAME%`, `%NAME(ARG)%`,
    /// `%NAME(ARG):LENGTH%`, NAME in `A-Z 0-9 _`), e.g. an unterminated one.
    #[error(
        "invalid access log operator at {position}: expected %NAME%, %NAME(ARG)% or \
         %NAME(ARG):LENGTH% (write %% for a literal %)"
    )]
    Malformed {
        /// Byte offset of the `%`.
        position: usize,
    },

    /// Well-formed, but no such operator exists (in Envoy either).
    #[error("unknown access log operator %{name}% at {position}")]
    Unknown {
        /// The operator's name, e.g. `FOO`.
        name: String,
        /// Byte offset of its `%`.
        position: usize,
    },

    /// An operator Envoy has (DYNAMIC_METADATA, FILTER_STATE, CEL, …) that wasp does not
    /// render: rejected rather than silently logged as `-`.
    #[error("access log operator %{name}% at {position} is not supported by wasp")]
    Unsupported {
        /// The operator's name.
        name: String,
        /// Byte offset of its `%`.
        position: usize,
    },

    /// An argument `(…)` given to an operator that takes none.
    #[error("%{name}% at {position} takes no argument: write %{name}%")]
    UnexpectedArgument {
        /// The operator's name.
        name: String,
        /// Byte offset of its `%`.
        position: usize,
    },

    /// A length limit `:N` given to an operator that does not truncate.
    #[error("%{name}% at {position} takes no length limit (:N)")]
    UnexpectedLength {
        /// The operator's name.
        name: String,
        /// Byte offset of its `%`.
        position: usize,
    },

    /// An operator that needs an argument, given none.
    #[error("%{name}% at {position} needs {what}: {example}")]
    MissingArgument {
        /// The operator's name.
        name: String,
        /// Byte offset of its `%`.
        position: usize,
        /// What is missing, e.g. `a header name`.
        what: &'static str,
        /// How to write it, e.g. `%REQ(X)%`.
        example: &'static str,
    },

    /// An argument the operator cannot use.
    #[error("%{name}({argument})% at {position}: {reason}")]
    InvalidArgument {
        /// The operator's name.
        name: String,
        /// The argument as written.
        argument: String,
        /// Byte offset of its `%`.
        position: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// A JSON format whose value at `path` (keys and indices joined by `.`) is rejected.
    #[error("json_format value at {path}: {error}")]
    Json {
        /// Where the value sits, e.g. `upstream.host` or `tags.2`.
        path: String,
        /// What is wrong with it (its positions count from the start of that value).
        error: Box<FormatError>,
    },
}
