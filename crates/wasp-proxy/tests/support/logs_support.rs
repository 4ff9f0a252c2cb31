//! Plugin log lines, captured per test process.

/// Plugin log lines (target `wasp::plugin`) as (plugin name, message), for the whole test
/// process. Give each test's plugin a name of its own to count only its lines.
pub mod logs {
    use std::sync::Mutex;

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    static LINES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

    struct Capture;

    #[derive(Default)]
    struct Fields {
        plugin: String,
        message: String,
    }

    impl Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            match field.name() {
                "plugin" => self.plugin = value.to_owned(),
                "message" => self.message = value.to_owned(),
                _ => {}
            }
        }

        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            match field.name() {
                "plugin" => self.plugin = format!("{value:?}"),
                "message" => self.message = format!("{value:?}"),
                _ => {}
            }
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            metadata.target() == "wasp::plugin" && *metadata.level() <= Level::INFO
        }

        fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
            Some(tracing::level_filters::LevelFilter::INFO)
        }

        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }

        fn record(&self, _: &Id, _: &Record<'_>) {}

        fn record_follows_from(&self, _: &Id, _: &Id) {}

        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields::default();
            event.record(&mut fields);
            LINES
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((fields.plugin, fields.message));
        }

        fn enter(&self, _: &Id) {}

        fn exit(&self, _: &Id) {}
    }

    /// Starts capturing (idempotent); call before starting the proxy.
    pub fn capture() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            tracing::subscriber::set_global_default(Capture).expect("a global subscriber");
        });
    }

    /// How many lines of `plugin` start with `prefix`.
    pub fn count(plugin: &str, prefix: &str) -> usize {
        LINES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(p, m)| p == plugin && m.starts_with(prefix))
            .count()
    }

    /// The lines of `plugin` that start with `prefix`.
    pub fn lines(plugin: &str, prefix: &str) -> Vec<String> {
        LINES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(p, m)| p == plugin && m.starts_with(prefix))
            .map(|(_, m)| m.clone())
            .collect()
    }
}
