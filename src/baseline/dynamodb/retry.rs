//! Waiting out DynamoDB when it pushes back: which errors are worth another try, jittered
//! exponential backoff, and draining the part of a batch a call left unprocessed. Generic
//! over the call, so the loops are tested here without AWS.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use crate::baseline::StoreError;

/// How long to wait between tries, and how many tries in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first wait; it doubles each try up to `cap`.
    pub base: Duration,
    pub cap: Duration,
    /// Calls in all, the first included.
    pub attempts: u32,
}

impl Default for Backoff {
    /// About half a minute of patience in all: on-demand tables absorb a burst within
    /// seconds, and a table still refusing after that needs a person, not a tighter loop.
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(5),
            attempts: 10,
        }
    }
}

impl Backoff {
    /// The wait before try `retry + 1`: at least half the exponential step, the other half
    /// random, so that many accounts' hunts throttled together do not come back together.
    pub fn delay(&self, retry: u32) -> Duration {
        let step = self
            .base
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.cap);
        let half = step / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        // A fresh RandomState carries fresh keys: its hash is a cheap random number.
        let jitter = RandomState::new().hash_one(retry) % nanos.saturating_add(1);
        half + Duration::from_nanos(jitter)
    }
}

/// Whether a failed call with this error code is worth another try: DynamoDB's throttling
/// (of the table's capacity, of the account's request rate). The SDK retries transient
/// network and server errors itself.
pub fn retriable(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
        )
    )
}

/// Calls `attempt` until it succeeds, fails with an error `is_retriable` rejects, or the
/// tries run out (then the last error is returned).
pub async fn with_retries<T, E, F, Fut>(
    backoff: &Backoff,
    is_retriable: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut retry = 0;
    loop {
        match attempt().await {
            Err(e) if is_retriable(&e) && retry + 1 < backoff.attempts => {
                tokio::time::sleep(backoff.delay(retry)).await;
                retry += 1;
            }
            done => return done,
        }
    }
}

/// Sends `work` through `call` until nothing is left: each call answers part of what it is
/// given (a result `R`) and hands back what it did not process (DynamoDB's `UnprocessedKeys`
/// or `UnprocessedItems`), which is sent again after a backoff. Returns every call's result;
/// fails, naming `what`, if something is still left after the tries run out.
pub async fn drain<T, R, F, Fut>(
    backoff: &Backoff,
    what: &str,
    work: Vec<T>,
    mut call: F,
) -> Result<Vec<R>, StoreError>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Result<(R, Vec<T>), StoreError>>,
{
    let mut results = Vec::new();
    let mut left = work;
    let mut tries = 0;
    while !left.is_empty() {
        if tries == backoff.attempts {
            return Err(StoreError::Query(format!(
                "{what}: DynamoDB left {} of the batch unprocessed after {tries} tries; the \
                 table's throughput is exhausted, run again later or raise its capacity",
                left.len()
            )));
        }
        if tries > 0 {
            tokio::time::sleep(backoff.delay(tries - 1)).await;
        }
        let (result, unprocessed) = call(left).await?;
        results.push(result);
        left = unprocessed;
        tries += 1;
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    fn quick(attempts: u32) -> Backoff {
        Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(4),
            attempts,
        }
    }

    #[test]
    fn delays_grow_to_the_cap_and_keep_at_least_half() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            attempts: 5,
        };
        for (retry, step) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1000),
            (30, 1000),
        ] {
            let d = b.delay(retry);
            let step = Duration::from_millis(step);
            assert!(d >= step / 2 && d <= step, "retry {retry}: {d:?}");
        }
    }

    #[test]
    fn throttling_is_retried_answers_are_not() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
        ] {
            assert!(retriable(Some(code)), "{code}");
        }
        assert!(!retriable(Some("ConditionalCheckFailedException")));
        assert!(!retriable(Some("ResourceNotFoundException")));
        assert!(!retriable(Some("ValidationException")));
        assert!(!retriable(None));
    }

    #[tokio::test]
    async fn unprocessed_keys_are_sent_again_until_none_are_left() {
        // A fake BatchGetItem that answers at most two keys per call, as DynamoDB does when a
        // partition is hot, and hands the rest back.
        let sent = RefCell::new(Vec::new());
        let results = drain(
            &quick(10),
            "reading",
            (1..=5).collect(),
            |keys: Vec<u32>| {
                sent.borrow_mut().push(keys.clone());
                async move {
                    let (done, left) = keys.split_at(keys.len().min(2));
                    Ok((done.to_vec(), left.to_vec()))
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(results.concat(), [1, 2, 3, 4, 5]);
        assert_eq!(
            *sent.borrow(),
            [vec![1, 2, 3, 4, 5], vec![3, 4, 5], vec![5]]
        );
    }

    #[tokio::test]
    async fn a_batch_never_processed_fails_after_the_bound_naming_what() {
        let calls = Cell::new(0);
        let result = drain(
            &quick(4),
            "reading the baseline of 111122223333",
            vec![7u32; 3],
            |keys| {
                calls.set(calls.get() + 1);
                async move { Ok(((), keys)) }
            },
        )
        .await;
        assert_eq!(calls.get(), 4);
        let message = result.unwrap_err().to_string();
        assert!(message.contains("111122223333"), "{message}");
        assert!(
            message.contains("3 of the batch unprocessed after 4 tries"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn nothing_to_do_makes_no_call() {
        let calls = Cell::new(0);
        let results = drain(&quick(3), "x", Vec::<u32>::new(), |keys| {
            calls.set(calls.get() + 1);
            async move { Ok(((), keys)) }
        })
        .await
        .unwrap();
        assert!(results.is_empty());
        assert_eq!(calls.get(), 0);
    }

    #[tokio::test]
    async fn an_error_inside_a_drain_stops_it() {
        let result = drain(&quick(5), "x", vec![1u32], |_| async {
            Err::<((), Vec<u32>), _>(StoreError::Query("boom".into()))
        })
        .await;
        assert!(matches!(result, Err(StoreError::Query(m)) if m == "boom"));
    }

    #[tokio::test]
    async fn throttled_calls_are_retried_until_they_succeed() {
        let calls = Cell::new(0);
        let result = with_retries(
            &quick(5),
            |e: &&str| *e == "ThrottlingException",
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 3 {
                        Err("ThrottlingException")
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(result, Ok(3));
    }

    #[tokio::test]
    async fn retries_stop_at_the_bound_and_on_other_errors() {
        let calls = Cell::new(0);
        let throttled = with_retries(
            &quick(4),
            |_: &&str| true,
            || {
                calls.set(calls.get() + 1);
                async { Err::<(), _>("ThrottlingException") }
            },
        )
        .await;
        assert_eq!((throttled, calls.get()), (Err("ThrottlingException"), 4));

        calls.set(0);
        let refused = with_retries(
            &quick(4),
            |e: &&str| *e == "ThrottlingException",
            || {
                calls.set(calls.get() + 1);
                async { Err::<(), _>("AccessDeniedException") }
            },
        )
        .await;
        assert_eq!((refused, calls.get()), (Err("AccessDeniedException"), 1));
    }
}
