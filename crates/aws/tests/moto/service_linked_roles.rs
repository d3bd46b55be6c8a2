//! infra/scripts/service_linked_roles.sh (run by `make deploy`) with the real AWS CLI against
//! moto's IAM: in a fresh account it creates the ECS and Auto Scaling service-linked roles, and
//! a second run, in an account that has them, leaves them alone and succeeds. (moto names the
//! ECS role `AWSServiceRoleForecs`, AWS `AWSServiceRoleForECS`: the script finds roles by their
//! `/aws-service-role/<service>/` path, which both share.)

use crate::common::Moto;
use crate::moto_or_skip;
use std::process::Command;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../infra/scripts/service_linked_roles.sh"
);

fn run(moto: &Moto, aws: &std::path::Path) -> (i32, String) {
    let path = format!(
        "{}:{}",
        aws.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg(SCRIPT)
        .env_clear()
        .env("PATH", path)
        .env("HOME", std::env::temp_dir())
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", crate::common::REGION)
        .output()
        .expect("run the script");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn missing_service_linked_roles_are_created_once() {
    let moto: Moto = moto_or_skip!();
    let Some(aws) = crate::entrypoint::aws_cli() else {
        return;
    };
    let iam = service_role_paths(&moto).await;
    assert!(iam.is_empty(), "a fresh account: {iam:?}");
    let (status, out) = run(&moto, &aws);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("AWSServiceRoleForECS: missing"), "{out}");
    let roles = service_role_paths(&moto).await;
    assert_eq!(roles.len(), 2, "{roles:?}");
    // Again, in an account that has them: nothing created, success.
    let (status, out) = run(&moto, &aws);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains("AWSServiceRoleForECS: present")
            && out.contains("AWSServiceRoleForAutoScaling: present"),
        "{out}"
    );
    assert_eq!(service_role_paths(&moto).await, roles);
}

/// The paths of the service-linked roles in the account, through the AWS CLI (the SDK's IAM
/// crate is not a dependency for one test).
async fn service_role_paths(moto: &Moto) -> Vec<String> {
    let aws = crate::entrypoint::aws_cli().expect("checked by the caller");
    let out = Command::new(&aws)
        .args([
            "iam",
            "list-roles",
            "--path-prefix",
            "/aws-service-role/",
            "--query",
            "Roles[].Path",
            "--output",
            "text",
        ])
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", crate::common::REGION)
        .output()
        .expect("aws iam list-roles");
    let mut paths: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    paths.sort();
    paths
}
