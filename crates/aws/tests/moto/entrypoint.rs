//! The Linux worker entrypoint (infra/worker/entrypoint.sh) with the real AWS CLI against moto's
//! S3: it stages a stage's inputs (a file and a directory), runs the command, uploads a file or
//! a directory output, and uploads nothing when the command fails or writes no file (so that
//! task-events reports Sluice.OutputMissing). The AWS CLI is installed beside moto by
//! tests/aws/install.sh; without it the tests skip, like the other moto tests.

use crate::common::Moto;
use crate::moto_or_skip;
use aws_sdk_s3::primitives::ByteStream;
use std::path::{Path, PathBuf};
use std::process::Command;

const ENTRYPOINT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../infra/worker/entrypoint.sh"
);

pub(crate) fn aws_cli() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let venv = PathBuf::from(std::env::var_os("SLUICE_MOTO_VENV").unwrap_or_else(|| {
        PathBuf::from(home)
            .join(".cache/sluice-moto")
            .into_os_string()
    }));
    let aws = venv.join("bin/aws");
    if aws.is_file() {
        Some(aws)
    } else {
        eprintln!(
            "skipped: no AWS CLI at {} (run tests/aws/install.sh)",
            aws.display()
        );
        None
    }
}

struct Run {
    status: i32,
    stderr: String,
}

fn entrypoint(moto: &Moto, aws: &Path, env: &[(&str, String)], command: &[&str]) -> Run {
    let path = format!(
        "{}:{}",
        aws.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg(ENTRYPOINT)
        .args(command)
        .env_clear()
        .env("PATH", path)
        .env("HOME", std::env::temp_dir())
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", crate::common::REGION)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run the entrypoint");
    Run {
        status: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn object(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<String> {
    let got = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    let bytes = got.body.collect().await.ok()?.into_bytes();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &str) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn inputs_are_staged_and_a_file_output_is_uploaded_tagged() {
    let moto: Moto = moto_or_skip!();
    let Some(aws) = aws_cli() else { return };
    let s3 = sluice_aws::s3_client(&moto.sdk().await);
    for b in ["ingest", "data"] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    put(&s3, "ingest", "daily/in.csv", "id,amount\na,1\n").await;
    put(
        &s3,
        "data",
        "jobs/j/stages/analyse/output/c-00000.json",
        "{\"n\":1}",
    )
    .await;
    put(
        &s3,
        "data",
        "jobs/j/stages/analyse/output/c-00001.json",
        "{\"n\":2}",
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let input = format!("{}/ingest/daily/in.csv", data.display());
    let parts = format!("{}/data/jobs/j/stages/analyse/output/", data.display());
    let output = format!(
        "{}/data/jobs/j/stages/merge/output/report.csv",
        data.display()
    );
    let env = [
        (
            "SLUICE_INPUTS",
            format!(
                "file\ts3://ingest/daily/in.csv\t{input}\ndir\ts3://data/jobs/j/stages/analyse/output/\t{parts}"
            ),
        ),
        ("SLUICE_OUTPUT", output.clone()),
        ("SLUICE_OUTPUT_KIND", "file".into()),
        (
            "SLUICE_RESULT_URI",
            "s3://data/jobs/j/stages/merge/output/report.csv".into(),
        ),
    ];
    let script = "head -1 \"$1\" > \"$SLUICE_OUTPUT\" && cat \"$2\"c-00000.json \"$2\"c-00001.json >> \"$SLUICE_OUTPUT\"";
    let run = entrypoint(
        &moto,
        &aws,
        &env,
        &["sh", "-c", script, "merge", &input, &parts],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        object(&s3, "data", "jobs/j/stages/merge/output/report.csv")
            .await
            .as_deref(),
        Some("id,amount\n{\"n\":1}{\"n\":2}")
    );
    let tags = s3
        .get_object_tagging()
        .bucket("data")
        .key("jobs/j/stages/merge/output/report.csv")
        .send()
        .await
        .unwrap();
    assert!(
        tags.tag_set()
            .iter()
            .any(|t| t.key() == "sluice-kind" && t.value() == "task-result"),
        "{tags:?}"
    );

    // The job's result (SLUICE_OUTPUT_KEEP=1, set by launch for the last stage that writes):
    // uploaded without the expiry tag.
    let mut kept = env.clone();
    kept[3].1 = "s3://data/jobs/j/stages/merge/output/kept.csv".into();
    let kept = [kept.as_slice(), &[("SLUICE_OUTPUT_KEEP", "1".to_string())]].concat();
    let run = entrypoint(
        &moto,
        &aws,
        &kept,
        &["sh", "-c", script, "merge", &input, &parts],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let tags = s3
        .get_object_tagging()
        .bucket("data")
        .key("jobs/j/stages/merge/output/kept.csv")
        .send()
        .await
        .unwrap();
    assert!(tags.tag_set().is_empty(), "{tags:?}");

    // Exit 0 without the file: nothing is uploaded, and the entrypoint still exits 0 so that
    // task-events, finding no object, reports the missing output (not retried by default).
    let missing = [
        (
            "SLUICE_OUTPUT",
            format!("{}/data/x/none.json", data.display()),
        ),
        ("SLUICE_OUTPUT_KIND", "file".into()),
        ("SLUICE_RESULT_URI", "s3://data/x/none.json".into()),
    ];
    let run = entrypoint(&moto, &aws, &missing, &["true"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("wrote no output"), "{}", run.stderr);
    assert_eq!(object(&s3, "data", "x/none.json").await, None);

    // A failing command: its own status, nothing uploaded.
    let run = entrypoint(
        &moto,
        &aws,
        &env,
        &["sh", "-c", "echo half > \"$SLUICE_OUTPUT\"; exit 3"],
    );
    assert_eq!(run.status, 3, "{}", run.stderr);
    assert_eq!(
        object(&s3, "data", "jobs/j/stages/merge/output/report.csv")
            .await
            .as_deref(),
        Some("id,amount\n{\"n\":1}{\"n\":2}"),
        "the earlier output stands"
    );

    // An input that does not exist: 75, the command never runs.
    let bad = [(
        "SLUICE_INPUTS",
        format!("file\ts3://ingest/daily/missing.csv\t{input}.2"),
    )];
    let run = entrypoint(&moto, &aws, &bad, &["sh", "-c", "echo ran >&2"]);
    assert_eq!(run.status, 75, "{}", run.stderr);
    assert!(!run.stderr.contains("ran"), "{}", run.stderr);
}

#[tokio::test]
async fn a_directory_output_replaces_what_an_earlier_attempt_left() {
    let moto: Moto = moto_or_skip!();
    let Some(aws) = aws_cli() else { return };
    let s3 = sluice_aws::s3_client(&moto.sdk().await);
    s3.create_bucket().bucket("data").send().await.unwrap();
    put(
        &s3,
        "data",
        "jobs/j/stages/render/output/f-1/stale.png",
        "old",
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let out = format!("{}/out/", root.path().display());
    let env = [
        ("SLUICE_OUTPUT", out),
        ("SLUICE_OUTPUT_KIND", "dir".into()),
        (
            "SLUICE_RESULT_URI",
            "s3://data/jobs/j/stages/render/output/f-1/".into(),
        ),
    ];
    let run = entrypoint(
        &moto,
        &aws,
        &env,
        &[
            "sh",
            "-c",
            "echo a > \"$SLUICE_OUTPUT/a.png\"; mkdir \"$SLUICE_OUTPUT/sub\"; echo b > \"$SLUICE_OUTPUT/sub/b.png\"",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let listed = s3
        .list_objects_v2()
        .bucket("data")
        .prefix("jobs/j/stages/render/output/f-1/")
        .send()
        .await
        .unwrap();
    let mut keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "jobs/j/stages/render/output/f-1/a.png",
            "jobs/j/stages/render/output/f-1/sub/b.png"
        ]
    );
}
