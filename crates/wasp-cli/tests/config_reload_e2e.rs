//! `wasp run` follows its configuration file: an edit applies without a restart (routes,
//! listeners, inline plugins), a file that does not parse or a plugin that does not start is
//! refused with the reason in the log and at `/config_dump`, and the running configuration
//! serves on meanwhile.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

mod support;

use support::*;
use wasp_test_support::raw::raw_get as get;

/// A configuration: one listener answering `body`, the `headers` plugin configured with
/// `config` (its module `module`), and `extra` appended under `listeners:`.
fn config(
    admin: SocketAddr,
    main: SocketAddr,
    body: &str,
    module: &str,
    config: &str,
    extra: &str,
) -> String {
    format!(
        r#"admin: {{ address: "{admin}" }}
workers: 2
listeners:
  - name: main
    address: "{main}"
    routes:
      - match: {{ prefix: / }}
        direct_response: {{ status: 200, body: "{body}\n" }}
{extra}plugins:
  inline:
    - name: headers
      url: {}
      pluginConfig: {{ version: "{config}" }}
"#,
        wasp_test_plugins::path(module).display()
    )
}

/// Writes `text` the way editors and ConfigMap updates do: a new file renamed over the old.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("yaml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn config_dump(admin: SocketAddr) -> serde_json::Value {
    let answer = get(admin, "/config_dump").expect("the admin endpoint answers");
    serde_json::from_str(&answer.body).unwrap()
}

#[test]
fn an_edited_configuration_applies_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wasp.yaml");
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let main: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let second: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(&file, config(admin, main, "one", "headers", "c1", "")).unwrap();
    let _wasp = run_wasp(dir.path(), admin);
    let log = || std::fs::read_to_string(dir.path().join("wasp.log")).unwrap_or_default();
    let first = get(main, "/").unwrap();
    assert_eq!(first.body, "one\n");
    assert!(first.header("x-plugin-config").unwrap().contains("c1"));

    // An edit: the route's answer, the plugin's configuration, a second listener.
    let with_second = format!(
        "  - name: second\n    address: \"{second}\"\n    routes:\n      - match: {{ prefix: / }}\n        direct_response: {{ status: 200, body: \"second\\n\" }}\n"
    );
    replace(
        &file,
        &config(admin, main, "two", "headers", "c2", &with_second),
    );
    assert!(
        wait(Duration::from_secs(10), || get(main, "/")
            .is_some_and(|a| a.body == "two\n")),
        "the edit was not applied: {}",
        log()
    );
    let edited = get(main, "/").unwrap();
    assert!(
        edited.header("x-plugin-config").unwrap().contains("c2"),
        "{edited:?}"
    );
    assert_eq!(get(second, "/").unwrap().body, "second\n");
    assert_eq!(config_dump(admin)["version"], 2);

    // A file that does not parse: refused, said where, and the running configuration stays.
    replace(
        &file,
        &config(admin, main, "never", "headers", "c3", "").replace("routes:", "rootes:"),
    );
    assert!(
        wait(Duration::from_secs(10), || {
            config_dump(admin)["last_reload"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("rootes"))
        }),
        "the broken file was not reported: {}",
        log()
    );
    let error = config_dump(admin)["last_reload"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("wasp.yaml:"),
        "no file and line in {error:?}"
    );
    assert!(log().contains("cannot be used"), "{}", log());
    assert_eq!(get(main, "/").unwrap().body, "two\n");
    assert_eq!(get(second, "/").unwrap().body, "second\n");
    assert_eq!(config_dump(admin)["version"], 2);

    // A plugin that does not start (it traps in proxy_on_vm_start): refused as at start-up.
    replace(&file, &config(admin, main, "never", "start_trap", "c4", ""));
    assert!(
        wait(Duration::from_secs(15), || {
            config_dump(admin)["last_reload"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("start_trap") || e.contains("headers"))
        }),
        "the failing plugin was not reported: {}",
        log()
    );
    assert_eq!(get(main, "/").unwrap().body, "two\n");

    // Fixed: applies, and the second listener (no longer in the file) is gone.
    replace(&file, &config(admin, main, "three", "headers", "c5", ""));
    assert!(
        wait(Duration::from_secs(10), || get(main, "/")
            .is_some_and(|a| a.body == "three\n")),
        "the fixed file was not applied: {}",
        log()
    );
    assert!(
        wait(Duration::from_secs(5), || std::net::TcpStream::connect(
            second
        )
        .is_err()),
        "the removed listener still accepts"
    );
    let dump = config_dump(admin);
    assert_eq!(dump["version"], 3);
    assert_eq!(dump["last_reload"]["error"], serde_json::Value::Null);
}
