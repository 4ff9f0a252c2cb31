//! Tests of the WASI functions against small hand-written modules.

use super::*;
use std::collections::BTreeSet;
use wasmtime::{Engine, Module, Store};

#[derive(Default)]
struct TestState {
    env: Vec<(String, String)>,
    stdio: Vec<(u32, String)>,
}

impl WasiView for TestState {
    fn wasi_env(&self) -> &[(String, String)] {
        &self.env
    }
    fn wasi_stdio(&mut self, fd: u32, bytes: &[u8]) {
        self.stdio
            .push((fd, String::from_utf8_lossy(bytes).into_owned()));
    }
}

/// The preview1 signatures, written out independently of the implementation (from the
/// witx): `I` is i32, `L` is i64. A result of `""` means no result (`proc_exit`).
const SIGNATURES: &[(&str, &str, &str)] = &[
    ("args_get", "II", "I"),
    ("args_sizes_get", "II", "I"),
    ("clock_res_get", "II", "I"),
    ("clock_time_get", "ILI", "I"),
    ("environ_get", "II", "I"),
    ("environ_sizes_get", "II", "I"),
    ("fd_advise", "ILLI", "I"),
    ("fd_allocate", "ILL", "I"),
    ("fd_close", "I", "I"),
    ("fd_datasync", "I", "I"),
    ("fd_fdstat_get", "II", "I"),
    ("fd_fdstat_set_flags", "II", "I"),
    ("fd_fdstat_set_rights", "ILL", "I"),
    ("fd_filestat_get", "II", "I"),
    ("fd_filestat_set_size", "IL", "I"),
    ("fd_filestat_set_times", "ILLI", "I"),
    ("fd_pread", "IIILI", "I"),
    ("fd_prestat_dir_name", "III", "I"),
    ("fd_prestat_get", "II", "I"),
    ("fd_pwrite", "IIILI", "I"),
    ("fd_read", "IIII", "I"),
    ("fd_readdir", "IIILI", "I"),
    ("fd_renumber", "II", "I"),
    ("fd_seek", "ILII", "I"),
    ("fd_sync", "I", "I"),
    ("fd_tell", "II", "I"),
    ("fd_write", "IIII", "I"),
    ("path_create_directory", "III", "I"),
    ("path_filestat_get", "IIIII", "I"),
    ("path_filestat_set_times", "IIIILLI", "I"),
    ("path_link", "IIIIIII", "I"),
    ("path_open", "IIIIILLII", "I"),
    ("path_readlink", "IIIIII", "I"),
    ("path_remove_directory", "III", "I"),
    ("path_rename", "IIIIII", "I"),
    ("path_symlink", "IIIII", "I"),
    ("path_unlink_file", "III", "I"),
    ("poll_oneoff", "IIII", "I"),
    ("proc_exit", "I", ""),
    ("proc_raise", "I", "I"),
    ("random_get", "II", "I"),
    ("sched_yield", "", "I"),
    ("sock_accept", "III", "I"),
    ("sock_recv", "IIIIII", "I"),
    ("sock_send", "IIIII", "I"),
    ("sock_shutdown", "II", "I"),
];

fn wat_types(code: &str) -> String {
    code.chars()
        .map(|c| match c {
            'I' => " i32",
            'L' => " i64",
            other => panic!("bad type code {other}"),
        })
        .collect()
}

fn import(module: &str, name: &str, local: &str) -> String {
    let (_, params, results) = SIGNATURES
        .iter()
        .find(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("no signature for {name}"));
    let results = if results.is_empty() {
        String::new()
    } else {
        format!("(result{})", wat_types(results))
    };
    format!(
        "(import \"{module}\" \"{name}\" (func ${local} (param{}) {results}))",
        wat_types(params)
    )
}

fn linker(engine: &Engine) -> Linker<TestState> {
    let mut linker = Linker::new(engine);
    add_to_linker(&mut linker).unwrap();
    linker
}

/// Instantiates a module made of `imports` (from `wasi_snapshot_preview1`, each as `$name`),
/// one page of memory initialised with `data` segments, and `run` with `body`.
struct Guest {
    store: Store<TestState>,
    instance: wasmtime::Instance,
}

impl Guest {
    fn new(imports: &[&str], data: &str, run: &str, env: &[(&str, &str)]) -> Guest {
        let imports: String = imports
            .iter()
            .map(|name| import("wasi_snapshot_preview1", name, name))
            .collect::<Vec<_>>()
            .join("\n");
        let wat = format!("(module\n{imports}\n(memory (export \"memory\") 1)\n{data}\n{run})");
        let engine = Engine::default();
        let module = Module::new(&engine, wat::parse_str(&wat).unwrap()).unwrap();
        let state = TestState {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..TestState::default()
        };
        let mut store = Store::new(&engine, state);
        let instance = linker(&engine).instantiate(&mut store, &module).unwrap();
        Guest { store, instance }
    }

    fn run(&mut self) -> i32 {
        self.try_run().unwrap()
    }

    fn try_run(&mut self) -> wasmtime::Result<i32> {
        let run = self
            .instance
            .get_typed_func::<(), i32>(&mut self.store, "run")?;
        run.call(&mut self.store, ())
    }

    fn memory(&mut self) -> &[u8] {
        let memory = self.instance.get_memory(&mut self.store, "memory").unwrap();
        memory.data(&self.store)
    }

    fn u32_at(&mut self, ptr: usize) -> u32 {
        u32::from_le_bytes(self.memory()[ptr..ptr + 4].try_into().unwrap())
    }

    fn u64_at(&mut self, ptr: usize) -> u64 {
        u64::from_le_bytes(self.memory()[ptr..ptr + 8].try_into().unwrap())
    }
}

/// iovecs at 0: {100, 6} {200, 7}; "hello " at 100, "world!\n" at 200.
const TWO_IOVECS: &str = r#"
    (data (i32.const 0) "\64\00\00\00\06\00\00\00\c8\00\00\00\07\00\00\00")
    (data (i32.const 100) "hello ")
    (data (i32.const 200) "world!\n")"#;

fn fd_write_run(fd: u32) -> String {
    format!(
        "(func (export \"run\") (result i32)
            (call $fd_write (i32.const {fd}) (i32.const 0) (i32.const 2) (i32.const 300)))"
    )
}

#[test]
fn fd_write_to_stdout_and_stderr_is_collected() {
    for fd in [1, 2] {
        let mut guest = Guest::new(&["fd_write"], TWO_IOVECS, &fd_write_run(fd), &[]);
        assert_eq!(guest.run(), SUCCESS);
        assert_eq!(
            guest.store.data().stdio,
            vec![(fd, "hello world!".to_string())]
        );
        assert_eq!(
            guest.u32_at(300),
            13,
            "nwritten counts the stripped newline"
        );
    }
}

#[test]
fn fd_write_strips_only_one_newline_and_pwrite_works() {
    let data = r#"
        (data (i32.const 0) "\64\00\00\00\04\00\00\00")
        (data (i32.const 100) "a\n\n\n")"#;
    let run = "(func (export \"run\") (result i32)
        (call $fd_pwrite (i32.const 2) (i32.const 0) (i32.const 1) (i64.const 99) (i32.const 300)))";
    let mut guest = Guest::new(&["fd_pwrite"], data, run, &[]);
    assert_eq!(guest.run(), SUCCESS);
    assert_eq!(guest.store.data().stdio, vec![(2, "a\n\n".to_string())]);
    assert_eq!(guest.u32_at(300), 4);
}

#[test]
fn fd_write_to_other_fds_is_ebadf() {
    for fd in [0, 3, 100] {
        let mut guest = Guest::new(&["fd_write"], TWO_IOVECS, &fd_write_run(fd), &[]);
        assert_eq!(guest.run(), BADF);
        assert!(guest.store.data().stdio.is_empty());
    }
}

#[test]
fn fd_write_with_bad_pointers_is_efault() {
    // An iovec pointing past the end of the 64 KiB memory.
    let data = r#"(data (i32.const 0) "\f0\ff\00\00\20\00\00\00")"#;
    let cases = [
        (data, "(i32.const 0) (i32.const 1) (i32.const 300)"),
        // The iovec array itself out of bounds, and one whose size wraps 32 bits.
        (data, "(i32.const 65532) (i32.const 1) (i32.const 300)"),
        (data, "(i32.const 0) (i32.const 0x20000000) (i32.const 300)"),
        // Good iovec, bad nwritten.
        (TWO_IOVECS, "(i32.const 0) (i32.const 2) (i32.const 65534)"),
    ];
    for (data, args) in cases {
        let run =
            format!("(func (export \"run\") (result i32) (call $fd_write (i32.const 1) {args}))");
        let mut guest = Guest::new(&["fd_write"], data, &run, &[]);
        assert_eq!(guest.run(), FAULT, "{args}");
    }
}

#[test]
fn fd_write_bounds_what_reaches_the_log() {
    // One iovec claiming the whole 2 MiB memory.
    let data = r#"(data (i32.const 0) "\00\00\00\00\00\00\20\00")"#;
    let run = "(func (export \"run\") (result i32)
        (drop (memory.grow (i32.const 31)))
        (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))";
    let mut guest = Guest::new(&["fd_write"], data, run, &[]);
    assert_eq!(guest.run(), SUCCESS);
    assert_eq!(guest.store.data().stdio[0].1.len(), MAX_STDIO_WRITE);
    assert_eq!(guest.u32_at(16), MAX_STDIO_WRITE as u32);
}

#[test]
fn fd_fdstat_get_describes_stdio_only() {
    let run = "(func (export \"run\") (result i32)
        (i32.store (i32.const 400) (call $fd_fdstat_get (i32.const 0) (i32.const 100)))
        (i32.store (i32.const 404) (call $fd_fdstat_get (i32.const 3) (i32.const 100)))
        (i32.store (i32.const 408) (call $fd_fdstat_get (i32.const 2) (i32.const 65530)))
        (call $fd_fdstat_get (i32.const 1) (i32.const 100)))";
    let mut guest = Guest::new(&["fd_fdstat_get"], "", run, &[]);
    assert_eq!(guest.run(), SUCCESS);
    assert_eq!(guest.u32_at(400), BADF as u32);
    assert_eq!(guest.u32_at(404), BADF as u32);
    assert_eq!(guest.u32_at(408), FAULT as u32);
    let mut expected = [0u8; 24];
    expected[0] = 2;
    expected[8] = 64;
    assert_eq!(&guest.memory()[100..124], &expected);
}

#[test]
fn environ_round_trips() {
    let run = "(func (export \"run\") (result i32)
        (drop (call $environ_sizes_get (i32.const 0) (i32.const 4)))
        (call $environ_get (i32.const 16) (i32.const 100)))";
    let env = [("A", "1"), ("PATH_LIKE", "x=y")];
    let mut guest = Guest::new(&["environ_sizes_get", "environ_get"], "", run, &env);
    assert_eq!(guest.run(), SUCCESS);
    assert_eq!(guest.u32_at(0), 2);
    assert_eq!(guest.u32_at(4), 4 + 14);
    assert_eq!(guest.u32_at(16), 100);
    assert_eq!(guest.u32_at(20), 104);
    assert_eq!(&guest.memory()[100..119], b"A=1\0PATH_LIKE=x=y\0\0");
}

#[test]
fn environ_get_with_bad_pointer_is_efault() {
    let run = "(func (export \"run\") (result i32)
        (call $environ_get (i32.const 16) (i32.const 65533)))";
    let mut guest = Guest::new(&["environ_get"], "", run, &[("KEY", "VALUE")]);
    assert_eq!(guest.run(), FAULT);
    // With no environment there is nothing to write, so nothing to fault on.
    let mut guest = Guest::new(&["environ_get"], "", run, &[]);
    assert_eq!(guest.run(), SUCCESS);
}

#[test]
fn args_are_empty() {
    let data = r#"(data (i32.const 0) "\ff\ff\ff\ff\ff\ff\ff\ff")"#;
    let run = "(func (export \"run\") (result i32)
        (drop (call $args_get (i32.const 16) (i32.const 32)))
        (call $args_sizes_get (i32.const 0) (i32.const 4)))";
    let mut guest = Guest::new(&["args_sizes_get", "args_get"], data, run, &[]);
    assert_eq!(guest.run(), SUCCESS);
    assert_eq!(guest.u32_at(0), 0);
    assert_eq!(guest.u32_at(4), 0);
}

#[test]
fn clocks() {
    let run = "(func (export \"run\") (result i32)
        (i32.store (i32.const 100) (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 0)))
        (i32.store (i32.const 104) (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 8)))
        (i32.store (i32.const 108) (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 16)))
        (i32.store (i32.const 112) (call $clock_res_get (i32.const 1) (i32.const 24)))
        (i32.store (i32.const 116) (call $clock_res_get (i32.const 3) (i32.const 24)))
        (i32.store (i32.const 120) (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 65535)))
        (call $clock_time_get (i32.const 2) (i64.const 1) (i32.const 32)))";
    let mut guest = Guest::new(&["clock_time_get", "clock_res_get"], "", run, &[]);
    assert_eq!(guest.run(), NOTSUP);
    for (at, errno) in [
        (100, 0),
        (104, 0),
        (108, 0),
        (112, 0),
        (116, NOTSUP),
        (120, FAULT),
    ] {
        assert_eq!(guest.u32_at(at), errno as u32, "result stored at {at}");
    }
    let now = realtime_nanos();
    let realtime = guest.u64_at(0);
    assert!(
        now.abs_diff(realtime) < 1_000_000_000,
        "{realtime} vs {now}"
    );
    assert!(
        guest.u64_at(8) > 0,
        "Go's runtime rejects a monotonic reading of 0"
    );
    assert!(guest.u64_at(8) <= guest.u64_at(16));
    assert_eq!(guest.u64_at(24), 1);
    assert_eq!(guest.u64_at(32), 0, "unsupported clock writes nothing");
}

#[test]
fn random_get() {
    let run = "(func (export \"run\") (result i32)
        (i32.store (i32.const 100) (call $random_get (i32.const 0) (i32.const 65537)))
        (i32.store (i32.const 104) (call $random_get (i32.const 65530) (i32.const 16)))
        (call $random_get (i32.const 0) (i32.const 16)))";
    let mut guest = Guest::new(&["random_get"], "", run, &[]);
    assert_eq!(guest.run(), SUCCESS);
    assert_eq!(guest.u32_at(100), INVAL as u32);
    assert_eq!(guest.u32_at(104), FAULT as u32);
    let bytes = &guest.memory()[..16];
    assert!(
        bytes.iter().filter(|b| **b != 0).count() >= 8,
        "16 random bytes with 8 or more zeros: {bytes:?}"
    );
}

#[test]
fn poll_oneoff_reports_no_events() {
    let data = r#"(data (i32.const 300) "\ff\ff\ff\ff")"#;
    let run = "(func (export \"run\") (result i32)
        (call $poll_oneoff (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 300)))";
    let mut guest = Guest::new(&["poll_oneoff"], data, run, &[]);
    assert_eq!(guest.run(), SUCCESS);
    assert_eq!(guest.u32_at(300), 0);
}

#[test]
fn proc_exit_traps_with_its_code() {
    let run = "(func (export \"run\") (result i32)
        (call $proc_exit (i32.const 3))
        (i32.const 0))";
    let mut guest = Guest::new(&["proc_exit"], "", run, &[]);
    let error = guest.try_run().unwrap_err();
    let exit = error.downcast_ref::<ProcExit>().expect("a ProcExit trap");
    assert_eq!(exit.0, 3);
    assert_eq!(exit.to_string(), "plugin called proc_exit(3)");
}

#[test]
fn stubs_answer_like_cpp_host() {
    // (function, call arguments, errno)
    let cases: &[(&str, &str, i32)] = &[
        (
            "fd_read",
            "(i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)",
            NOSYS,
        ),
        (
            "fd_seek",
            "(i32.const 1) (i64.const 5) (i32.const 0) (i32.const 0)",
            SUCCESS,
        ),
        ("fd_close", "(i32.const 1)", SUCCESS),
        ("fd_sync", "(i32.const 1)", SUCCESS),
        ("fd_sync", "(i32.const 3)", BADF),
        (
            "fd_advise",
            "(i32.const 9) (i64.const 0) (i64.const 0) (i32.const 0)",
            SUCCESS,
        ),
        ("fd_tell", "(i32.const 2) (i32.const 0)", SUCCESS),
        ("fd_tell", "(i32.const 4) (i32.const 0)", BADF),
        ("fd_prestat_get", "(i32.const 3) (i32.const 0)", BADF),
        (
            "fd_readdir",
            "(i32.const 3) (i32.const 0) (i32.const 0) (i64.const 0) (i32.const 0)",
            NOTDIR,
        ),
        ("fd_renumber", "(i32.const 1) (i32.const 5)", NOTSUP),
        ("fd_renumber", "(i32.const 5) (i32.const 1)", BADF),
        (
            "path_open",
            "(i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0)",
            NOENT,
        ),
        (
            "path_unlink_file",
            "(i32.const 3) (i32.const 0) (i32.const 0)",
            NOTSUP,
        ),
        (
            "sock_send",
            "(i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)",
            NOTSUP,
        ),
        ("sched_yield", "", SUCCESS),
        ("proc_raise", "(i32.const 9)", NOSYS),
    ];
    for (name, args, errno) in cases {
        // Out-parameters at 0 hold garbage that the stubs zero.
        let data = r#"(data (i32.const 0) "\ff\ff\ff\ff\ff\ff\ff\ff")"#;
        let run = format!("(func (export \"run\") (result i32) (call ${name} {args}))");
        let mut guest = Guest::new(&[name], data, &run, &[]);
        assert_eq!(guest.run(), *errno, "{name} {args}");
        if ["fd_tell", "fd_readdir", "fd_seek", "sock_send"].contains(name) && *errno != BADF {
            assert_eq!(guest.u32_at(0), 0, "{name} zeroes its out-parameter");
        }
    }
}

#[test]
fn every_function_links_under_both_module_names() {
    let defined: BTreeSet<&str> = FUNCTIONS.iter().copied().collect();
    let specified: BTreeSet<&str> = SIGNATURES.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(defined, specified);
    assert_eq!(defined.len(), FUNCTIONS.len(), "duplicates in FUNCTIONS");

    let mut imports = String::new();
    for module in MODULES {
        for (i, name) in FUNCTIONS.iter().enumerate() {
            imports.push_str(&import(module, name, &format!("{module}_{i}")));
            imports.push('\n');
        }
    }
    let wat = format!("(module {imports} (memory (export \"memory\") 1))");
    let engine = Engine::default();
    let module = Module::new(&engine, wat::parse_str(&wat).unwrap()).unwrap();
    let mut store = Store::new(&engine, TestState::default());
    let linker = linker(&engine);
    linker.instantiate(&mut store, &module).unwrap();

    // And the linker defines nothing beyond FUNCTIONS.
    let registered: BTreeSet<(String, String)> = linker
        .iter(&mut store)
        .map(|(module, name, _)| (module.to_string(), name.to_string()))
        .collect();
    let expected: BTreeSet<(String, String)> = MODULES
        .iter()
        .flat_map(|m| FUNCTIONS.iter().map(|f| (m.to_string(), f.to_string())))
        .collect();
    assert_eq!(registered, expected);
}
