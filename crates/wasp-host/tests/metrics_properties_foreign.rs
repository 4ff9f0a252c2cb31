//! Metrics, properties (`proxy_get_property`/`proxy_set_property`) and foreign functions.

mod support;

use std::sync::Arc;

use support::*;
use wasp_host::shared::MetricValue;
use wasp_host::{HeadersAction, HttpStream, PropertyValue, StreamProperties, VmConfig};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn number(stream: &wasp_host::SharedHttpStream, name: &str) -> u64 {
    header(stream, name)
        .unwrap_or_else(|| panic!("no {name}"))
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn metrics_are_defined_recorded_and_read_back() {
    let mut f = start("hostcalls", "");
    let (_, first, action) = f.scenario("metrics", &[]);
    assert_eq!(action, HeadersAction::Continue);
    // The counter is process-wide (other tests count too): this request added 1 + 2.
    let counter = number(&first, "x-counter");
    assert!(counter >= 3, "{counter}");
    assert_eq!(header(&first, "x-gauge").as_deref(), Some("42"));
    assert_eq!(
        header(&first, "x-histogram-get").as_deref(),
        Some("BadArgument")
    );
    let (_, second, _) = f.scenario("metrics", &[]);
    assert!(number(&second, "x-counter") >= counter + 3);

    let snapshot = host().shared().metrics.snapshot();
    let value = |name: &str| {
        snapshot
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name} not in {snapshot:?}"))
            .value
            .clone()
    };
    assert!(
        matches!(value("hostcalls_requests_total"), MetricValue::Counter(n) if n >= counter + 3)
    );
    assert_eq!(value("hostcalls_gauge"), MetricValue::Gauge(42));
    let MetricValue::Histogram(histogram) = value("hostcalls_histogram") else {
        panic!("not a histogram")
    };
    assert!(histogram.count >= 2);
    assert_eq!(
        histogram.sum,
        7.0 * histogram.count as f64,
        "every sample was 7"
    );
}

#[test]
fn metrics_defined_by_two_vms_are_the_same_metrics() {
    let mut a = start("hostcalls", "");
    let mut b = start("hostcalls", "");
    let (_, first, _) = a.scenario("metrics", &[]);
    let (_, second, _) = b.scenario("metrics", &[]);
    assert!(number(&second, "x-counter") >= number(&first, "x-counter") + 3);
    let names: Vec<String> = host()
        .shared()
        .metrics
        .snapshot()
        .into_iter()
        .map(|m| m.name)
        .filter(|n| n.starts_with("hostcalls_"))
        .collect();
    assert_eq!(
        names,
        [
            "hostcalls_requests_total",
            "hostcalls_gauge",
            "hostcalls_histogram"
        ]
    );
}

struct Peer;

impl StreamProperties for Peer {
    fn property(&self, path: &[&[u8]], stream: &HttpStream) -> Option<PropertyValue> {
        match path {
            [b"source", b"address"] => Some(PropertyValue::String("10.0.0.1:5000".into())),
            [b"source", b"port"] => Some(PropertyValue::Int(5000)),
            // Header-derived attributes are answered before the embedder is asked.
            [b"request", b"method"] => Some(PropertyValue::String("FROM-EMBEDDER".into())),
            // The stream is handed over (locked): its state is readable.
            [b"connection", b"request_count"] => Some(PropertyValue::UInt(
                stream
                    .request_headers
                    .as_ref()
                    .map_or(0, wasp_host::HeaderMap::len) as u64,
            )),
            _ => None,
        }
    }
}

fn properties(paths: &[&str]) -> Vec<(String, String)> {
    let recorder = Recorder {
        properties: [
            ("xds.node.id", PropertyValue::String("node-1".into())),
            ("upstream.port", PropertyValue::Int(8080)),
            ("node.offset", PropertyValue::Int(-2)),
            (
                "source.address",
                PropertyValue::String("embedder-wide".into()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        ..Recorder::default()
    };
    let mut f = start_with(
        "hostcalls",
        "",
        VmConfig {
            vm_id: "props-vm".into(),
            ..VmConfig::default()
        },
        recorder,
    );
    let list = paths.join(",");
    let stream = request(&[
        ("x-scenario", "properties"),
        ("x-properties", &list),
        ("x-foo", "bar"),
    ]);
    stream.lock().unwrap().properties = Some(Arc::new(Peer));
    let ctx = f.vm.create_http_stream(f.root, stream.clone()).unwrap();
    assert_eq!(
        f.vm.on_request_headers(ctx, true).unwrap(),
        HeadersAction::Continue
    );
    paths
        .iter()
        .map(|p| {
            let name = format!("x-prop-{}", p.replace('.', "-"));
            let value = header(&stream, &name).unwrap_or_else(|| panic!("no {name}"));
            (p.to_string(), value)
        })
        .collect()
}

fn text(value: &str) -> String {
    format!("hex:{}", hex(value.as_bytes()))
}

#[test]
fn properties_from_the_plugin_the_headers_the_stream_and_the_embedder() {
    let paths = [
        // First: the plugin adds an x-prop-* header after each lookup.
        "connection.request_count",
        "plugin_name",
        "plugin_root_id",
        "plugin_vm_id",
        "request.path",
        "request.url_path",
        "request.method",
        "request.headers.x-foo",
        "xds.node.id",
        "source.address",
        "source.port",
        "upstream.port",
        "node.offset",
        "no.such.property",
        "request.headers.x-absent",
    ];
    let got = properties(&paths);
    let expected: Vec<(String, String)> = [
        // x-scenario, x-properties, x-foo and the four pseudo-headers.
        ("connection.request_count", "hex:0700000000000000".into()),
        ("plugin_name", text("hostcalls-plugin")),
        ("plugin_root_id", text("hostcalls")),
        ("plugin_vm_id", text("props-vm")),
        ("request.path", text("/test?q=1")),
        ("request.url_path", text("/test")),
        ("request.method", text("GET")),
        ("request.headers.x-foo", text("bar")),
        ("xds.node.id", text("node-1")),
        // The stream's own answer wins over the embedder's VM-wide one.
        ("source.address", text("10.0.0.1:5000")),
        // Integers are 8 little-endian bytes, as Envoy serializes them.
        ("source.port", "hex:8813000000000000".into()),
        ("upstream.port", "hex:901f000000000000".into()),
        ("node.offset", "hex:feffffffffffffff".into()),
        ("no.such.property", "none".into()),
        ("request.headers.x-absent", "none".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, expected);
}

#[test]
/// As Envoy: the value is stored under its whole path (`wasp\0test`), but a read looks the
/// path up by its first segment only, so a value set at a multi-segment path is not read back
/// there, by the plugin itself or by the next plugin of the chain.
fn set_property_at_a_dotted_path_is_stored_but_not_read_back_as_in_envoy() {
    let mut first = start("hostcalls", "");
    let mut second = start("hostcalls", "");
    let stream = request(&[("x-scenario", "set-property")]);
    let ctx = first
        .vm
        .create_http_stream(first.root, stream.clone())
        .unwrap();
    first.vm.on_request_headers(ctx, true).unwrap();
    assert_eq!(header(&stream, "x-set-property").as_deref(), Some("none"));
    assert_eq!(
        stream.lock().unwrap().filter_state.get(&b"wasp\0test"[..]),
        Some(&b"value-1".to_vec())
    );

    // The next plugin of the chain, in another VM, reads it from the shared stream.
    {
        let mut s = stream.lock().unwrap();
        let headers = s.request_headers.as_mut().unwrap();
        headers.replace(b"x-scenario", b"properties");
        headers.add(b"x-properties", b"wasp.test");
    }
    let ctx = second
        .vm
        .create_http_stream(second.root, stream.clone())
        .unwrap();
    second.vm.on_request_headers(ctx, true).unwrap();
    assert_ne!(header(&stream, "x-prop-wasp-test"), Some(text("value-1")));
}

#[test]
fn a_property_set_on_one_stream_is_not_seen_by_another() {
    let mut f = start("hostcalls", "");
    let (_, _, _) = f.scenario("set-property", &[]);
    let (_, stream, _) = f.scenario("properties", &[("x-properties", "wasp.test")]);
    assert_eq!(header(&stream, "x-prop-wasp-test").as_deref(), Some("none"));
}

#[test]
fn foreign_functions() {
    let mut f = start("hostcalls", "");
    let (_, stream, action) = f.scenario("foreign", &[]);
    assert_eq!(action, HeadersAction::Continue);
    assert_eq!(
        header(&stream, "x-foreign").as_deref(),
        Some("hello hello hello hello")
    );
    assert_eq!(
        header(&stream, "x-foreign-missing").as_deref(),
        Some("NotFound")
    );
}
