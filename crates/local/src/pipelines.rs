//! Loading a pipeline file from disk: sluice-core's checks plus the ones that need the file
//! system, all reported at once.
//!
//! The pipeline's `directory` becomes the file's own directory (unless the file sets it), so a
//! relative command (`./merge.sh`, `scripts/clean.py` run by `python3`) and a schedule's input
//! resolve against the pipeline file, wherever `sluice` was started; local task processes run
//! there. Checked here: every relative program exists, every bare program name is found beside
//! `sluice` or on PATH, every schedule's input exists. `sluice run`, `sluice serve` and
//! `sluice pipeline check` all load through [`load`], so they agree.

use sluice_core::pipeline::{PipelineConfig, PipelineError, Problem};
use std::path::{Path, PathBuf};

/// Read, parse and check the pipeline at `path`; `bin_dirs` are where bare program names are
/// looked up before PATH (as the process pool does).
pub fn load(path: &Path, bin_dirs: &[PathBuf]) -> Result<PipelineConfig, PipelineError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| PipelineError::Parse {
        source_name: name.clone(),
        message: format!("cannot read the file: {e}"),
    })?;
    let mut cfg = PipelineConfig::from_toml(&name, &text)?;
    let base = match &cfg.directory {
        Some(dir) => path.parent().unwrap_or(Path::new(".")).join(dir),
        None => path.parent().unwrap_or(Path::new(".")).to_path_buf(),
    };
    let base = std::path::absolute(&base).unwrap_or(base);
    cfg.directory = Some(base.to_string_lossy().into_owned());
    let problems = local_problems(&cfg, &base, bin_dirs);
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(PipelineError::Invalid {
            source_name: name,
            problems,
        })
    }
}

fn local_problems(cfg: &PipelineConfig, base: &Path, bin_dirs: &[PathBuf]) -> Vec<Problem> {
    let mut problems = Vec::new();
    if !base.is_dir() {
        problems.push(Problem::new(
            "directory",
            format!("{} is not a directory", base.display()),
        ));
        return problems;
    }
    let path_var: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut check_program = |key: String, program: &str| {
        // A program given by a placeholder is only known at launch.
        if program.contains('{') {
            return;
        }
        if program.contains('/') {
            let resolved = base.join(program);
            if !resolved.is_file() {
                problems.push(Problem::new(
                    key,
                    format!(
                        "'{program}' does not exist (relative paths resolve against {})",
                        base.display()
                    ),
                ));
            }
        } else if !bin_dirs
            .iter()
            .chain(&path_var)
            .any(|dir| dir.join(program).is_file())
        {
            problems.push(Problem::new(
                key,
                format!("'{program}' is not beside sluice or on PATH"),
            ));
        }
    };
    for stage in cfg.stages.iter().filter(|s| s.runs_tasks()) {
        if let Some(program) = stage.command.first() {
            check_program(format!("stage.{}.command[0]", stage.name), program);
        }
    }
    if let Some(program) = cfg.notify.as_ref().and_then(|n| n.command.first()) {
        check_program("notify.command[0]".into(), program);
    }
    for (i, s) in cfg.schedule.iter().enumerate() {
        let input = base.join(&s.input);
        if !input.is_file() {
            problems.push(Problem::new(
                format!("schedule[{i}].input"),
                format!("{} does not exist", input.display()),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_commands_and_schedule_inputs_resolve_against_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("p");
        std::fs::create_dir_all(sub.join("scripts")).unwrap();
        std::fs::write(sub.join("scripts/merge.sh"), "#!/bin/sh\n").unwrap();
        std::fs::write(sub.join("daily.csv"), "a\n1\n").unwrap();
        let file = sub.join("pipeline.toml");
        std::fs::write(
            &file,
            r#"
name = "p"
[[stage]]
name = "merge"
command = ["scripts/merge.sh", "{output}"]
[[stage]]
name = "notify"
command = ["./nope.sh"]
writes = "nothing"
[[stage]]
name = "shell"
command = ["no-such-program-anywhere", "x"]
writes = "nothing"
[[schedule]]
name = "daily"
expression = "rate(1 day)"
input = "daily.csv"
[[schedule]]
name = "missing"
expression = "rate(2 days)"
input = "missing.csv"
"#,
        )
        .unwrap();
        let err = load(&file, &[]).unwrap_err().to_string();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert!(
            lines[0].contains("stage.notify.command[0]: './nope.sh' does not exist"),
            "{err}"
        );
        assert!(
            lines[1].contains(
                "stage.shell.command[0]: 'no-such-program-anywhere' is not beside sluice or on PATH"
            ),
            "{err}"
        );
        assert!(
            lines[2].contains("schedule[1].input")
                && lines[2].contains("missing.csv does not exist"),
            "{err}"
        );
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with(&file.display().to_string())),
            "{err}"
        );

        std::fs::write(sub.join("nope.sh"), "#!/bin/sh\n").unwrap();
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("no-such-program-anywhere", "sh")
            .replace("missing.csv", "daily.csv");
        std::fs::write(&file, text).unwrap();
        let cfg = load(&file, &[]).unwrap();
        assert_eq!(cfg.directory.as_deref(), Some(sub.to_str().unwrap()));
    }
}
