//! B3 parsing, multi-header and single-header.

use wasp_trace::{Decision, Format, b3};

const TRACE128: &str = "80f198ee56343ba864fe8b2a57d3eff7";
const TRACE64: &str = "64fe8b2a57d3eff7";
const SPAN: &str = "e457b5a2e4d86bd1";
const PARENT: &str = "05e3ac9a4f6e3b90";

fn getter<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

fn bytes<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn multi(extra: &[(&'static str, &'static str)]) -> Option<wasp_trace::Incoming> {
    let mut pairs = vec![("x-b3-traceid", TRACE128), ("x-b3-spanid", SPAN)];
    // Later entries replace earlier ones of the same name.
    for &(k, v) in extra {
        pairs.retain(|&(name, _)| name != k);
        pairs.push((k, v));
    }
    pairs.retain(|(_, v)| !v.is_empty());
    b3::extract(&getter(&pairs))
}

#[test]
fn multi_headers_128_bit() {
    let incoming = multi(&[("x-b3-parentspanid", PARENT), ("x-b3-sampled", "1")]).unwrap();
    assert_eq!(incoming.format, Format::B3Multi);
    assert_eq!(incoming.decision, Decision::Accept);
    let parent = incoming.parent.unwrap();
    assert_eq!(parent.trace_id, bytes::<16>(TRACE128));
    assert_eq!(parent.span_id, bytes::<8>(SPAN));
    assert_eq!(parent.parent_span_id, Some(bytes::<8>(PARENT)));
    assert!(!parent.short_trace_id);
}

#[test]
fn multi_headers_64_bit_trace_id_is_left_padded() {
    let incoming = multi(&[("x-b3-traceid", TRACE64)]).unwrap();
    let parent = incoming.parent.unwrap();
    let mut expected = [0u8; 16];
    expected[8..].copy_from_slice(&bytes::<8>(TRACE64));
    assert_eq!(parent.trace_id, expected);
    assert!(parent.short_trace_id);
    assert_eq!(incoming.decision, Decision::Defer);
}

#[test]
fn multi_sampled_values() {
    let decision = |v: &'static str| multi(&[("x-b3-sampled", v)]).unwrap().decision;
    assert_eq!(decision("1"), Decision::Accept);
    assert_eq!(decision("0"), Decision::Deny);
    // Legacy values a lenient reader accepts (as Envoy's Zipkin tracer does).
    assert_eq!(decision("true"), Decision::Accept);
    assert_eq!(decision("false"), Decision::Deny);
    // Unknown: no decision.
    assert_eq!(decision("yes"), Decision::Defer);
    assert_eq!(decision(""), Decision::Defer);
}

#[test]
fn multi_debug_flag_implies_sampled() {
    let incoming = multi(&[("x-b3-flags", "1"), ("x-b3-sampled", "0")]).unwrap();
    assert_eq!(incoming.decision, Decision::Debug);
    assert_eq!(incoming.decision.sampled(), Some(true));
    assert_eq!(
        multi(&[("x-b3-flags", "0")]).unwrap().decision,
        Decision::Defer
    );
}

#[test]
fn multi_sampling_decision_alone() {
    let pairs = [("x-b3-sampled", "0")];
    let incoming = b3::extract(&getter(&pairs)).unwrap();
    assert_eq!(incoming.parent, None);
    assert_eq!(incoming.decision, Decision::Deny);
    // Nothing at all, or a lone span id without a decision: no context.
    assert_eq!(b3::extract(&getter(&[])), None);
    assert_eq!(b3::extract(&getter(&[("x-b3-spanid", SPAN)])), None);
}

#[test]
fn multi_invalid_headers_are_ignored() {
    let cases: &[&[(&'static str, &'static str)]] = &[
        &[("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff")],
        &[("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7a")],
        &[("x-b3-traceid", "64fe8b2a57d3ef")],
        &[("x-b3-traceid", "00000000000000000000000000000000")],
        &[("x-b3-traceid", "0000000000000000")],
        &[("x-b3-traceid", "80F198EE56343BA864FE8B2A57D3EFF7")],
        &[("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3effz")],
        &[("x-b3-spanid", "e457b5a2e4d86bd")],
        &[("x-b3-spanid", "0000000000000000")],
        &[("x-b3-spanid", "e457b5a2e4d86bdx")],
        &[("x-b3-parentspanid", "05e3ac9a4f6e3b9")],
        &[("x-b3-parentspanid", "05e3ac9a4f6e3b9g")],
    ];
    for case in cases {
        assert_eq!(multi(case), None, "{case:?}");
    }
    // An all-zero parent is "no parent", not an error (as Envoy reads it).
    let incoming = multi(&[("x-b3-parentspanid", "0000000000000000")]).unwrap();
    assert_eq!(incoming.parent.unwrap().parent_span_id, None);
}

#[test]
fn single_header_forms() {
    let full = format!("{TRACE128}-{SPAN}-1-{PARENT}");
    let incoming = b3::parse_single(&full).unwrap();
    assert_eq!(incoming.format, Format::B3Single);
    assert_eq!(incoming.decision, Decision::Accept);
    let parent = incoming.parent.unwrap();
    assert_eq!(parent.trace_id, bytes::<16>(TRACE128));
    assert_eq!(parent.span_id, bytes::<8>(SPAN));
    assert_eq!(parent.parent_span_id, Some(bytes::<8>(PARENT)));

    let ids_only = b3::parse_single(&format!("{TRACE64}-{SPAN}")).unwrap();
    assert_eq!(ids_only.decision, Decision::Defer);
    assert!(ids_only.parent.unwrap().short_trace_id);

    let sampling = |s: &str| {
        b3::parse_single(&format!("{TRACE128}-{SPAN}-{s}"))
            .unwrap()
            .decision
    };
    assert_eq!(sampling("0"), Decision::Deny);
    assert_eq!(sampling("1"), Decision::Accept);
    assert_eq!(sampling("d"), Decision::Debug);

    for (value, decision) in [
        ("0", Decision::Deny),
        ("1", Decision::Accept),
        ("d", Decision::Debug),
    ] {
        let alone = b3::parse_single(value).unwrap();
        assert_eq!(alone.parent, None);
        assert_eq!(alone.decision, decision);
    }
}

#[test]
fn single_header_invalid_forms() {
    let cases = [
        String::new(),
        "x".to_owned(),
        "2".to_owned(),
        TRACE128.to_owned(),
        format!("{TRACE128}-"),
        format!("{TRACE128}-{SPAN}-"),
        format!("{TRACE128}-{SPAN}-x"),
        format!("{TRACE128}-{SPAN}-true"),
        format!("{TRACE128}-{SPAN}-1-"),
        format!("{TRACE128}-{SPAN}-1-{PARENT}-"),
        format!("{TRACE128}-{SPAN}-1-{PARENT}-{PARENT}"),
        // A parent without a sampling state (Envoy rejects it too).
        format!("{TRACE128}-{SPAN}-{PARENT}"),
        format!("{TRACE128}-{SPAN}-1-05e3ac9a4f6e3b9"),
        format!("80f198ee56343ba864fe8b2a57d3eff-{SPAN}-1"),
        format!("{TRACE128}-e457b5a2e4d86bd-1"),
        format!("00000000000000000000000000000000-{SPAN}-1"),
        format!("{TRACE128}-0000000000000000-1"),
        format!("{}-{SPAN}-1", TRACE128.to_uppercase()),
    ];
    for case in &cases {
        assert_eq!(b3::parse_single(case), None, "{case:?}");
    }
}

#[test]
fn single_header_wins_over_multi_and_invalid_single_falls_back() {
    let single = format!("{TRACE64}-{PARENT}-0");
    let pairs = [
        ("x-b3-traceid", TRACE128),
        ("x-b3-spanid", SPAN),
        ("x-b3-sampled", "1"),
        ("b3", single.as_str()),
    ];
    let incoming = b3::extract(&getter(&pairs)).unwrap();
    assert_eq!(incoming.format, Format::B3Single);
    assert_eq!(incoming.decision, Decision::Deny);

    let pairs = [
        ("x-b3-traceid", TRACE128),
        ("x-b3-spanid", SPAN),
        ("x-b3-sampled", "1"),
        ("b3", "garbage"),
    ];
    let incoming = b3::extract(&getter(&pairs)).unwrap();
    assert_eq!(incoming.format, Format::B3Multi);
    assert_eq!(incoming.decision, Decision::Accept);
}

#[test]
fn single_header_round_trips() {
    let value = format!("{TRACE128}-{SPAN}-1-{PARENT}");
    let parent = b3::parse_single(&value).unwrap().parent.unwrap();
    let out = b3::format_single(
        &parent.trace_id,
        false,
        &parent.span_id,
        parent.parent_span_id.as_ref(),
        true,
        false,
    );
    assert_eq!(out, value);
    let short = b3::format_single(&parent.trace_id, true, &parent.span_id, None, false, true);
    assert_eq!(short, format!("{}-{SPAN}-d", &TRACE128[16..]));
}
