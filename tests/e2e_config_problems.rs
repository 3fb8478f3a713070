//! End-to-end: how `check-config`, `run` and a refused SIGHUP reload word configuration
//! problems. Every problem reads `file:line:column: key.path: message`; one problem hides no
//! other; a value written at a secret key is never quoted, whatever its type, and neither is
//! the text of a file that does not parse.

mod common;

use common::poolwatch::run_cli;
use common::scenario::{header, target, WAIT};
use common::{ConfigFile, Poolwatch};

/// Runs `poolwatch ARGS... FILE`; returns exit code and stderr.
async fn cli(args: &[&str], file: &ConfigFile) -> (Option<i32>, String) {
    let path = file.path().display().to_string();
    let args: Vec<&str> = args.iter().copied().chain([path.as_str()]).collect();
    let out = tokio::time::timeout(WAIT, run_cli(&args))
        .await
        .unwrap_or_else(|_| panic!("poolwatch {args:?} still running after {WAIT:?}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `check-config` and `run` refuse `file` with exit 2 and the same problems; returns them,
/// without the file name and the count line (`3:12: key: message`).
async fn problems(file: &ConfigFile) -> Vec<String> {
    let (code, check) = cli(&["check-config"], file).await;
    assert_eq!(code, Some(2), "{check}");
    let (code, run) = cli(&["run", "--config"], file).await;
    assert_eq!(code, Some(2), "{run}");
    assert_eq!(check, run);
    let prefix = format!("{}:", file.path().display());
    let mut lines: Vec<String> = Vec::new();
    for line in check.lines() {
        match line.strip_prefix(&prefix) {
            Some(problem) => lines.push(problem.to_string()),
            None => match lines.last_mut() {
                Some(last) if !line.ends_with("problem(s) found") => {
                    last.push('\n');
                    last.push_str(line);
                }
                _ => {}
            },
        }
    }
    lines
}

/// The TOML values tried at every secret key, each with the type the error must name.
const VALUES: [(&str, &str); 7] = [
    ("424242424242", "integer"),
    ("4242.4242", "float"),
    ("true", "boolean"),
    ("1979-05-27T07:32:00Z", "date-time"),
    ("1979-05-27", "date-time"),
    ("[\"SECRETARRAY\"]", "array"),
    ("{ v = \"SECRETTABLE\" }", "table"),
];

#[tokio::test]
async fn a_secret_key_given_another_type_is_named_and_its_value_never_shown() {
    // (key path, config with {v} in place of the value, line of the value, its column)
    let cases = [
        (
            "targets[0].url",
            "[[targets]]\nname = \"db\"\nurl = {v}\n",
            3,
            7,
        ),
        (
            "targets[0].password",
            "[[targets]]\nname = \"db\"\npassword = {v}\n",
            3,
            12,
        ),
        (
            "receivers[0].integrations[0].url",
            "[[targets]]\nname = \"db\"\n[[receivers]]\nname = \"r\"\n\
             [[receivers.integrations]]\ntype = \"webhook\"\nurl = {v}\n",
            7,
            7,
        ),
        (
            "receivers[0].integrations[0].headers.Authorization",
            "[[targets]]\nname = \"db\"\n[[receivers]]\nname = \"r\"\n\
             [[receivers.integrations]]\ntype = \"webhook\"\nurl = \"http://h/\"\n\
             headers = { Authorization = {v} }\n",
            8,
            29,
        ),
    ];
    for (key, body, line, col) in cases {
        for (value, kind) in VALUES {
            let file = ConfigFile::new(&body.replace("{v}", value));
            let got = problems(&file).await;
            let want = format!("{line}:{col}: {key}: invalid type: {kind}, expected a string");
            assert_eq!(got, [want], "{key} = {value}");
        }
    }
    // The whole `headers` table given as something else.
    let file = ConfigFile::new(
        "[[targets]]\nname = \"db\"\n[[receivers]]\nname = \"r\"\n\
         [[receivers.integrations]]\ntype = \"webhook\"\nurl = \"http://h/\"\n\
         headers = \"Bearer SECRET987\"\n",
    );
    assert_eq!(
        problems(&file).await,
        ["8:11: receivers[0].integrations[0].headers: invalid type: string, expected a table"]
    );
}

#[tokio::test]
async fn a_refused_reload_logs_the_key_of_a_secret_of_the_wrong_type_but_never_its_value() {
    let valid = [header(""), target("db", 1, "")].concat();
    let pw = Poolwatch::start(&valid).await;
    let invalid = [
        header(""),
        target("db", 1, "password = 424242424242\n"),
        "[[receivers]]\nname = \"r\"\n[[receivers.integrations]]\ntype = \"webhook\"\n\
         url = \"http://127.0.0.1:1/\"\nheaders = { Authorization = 987654321987 }\n"
            .to_string(),
    ]
    .concat();
    pw.config().write(&invalid);
    pw.sighup();
    assert!(
        pw.wait_for_log("reload refused; the running configuration stays", WAIT)
            .await,
        "{}",
        pw.logs()
    );
    let logs = pw.logs();
    for want in [
        "targets[0].password: invalid type: integer, expected a string",
        "receivers[0].integrations[0].headers.Authorization: invalid type: integer, expected a string",
    ] {
        assert!(logs.contains(want), "{want}\n{logs}");
    }
    for secret in ["424242424242", "987654321987"] {
        assert!(!logs.contains(secret), "{secret} logged\n{logs}");
    }
}

#[tokio::test]
async fn every_problem_of_a_file_is_listed_with_its_key_path_in_file_order() {
    let file = ConfigFile::new(concat!(
        "[http]\n",
        "listen = 9671\n",
        "[alerting]\n",
        "repeat_interval = \"4\"\n",
        "[[targets]]\n",
        "name = \"a\"\n",
        "port = \"5432\"\n",
        "sslmode = \"verify\"\n",
        "[[targets]]\n",
        "name = \"b\"\n",
        "interval = \"10ms\"\n",
        "[[rules]]\n",
        "name = \"R\"\n",
        "metric = \"in_use\"\n",
        "critical = true\n",
        "severity = \"page\"\n",
        "[[receivers]]\n",
        "name = \"r\"\n",
        "[[receivers.integrations]]\n",
        "type = \"webhook\"\n",
        "url = \"ftp://h/\"\n",
    ));
    assert_eq!(
        problems(&file).await,
        [
            "2:10: http.listen: invalid type: integer, expected a string",
            "4:19: alerting.repeat_interval: duration \"4\" has no unit: write e.g. \"4s\" or \"4ms\"",
            "7:8: targets[0].port: invalid type: string, expected an integer from 0 to 65535",
            "8:11: targets[0].sslmode: unknown variant `verify`, expected one of `disable`, \
             `prefer`, `require`, `verify-ca`, `verify-full` (did you mean `verify-ca`?)",
            "11:1: targets[1].interval: must be at least 100ms (got 10ms)",
            "15:12: rules[0].critical: invalid type: boolean, expected a number, or a table \
             { value = ..., clear = ..., for = \"...\" }",
            "16:12: rules[0].severity: unknown variant `page`, expected `warning` or `critical`",
            "21:1: receivers[0].integrations[0].url: not a valid http(s) URL: the scheme is not \
             http or https",
        ]
    );
}

/// A receiver written before integrations (`url`, `headers`, `timeout` on the receiver) is
/// refused with exit 2, each key named with where it moved, no secret shown.
#[tokio::test]
async fn receiver_keys_that_moved_to_integrations_say_where_they_went() {
    let file = ConfigFile::new(
        "[[targets]]\nname = \"db\"\n[[receivers]]\nname = \"r\"\n\
         url = \"http://h/hook?token=SECRET321\"\nheaders = { A = \"SECRET654\" }\ntimeout = \"5s\"\n",
    );
    let got = problems(&file).await;
    let stderr = got.join("\n");
    assert_eq!(got.len(), 4, "{stderr}");
    for key in ["url", "headers", "timeout"] {
        let want = format!(
            "receivers[0].{key}: `{key}` moved from [[receivers]] into [[receivers.integrations]]"
        );
        assert!(stderr.contains(&want), "{want}\n{stderr}");
    }
    assert!(!stderr.contains("SECRET"), "{stderr}");
}

#[tokio::test]
async fn bytes_that_are_not_utf8_are_located() {
    let file = ConfigFile::new("");
    let mut bytes = b"[[targets]]\nname = \"db\"\npassword = \"p".to_vec();
    bytes.extend([0xE4, b's', b's', b'"', b'\n']);
    std::fs::write(file.path(), bytes).expect("write");
    assert_eq!(
        problems(&file).await,
        ["3:14: targets[0].password: not valid UTF-8 here: a configuration file must be UTF-8 text"]
    );
}

#[tokio::test]
async fn syntax_errors_are_located_and_never_echo_the_text() {
    let cases = [
        (
            "password = \"SECRET1",
            "3:20: targets[0].password: invalid basic string",
        ),
        (
            "password = SECRET2",
            "3:12: targets[0].password: invalid string\nexpected `\"`, `'`",
        ),
        (
            "password = 'SECRET3' x",
            "3:22: targets[0].password: expected newline, `#`",
        ),
        (
            "url = \"\"\"SECRET4",
            "4:1: targets[0].url: invalid multiline basic string",
        ),
        (
            "password = \"SEC\\qRET5\"",
            "3:18: targets[0].password: invalid escape sequence\n\
            expected `b`, `f`, `n`, `r`, `t`, `u`, `U`, `\\`, `\"`",
        ),
        (
            "password = 4242SECRET6",
            "3:16: targets[0].password: expected newline, `#`",
        ),
    ];
    for (line, want) in cases {
        let file = ConfigFile::new(&format!("[[targets]]\nname = \"db\"\n{line}\n"));
        assert_eq!(problems(&file).await, [want], "{line}");
    }
}

/// Malformed files of every kind the schema allows: each problem names its key path and its
/// position (the issue counted 25 of 118 located errors without a key).
#[tokio::test]
async fn every_located_problem_names_its_key() {
    let t = "[[targets]]\nname = \"db\"\n";
    let r = "[[rules]]\nname = \"X\"\n";
    let v = "[[receivers]]\nname = \"r\"\n";
    let i = "[[receivers.integrations]]\ntype = \"webhook\"\nurl = \"http://h/\"\n";
    let bodies = [
        format!("{t}port = -1\n"),
        format!("{t}port = 1.5\n"),
        format!("{t}interval = \"\"\n"),
        format!("{t}interval = \"1 fortnight\"\n"),
        format!("{t}connect_timeout = [1]\n"),
        format!("{t}labels = [\"a\"]\n"),
        format!("{t}labels = {{ a = {{ b = 1 }} }}\n"),
        format!("{t}host = {{ name = \"h\" }}\n"),
        format!("{t}[targets.labels]\nenv = 5\n"),
        format!("{t}sslmode = 1\n"),
        "[[targets]]\nnmae = \"db\"\n".to_string(),
        "targets = 5\n".to_string(),
        "[targets]\nname = \"db\"\n".to_string(),
        "targets = [{ name = 5 }]\n".to_string(),
        format!("{t}[http]\nlisten = true\nextra = 1\n"),
        format!("{t}[alerting]\nbuiltin_rules = \"yes\"\nshutdown_flush_timeout = 10\n"),
        format!("{t}[alerting]\nstate_file = 5\n"),
        format!("{t}{r}metric = \"in_use\"\nop = \"=>\"\nwarning = 1\n"),
        format!("{t}{r}condition = \"down\"\n"),
        format!("{t}{r}metric = \"in_use\"\nwarning = {{ value = \"1\" }}\n"),
        format!("{t}{r}metric = \"in_use\"\nwarning = {{ clear = 1 }}\n"),
        format!("{t}{r}metric = \"in_use\"\nwarning = {{ value = 1, for = 5 }}\n"),
        format!("{t}{r}metric = \"in_use\"\nwarning = 1\nmatchers = ['a=\"b\"', 5]\n"),
        format!("{t}{r}metric = \"in_use\"\nwarning = 1\nenabled = \"no\"\n"),
        format!("{t}{r}metric = \"in_use\"\nwarning = 1\nfor = \"soon\"\n"),
        format!("{t}{r}metric = \"in_use\"\nwarning = 1\nlabels = {{ team = 1 }}\n"),
        format!("{t}{v}severities = [\"warning\", \"page\"]\n{i}"),
        format!("{t}{v}severities = \"warning\"\n{i}"),
        format!("{t}{v}send_resolved = 1\n{i}"),
        format!("{t}{v}queue_capacity = -5\n{i}"),
        format!("{t}{v}max_retry_age = \"1\"\n{i}"),
        format!("{t}{v}{i}timeout = {{}}\n"),
        format!("{t}{v}[[receivers.integrations]]\ntype = \"email\"\nurl = \"http://h/\"\n"),
        format!("{t}{v}{i}sign = true\n"),
        format!("{t}{v}[[receivers.integrations]]\nurl = \"http://h/\"\n"),
        format!("{t}{v}integrations = 5\n"),
        format!("{t}[[receivers]]\nurl = \"http://h/\"\n"),
        format!("{t}[[receivers.headers]]\nA = \"b\"\n"),
    ];
    let located = regex::Regex::new(r"^\d+:\d+: [A-Za-z_]\S*: \S").expect("regex");
    for body in &bodies {
        let file = ConfigFile::new(body);
        let got = problems(&file).await;
        assert!(!got.is_empty(), "{body}");
        for problem in &got {
            assert!(located.is_match(problem), "{body}---\n{problem}");
        }
    }
}
