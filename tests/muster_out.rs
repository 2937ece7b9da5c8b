//! `trailhound muster --out`: the account list written to a local file or to S3 (the local
//! emulator), in exactly the form the Step Functions state machine of
//! terraform/modules/trailhound reads: the Muster state's command writes the key its
//! HuntAccounts ItemReader gets, as one JSON array whose items carry the field its ItemSelector
//! hands to `trailhound account --id`.

mod moto;

use std::path::Path;
use std::process::{Command, Output};

const TEMPLATE: &str = "terraform/modules/trailhound/templates/state_machine_map.asl.json.tftpl";
const MODULE_MAIN: &str = "terraform/modules/trailhound/main.tf";

/// The accounts of the config the tests use, one of them excluded.
const CONFIG: &str = "[muster]\naccounts_from = \"static\"\naccounts = [\"222222222222\", \
                      \"111111111111\", \"333333333333\"]\nexclude_accounts = [\"333333333333\"]\n";
const LISTED: [&str; 2] = ["111111111111", "222222222222"];

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("`{start}` not found"))
        + start.len();
    let len = text[from..]
        .find(end)
        .unwrap_or_else(|| panic!("no `{end}` after `{start}`"));
    &text[from..from + len]
}

/// What the state machine template says about the account list.
struct MapContract {
    /// The S3 URL the Muster state passes to `muster --out`, for this execution and bucket.
    muster_out: String,
    /// The object HuntAccounts' ItemReader reads.
    reader_bucket: String,
    reader_key: String,
    /// The field of each item that ItemSelector passes on as the account.
    item_field: String,
}

impl MapContract {
    /// Renders the parts of the template that name the list, as Terraform would with `bucket`
    /// and the module's `accounts_prefix`, for one execution.
    fn for_execution(bucket: &str, execution: &str) -> MapContract {
        let template = read(TEMPLATE);
        let prefix = between(&read(MODULE_MAIN), "accounts_prefix", "\n")
            .trim()
            .trim_start_matches('=')
            .trim()
            .trim_matches('"')
            .to_string();
        let render = |format: &str| {
            format
                .replace("${bucket}", bucket)
                .replace("${accounts_prefix}", &prefix)
                .replacen("{}", execution, 1)
        };
        let muster = between(&template, "\"Muster\": {", "\"MusterExitCode\"");
        let command = between(muster, "\"Command.$\" = \"", "\"\n");
        assert!(
            command.starts_with("States.Array('muster', '--out', States.Format('"),
            "the Muster state must run `muster --out <S3 URL>`: {command}"
        );
        assert!(
            command.ends_with("', $$.Execution.Name))"),
            "the Muster state's URL must be per execution: {command}"
        );
        let muster_out = render(between(command, "States.Format('", "'"));

        let reader = between(&template, "\"ItemReader\": {", "\"ItemSelector\"");
        assert!(
            reader.contains("\"Resource\": \"arn:${partition}:states:::s3:getObject\""),
            "{reader}"
        );
        // JSON: the object is read whole as one JSON array of items.
        assert!(reader.contains("\"InputType\": \"JSON\""), "{reader}");
        assert_eq!(
            between(reader, "\"Bucket\": ", ",").trim(),
            "${jsonencode(bucket)}"
        );
        let key_format = between(reader, "\"Key.$\": \"States.Format('", "'");
        assert!(
            between(reader, "\"Key.$\": \"", "\"\n").ends_with("', $$.Execution.Name)"),
            "{reader}"
        );

        let selector = between(&template, "\"ItemSelector\": {", "}");
        let item_field = between(selector, "\"account.$\": \"$$.Map.Item.Value.", "\"").to_string();
        MapContract {
            muster_out,
            reader_bucket: bucket.to_string(),
            reader_key: render(key_format),
            item_field,
        }
    }
}

fn trailhound(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    std::fs::write(dir.join("trailhound.toml"), CONFIG).unwrap();
    Command::new(env!("CARGO_BIN_EXE_trailhound"))
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["--config", "trailhound.toml", "muster"])
        .args(args)
        .output()
        .unwrap()
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "muster failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn muster_writes_the_list_the_distributed_map_reads_to_s3() {
    let sdk = moto::sdk().await;
    let s3 = trailhound::aws::s3(&sdk);
    let bucket = format!("th-results-{}", moto::unique(10));
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let execution = format!("exec-{}", moto::unique(8));
    let contract = MapContract::for_execution(&bucket, &execution);

    let dir = tempfile::tempdir().unwrap();
    let out = trailhound(
        dir.path(),
        &["--out", &contract.muster_out],
        &moto::child_env(),
    );
    assert_success(&out);
    assert!(out.stdout.is_empty(), "nothing on stdout with --out");

    // Read back exactly the object the ItemReader reads.
    let object = s3
        .get_object()
        .bucket(&contract.reader_bucket)
        .key(&contract.reader_key)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the ItemReader's object s3://{}/{} is not there: {e:?}",
                contract.reader_bucket, contract.reader_key
            )
        });
    assert_eq!(object.content_type(), Some("application/json"));
    let body = object.body.collect().await.unwrap().into_bytes();
    let items: Vec<serde_json::Value> =
        serde_json::from_slice(&body).expect("the object is one JSON array");
    let ids: Vec<&str> = items
        .iter()
        .map(|item| {
            item[&contract.item_field].as_str().unwrap_or_else(|| {
                panic!("item without a string `{}`: {item}", contract.item_field)
            })
        })
        .collect();
    assert_eq!(ids, LISTED, "{}", String::from_utf8_lossy(&body));

    // The same bytes as stdout would have carried.
    let stdout = trailhound(dir.path(), &[], &moto::child_env());
    assert_success(&stdout);
    assert_eq!(stdout.stdout, body.to_vec());
}

#[tokio::test]
async fn muster_to_a_missing_bucket_fails_naming_the_object_and_s3s_answer() {
    let bucket = format!("th-missing-{}", moto::unique(10));
    let url = format!("s3://{bucket}/stepfunctions/accounts/exec.json");
    let dir = tempfile::tempdir().unwrap();
    let out = trailhound(dir.path(), &["--out", &url], &moto::child_env());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("s3:PutObject of the account list to {url}")),
        "{stderr}"
    );
    assert!(stderr.contains("NoSuchBucket"), "{stderr}");
    assert!(stderr.contains("the bucket does not exist"), "{stderr}");
}

#[test]
fn muster_writes_a_local_file_with_the_bytes_of_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.json");
    let out = trailhound(dir.path(), &["--out", file.to_str().unwrap()], &[]);
    assert_success(&out);
    assert!(out.stdout.is_empty());
    let written = std::fs::read(&file).unwrap();
    let stdout = trailhound(dir.path(), &[], &[]);
    assert_success(&stdout);
    assert_eq!(written, stdout.stdout);
    let items: Vec<serde_json::Value> = serde_json::from_slice(&written).unwrap();
    assert_eq!(items.len(), LISTED.len());
}

#[test]
fn muster_refuses_an_s3_url_without_a_key_before_listing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let out = trailhound(dir.path(), &["--out", "s3://th-results"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not an S3 object URL: no key"),
        "{stderr}"
    );
}
