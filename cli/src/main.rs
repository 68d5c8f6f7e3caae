//! pipectl: operator commands over the shared crate.
//!   pipectl validate [FILE]   check a pipeline file (default: ./pipeline.toml)

use shared::domain::pipeline::Pipeline;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["validate"] => validate("pipeline.toml"),
        ["validate", path] => validate(path),
        _ => {
            eprintln!("usage: pipectl validate [FILE]");
            ExitCode::from(2)
        }
    }
}

fn validate(path: &str) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("{path}: {err}");
            return ExitCode::FAILURE;
        }
    };
    match Pipeline::parse(&text) {
        Ok(pipeline) => {
            println!(
                "{path}: ok ({} application(s), stages: {})",
                pipeline.applications().len(),
                pipeline
                    .stages()
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" → ")
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{path}: {err}");
            ExitCode::FAILURE
        }
    }
}
