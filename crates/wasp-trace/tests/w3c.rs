//! W3C `traceparent`/`tracestate` parsing, and the precedence of W3C over B3.

use wasp_trace::{Decision, Format, w3c};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn getter<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

fn hex16(s: &str) -> [u8; 16] {
    let mut out = [0; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn valid_traceparent_is_parsed() {
    let (trace, span, sampled) = w3c::parse_traceparent(VALID).unwrap();
    assert_eq!(trace, hex16(TRACE));
    assert_eq!(span, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
    assert!(sampled);
}

#[test]
fn sampled_flag_is_bit_zero_only() {
    let with = |flags: &str| w3c::parse_traceparent(&format!("00-{TRACE}-{SPAN}-{flags}"));
    assert!(!with("00").unwrap().2);
    assert!(with("01").unwrap().2);
    // Other bits (e.g. Level 2's random flag, 0x02) do not make it sampled, nor invalid.
    assert!(!with("02").unwrap().2);
    assert!(with("03").unwrap().2);
    assert!(with("ff").unwrap().2);
}

#[test]
fn surrounding_whitespace_is_allowed() {
    assert!(w3c::parse_traceparent(&format!(" {VALID}\t")).is_some());
}

#[test]
fn each_invalid_form_is_ignored() {
    let cases = [
        // Wrong lengths.
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e47361-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "",
        // Version ff is invalid, whatever follows.
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        // All-zero ids.
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        // Not hex, or upper-case hex (HEXDIGLC).
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        // Wrong separators.
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        // Non-ASCII of the right byte length.
        "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
    ];
    for case in cases {
        assert_eq!(w3c::parse_traceparent(case), None, "{case:?}");
    }
}

#[test]
fn a_future_version_may_append_fields() {
    let base = format!("cc-{TRACE}-{SPAN}-01");
    assert!(w3c::parse_traceparent(&base).is_some());
    assert!(w3c::parse_traceparent(&format!("{base}-what-the-future-holds")).is_some());
    // ...but only after a dash.
    assert_eq!(w3c::parse_traceparent(&format!("{base}x")), None);
}

#[test]
fn tracestate_comes_with_a_valid_traceparent_only() {
    let pairs = [
        ("traceparent", VALID),
        ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
    ];
    let incoming = w3c::extract(&getter(&pairs)).unwrap();
    assert_eq!(incoming.format, Format::W3c);
    assert_eq!(incoming.decision, Decision::Accept);
    assert_eq!(
        incoming.tracestate.as_deref(),
        Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
    );
    let parent = incoming.parent.unwrap();
    assert_eq!(parent.trace_id, hex16(TRACE));
    assert_eq!(parent.parent_span_id, None);

    let lone = [("tracestate", "congo=t61rcWkgMzE")];
    assert_eq!(w3c::extract(&getter(&lone)), None);
    let empty = [("traceparent", VALID), ("tracestate", " ")];
    assert_eq!(w3c::extract(&getter(&empty)).unwrap().tracestate, None);
}

#[test]
fn unsampled_traceparent_is_a_deny() {
    let value = format!("00-{TRACE}-{SPAN}-00");
    let pairs = [("traceparent", value.as_str())];
    assert_eq!(
        w3c::extract(&getter(&pairs)).unwrap().decision,
        Decision::Deny
    );
}

#[test]
fn w3c_wins_over_b3() {
    let pairs = [
        ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
        ("x-b3-spanid", "e457b5a2e4d86bd1"),
        ("x-b3-sampled", "0"),
        ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0"),
        ("traceparent", VALID),
    ];
    let incoming = wasp_trace::extract(&getter(&pairs)).unwrap();
    assert_eq!(incoming.format, Format::W3c);
    assert_eq!(incoming.parent.unwrap().trace_id, hex16(TRACE));
    assert_eq!(incoming.decision, Decision::Accept);
}

#[test]
fn invalid_w3c_falls_back_to_b3() {
    let pairs = [
        (
            "traceparent",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
        ("x-b3-spanid", "e457b5a2e4d86bd1"),
    ];
    let incoming = wasp_trace::extract(&getter(&pairs)).unwrap();
    assert_eq!(incoming.format, Format::B3Multi);
    assert_eq!(incoming.decision, Decision::Defer);
}

#[test]
fn no_headers_no_context() {
    assert_eq!(
        wasp_trace::extract(&getter(&[("host", "example.com")])),
        None
    );
}

#[test]
fn traceparent_round_trips() {
    let (trace, span, _) = w3c::parse_traceparent(VALID).unwrap();
    assert_eq!(w3c::format_traceparent(&trace, &span, true), VALID);
    assert_eq!(
        w3c::format_traceparent(&trace, &span, false),
        format!("00-{TRACE}-{SPAN}-00")
    );
}
