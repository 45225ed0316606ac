//! The command-line surface of `fintech` (every subcommand but `bench`, with its positionals and
//! options: value or flag, required, environment variable, allowed values),
//! generated from the clap definition itself and kept in `ci/jenkins/test/fintech-cli.json`.
//!
//! The Jenkins shared library (ci/jenkins/vars/*.groovy) calls `fintech <subcommand> --flag ...`;
//! `scripts/check-jenkins.sh` checks each of those calls against that file (subcommand exists,
//! every flag exists, required options given, literal values allowed) without building Rust. This
//! test keeps the file true: it fails when the file differs from the binary's surface. After a
//! deliberate change to the CLI, regenerate it and commit it with the change:
//!
//! ```sh
//! FINTECH_UPDATE_CLI_SNAPSHOT=1 cargo test -p fintech --test cli_surface
//! ```

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::CommandFactory as _;
use serde_json::{Value, json};

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ci/jenkins/test/fintech-cli.json")
}

/// One entry per runnable subcommand path ("migrate", "notify bitbucket", ...).
fn describe(cmd: &clap::Command, path: &[String], out: &mut BTreeMap<String, Value>) {
    let subcommands: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| s.get_name() != "help").collect();
    if !path.is_empty() && (subcommands.is_empty() || cmd.is_args_conflicts_with_subcommands_set()) {
        let mut positionals = Vec::new();
        let mut options = BTreeMap::new();
        for arg in cmd.get_arguments() {
            if arg.is_positional() {
                positionals.push(json!({
                    "name": arg.get_id().as_str(),
                    "required": arg.is_required_set(),
                }));
                continue;
            }
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let possible: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_owned())
                .collect();
            let takes_value = arg.get_action().takes_values();
            // An option that may be given without a value (`--tls-verify` alone means true).
            let value_optional = arg.get_num_args().is_some_and(|n| n.min_values() == 0) && takes_value;
            options.insert(
                format!("--{long}"),
                json!({
                    "takes_value": takes_value,
                    "value_optional": value_optional,
                    "required": arg.is_required_set(),
                    "env": arg.get_env().map(|e| e.to_string_lossy().into_owned()),
                    "possible_values": possible,
                }),
            );
        }
        out.insert(path.join(" "), json!({ "positionals": positionals, "options": options }));
    }
    for sub in subcommands {
        // `bench` measures; no pipeline runs it, and its knobs change with the measurements.
        if path.is_empty() && sub.get_name() == "bench" {
            continue;
        }
        let mut next = path.to_vec();
        next.push(sub.get_name().to_owned());
        describe(sub, &next, out);
    }
}

fn surface() -> String {
    let mut cmd = fintech::cli::Cli::command();
    cmd.build();
    let mut commands = BTreeMap::new();
    describe(&cmd, &[], &mut commands);
    let doc = json!({
        "generated_by": "FINTECH_UPDATE_CLI_SNAPSHOT=1 cargo test -p fintech --test cli_surface",
        "commands": commands,
    });
    serde_json::to_string_pretty(&doc).unwrap() + "\n"
}

#[test]
fn jenkins_cli_snapshot_matches_the_binary() {
    let current = surface();
    let path = snapshot_path();
    if std::env::var_os("FINTECH_UPDATE_CLI_SNAPSHOT").is_some() {
        std::fs::write(&path, &current).unwrap();
        return;
    }
    let recorded = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        recorded == current,
        "{} does not match the fintech CLI. If the CLI change is deliberate, run\n  \
         FINTECH_UPDATE_CLI_SNAPSHOT=1 cargo test -p fintech --test cli_surface\n\
         commit the file, and run ./scripts/check-jenkins.sh: it checks every `fintech ...` call of \
         ci/jenkins/vars against it.",
        path.display()
    );
}

#[test]
fn the_snapshot_names_the_commands_the_pipelines_run() {
    let doc: Value = serde_json::from_str(&surface()).unwrap();
    for name in
        ["migrate", "image build", "image push", "release-plan", "verify-rollout", "notify bitbucket", "notify email"]
    {
        assert!(doc["commands"][name].is_object(), "{name} missing from the CLI surface");
    }
    let state = &doc["commands"]["notify bitbucket"]["options"]["--state"];
    assert_eq!(state["required"], true);
    assert_eq!(state["possible_values"], json!(["INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"]));
    assert_eq!(doc["commands"]["migrate"]["positionals"][0]["name"], "service");
}
