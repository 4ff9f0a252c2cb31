//! Text formats: literal text, `%%`, truncation, the lazy argument, no newline of their own.

mod common;

use common::{empty, full, text};
use wasp_accesslog::{Entry, Format};

#[test]
fn double_percent_is_a_literal_percent() {
    assert_eq!(text("100%% %RESPONSE_CODE%%%", &full()), "100% 201%");
    assert_eq!(text("%%%%", &full()), "%%");
    assert_eq!(text("%%REQ(:METHOD)%%", &full()), "%REQ(:METHOD)%");
}

#[test]
fn text_is_copied_as_is_without_escaping() {
    let headers = [("x-quote", "say \"hi\"\\ \u{1}")];
    let entry = Entry {
        request_headers: &headers,
        ..empty()
    };
    assert_eq!(
        text("\"quotes\" \\back\\ tab\t é 日本 [%REQ(X-QUOTE)%]", &entry),
        "\"quotes\" \\back\\ tab\t é 日本 [say \"hi\"\\ \u{1}]"
    );
}

#[test]
fn no_newline_is_added() {
    assert_eq!(text("%RESPONSE_CODE%", &full()), "201");
    assert_eq!(text("%RESPONSE_CODE%\n", &full()), "201\n");
    assert_eq!(text("", &full()), "");
    assert!(!Format::text("x").expect("parses").is_json());
}

#[test]
fn truncation_stops_at_a_character_boundary() {
    // "é" is two bytes, "日" three.
    let headers = [("x-word", "héllo"), ("x-kanji", "日本語")];
    let entry = Entry {
        request_headers: &headers,
        ..empty()
    };
    assert_eq!(text("%REQ(X-WORD):1%", &entry), "h");
    assert_eq!(text("%REQ(X-WORD):2%", &entry), "h");
    assert_eq!(text("%REQ(X-WORD):3%", &entry), "hé");
    assert_eq!(text("%REQ(X-KANJI):2%", &entry), "");
    assert_eq!(text("%REQ(X-KANJI):4%", &entry), "日");
    assert_eq!(text("%REQ(X-KANJI):6%", &entry), "日本");
    assert_eq!(text("%REQ(X-KANJI):9%", &entry), "日本語");
}

#[test]
fn the_argument_ends_at_the_first_parenthesis_the_operator_can_end_after() {
    // Envoy's `\((.*?)\)`: `)` inside the argument is fine when `%` does not follow it.
    assert_eq!(text("%START_TIME(%H)h)%", &full()), "23)h");
    assert_eq!(text("[%START_TIME((%M))%]", &full()), "[(37)]");
}

#[test]
fn operators_sit_next_to_each_other_and_to_text() {
    assert_eq!(
        text(
            "%REQ(:METHOD)%%REQ(:PATH)%|%RESPONSE_CODE%:%DURATION%ms",
            &full()
        ),
        "GET/api/v1/items?page=2|201:45ms"
    );
}

#[test]
fn render_into_appends() {
    let format = Format::text("%RESPONSE_CODE%\n").expect("parses");
    let mut buffer = String::from("earlier\n");
    format.render_into(&full(), &mut buffer);
    format.render_into(&empty(), &mut buffer);
    assert_eq!(buffer, "earlier\n201\n0\n");
}

#[test]
fn headers_from_a_vec_of_owned_strings() {
    let headers: Vec<(String, String)> = vec![(":method".into(), "PUT".into())];
    let entry = Entry {
        request_headers: &headers,
        ..empty()
    };
    assert_eq!(text("%REQ(:method)%", &entry), "PUT");
}
