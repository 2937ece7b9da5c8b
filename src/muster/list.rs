//! The account list `trailhound muster` writes, and where it goes: standard output, a local
//! file, or an S3 object.
//!
//! The S3 object is what a Step Functions Distributed Map reads: the state machine of
//! `terraform/modules/trailhound` (templates/state_machine_map.asl.json.tftpl) runs
//! `muster --out s3://BUCKET/stepfunctions/accounts/EXECUTION.json`, its ItemReader reads that
//! key with `InputType: JSON` (the object must be one JSON array), and its ItemSelector hands
//! each item's `id` to `trailhound account --id`. So every destination gets the same bytes: one
//! JSON array of [`MusterAccount`] objects (or of bare ids), and a newline.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;

use super::accounts::MusterAccount;
use crate::cloudtrail::AccountId;

/// Where the list goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListOut {
    Stdout,
    File(PathBuf),
    S3(S3Object),
}

/// `s3://BUCKET/KEY`, checked: a bucket name S3 could have, and a key naming an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Object {
    pub bucket: String,
    pub key: String,
}

impl std::fmt::Display for S3Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("`{given}` is not an S3 object URL: {reason}; write s3://BUCKET/KEY")]
    BadS3Url { given: String, reason: &'static str },
    #[error("writing the account list to {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `code` is S3's error code, or says that no answer came (network, credentials).
    #[error("s3:PutObject of the account list to {target} failed with {code}: {message}{hint}")]
    Put {
        target: S3Object,
        code: String,
        message: String,
        hint: &'static str,
    },
}

impl ListOut {
    /// `-` is standard output, `s3://BUCKET/KEY` an object, anything else a local file.
    pub fn parse(text: &str) -> Result<Self, ListError> {
        if text == "-" {
            return Ok(ListOut::Stdout);
        }
        match text.strip_prefix("s3://") {
            Some(rest) => S3Object::parse(text, rest).map(ListOut::S3),
            None => Ok(ListOut::File(PathBuf::from(text))),
        }
    }
}

impl S3Object {
    fn parse(given: &str, rest: &str) -> Result<Self, ListError> {
        let bad = |reason| ListError::BadS3Url {
            given: given.to_string(),
            reason,
        };
        let (bucket, key) = rest.split_once('/').ok_or_else(|| bad("no key"))?;
        // S3's naming rules, loosely: enough to catch a URL written the wrong way round, not
        // to second-guess S3.
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok {
            return Err(bad(
                "the bucket name must be 3 to 63 lower-case letters, digits, dots or hyphens",
            ));
        }
        if key.is_empty() || key.ends_with('/') {
            return Err(bad("the key must name an object, not a folder"));
        }
        Ok(S3Object {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

/// The list as written everywhere: one JSON array and a newline. With `ids`, bare account ids
/// instead of objects (the Distributed Map needs the objects: it reads each item's `id`).
pub fn render(accounts: &[MusterAccount], ids: bool) -> Vec<u8> {
    let mut body = if ids {
        let list: Vec<&AccountId> = accounts.iter().map(|a| &a.id).collect();
        serde_json::to_vec(&list)
    } else {
        serde_json::to_vec(accounts)
    }
    // Serialising plain strings, vectors and string maps cannot fail.
    .expect("the account list serialises");
    body.push(b'\n');
    body
}

/// Writes `body` to a local file through a temporary file beside it, so that a reader never
/// sees half a list and an earlier list survives a failed write.
pub fn write_file(path: &Path, body: &[u8]) -> Result<(), ListError> {
    let failed = |source| ListError::File {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (tmp, mut file) = tempfile_in(dir, path).map_err(failed)?;
    let written = file.write_all(body).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        // Best effort: the error that matters is the write's.
        let _ = std::fs::remove_file(&tmp);
        return Err(failed(e));
    }
    Ok(())
}

/// A new file `.NAME.PID.tmp` in `dir`, created exclusively.
fn tempfile_in(dir: &Path, path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "accounts".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    Ok((tmp, file))
}

/// Puts `body` as the object `target`. The bucket's default encryption applies (the Terraform
/// module's results bucket: SSE-KMS with its key), so the request names none.
pub async fn put_s3(
    client: &aws_sdk_s3::Client,
    target: &S3Object,
    body: Vec<u8>,
) -> Result<(), ListError> {
    client
        .put_object()
        .bucket(&target.bucket)
        .key(&target.key)
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| {
            // No code means the call never got an answer from S3 (network, credentials).
            let code = e.code().unwrap_or("no service error code").to_string();
            ListError::Put {
                target: target.clone(),
                hint: put_hint(&code),
                code,
                message: DisplayErrorContext(&e).to_string(),
            }
        })?;
    Ok(())
}

/// What to check when S3 refuses the list.
fn put_hint(code: &str) -> &'static str {
    match code {
        "NoSuchBucket" => {
            " (the bucket does not exist: check --out, or the module's results bucket)"
        }
        "AccessDenied" => {
            " (the caller may not write there: in the Terraform module the task role's \
             WriteAccountList statement grants s3:PutObject on stepfunctions/accounts/*, and the \
             KMS key must allow the task role through S3)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, key: &str) -> ListOut {
        ListOut::S3(S3Object {
            bucket: bucket.into(),
            key: key.into(),
        })
    }

    #[test]
    fn destinations_are_told_apart_by_their_form() {
        assert_eq!(ListOut::parse("-").unwrap(), ListOut::Stdout);
        assert_eq!(
            ListOut::parse("s3://th-results-1/stepfunctions/accounts/run-1.json").unwrap(),
            s3("th-results-1", "stepfunctions/accounts/run-1.json")
        );
        assert_eq!(
            ListOut::parse("out/accounts.json").unwrap(),
            ListOut::File("out/accounts.json".into())
        );
    }

    #[test]
    fn s3_urls_without_an_object_are_refused_with_the_reason() {
        for (url, why) in [
            ("s3://bucket-only", "no key"),
            ("s3://th-results/folder/", "must name an object"),
            ("s3://th-results/", "must name an object"),
            ("s3://Th_Results/key.json", "bucket name"),
            ("s3:///key.json", "bucket name"),
        ] {
            let err = ListOut::parse(url).unwrap_err().to_string();
            assert!(err.contains(why) && err.contains(url), "{url}: {err}");
        }
    }

    #[test]
    fn the_list_is_one_json_array_of_objects_or_of_ids() {
        let accounts: Vec<MusterAccount> = ["111111111111", "222222222222"]
            .into_iter()
            .map(|id| MusterAccount {
                id: AccountId::parse(id).unwrap(),
                name: Some(format!("acct-{id}")),
                ous: vec![],
                tags: Default::default(),
            })
            .collect();
        let objects: serde_json::Value = serde_json::from_slice(&render(&accounts, false)).unwrap();
        assert_eq!(
            objects,
            serde_json::json!([
                {"id": "111111111111", "name": "acct-111111111111"},
                {"id": "222222222222", "name": "acct-222222222222"},
            ])
        );
        let ids: serde_json::Value = serde_json::from_slice(&render(&accounts, true)).unwrap();
        assert_eq!(ids, serde_json::json!(["111111111111", "222222222222"]));
        assert!(render(&[], false).ends_with(b"[]\n"));
    }

    #[test]
    fn a_file_is_replaced_whole_and_no_temporary_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.json");
        std::fs::write(&path, b"old").unwrap();
        write_file(&path, b"[]\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"[]\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("accounts.json")]);
    }

    #[test]
    fn a_file_in_a_missing_folder_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-folder/accounts.json");
        let err = write_file(&path, b"[]\n").unwrap_err().to_string();
        assert!(err.contains("no-such-folder/accounts.json"), "{err}");
    }
}
