//! The time limit of one call (`ClientOptions::call_timeout`): the one place every
//! operation's total duration is bounded. Dropping the operation on expiry is the same
//! cancellation an async caller's drop is: blocking work it started is told to stop at
//! its next read, and files it was writing are removed.

use std::future::Future;

use crate::error::{Error, ErrorKind, Result};
use crate::options::ClientOptions;

/// Runs `operation`, failing with `TIMEOUT` once the client's call timeout has passed.
pub(crate) async fn within<T>(
    options: &ClientOptions,
    operation: impl Future<Output = Result<T>>,
) -> Result<T> {
    let Some(limit) = options.call_timeout else {
        return operation.await;
    };
    match tokio::time::timeout(limit, operation).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "the call did not finish within its time limit of {} (the client's call timeout)",
                shown(limit)
            ),
        )),
    }
}

fn shown(limit: std::time::Duration) -> String {
    if limit.subsec_millis() == 0 {
        format!("{} s", limit.as_secs())
    } else {
        format!("{:.3} s", limit.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::{Duration, Instant};

    use crate::error::ErrorKind;
    use crate::options::{CallOptions, ClientOptions};
    use crate::store::registry::test_server::serve;
    use crate::Client;

    /// A registry that answers a manifest GET with a byte every 300 ms, each well within
    /// the read timeout: only a bound on the whole call ends it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trickling_registry_is_cut_off_by_the_call_timeout() {
        let server = serve("127.0.0.1", |req, s| {
            assert_eq!(req.method, "GET");
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\n\r\n",
                1 << 20
            );
            s.write_all(head.as_bytes())?;
            for _ in 0..(1 << 20) {
                s.write_all(b" ")?;
                s.flush()?;
                std::thread::sleep(Duration::from_millis(300));
            }
            Ok(())
        });
        let host = server.addr.to_string();
        let client = Client::new(ClientOptions {
            insecure_registries: vec![host.clone()],
            use_config_files: false,
            read_timeout: Duration::from_secs(20),
            max_retries: 0,
            call_timeout: Some(Duration::from_secs(2)),
            ..ClientOptions::default()
        })
        .unwrap();
        let started = Instant::now();
        let err = client
            .pull(&format!("{host}/slow:v1"), &CallOptions::default())
            .await
            .map(drop)
            .expect_err("cut off");
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.message().contains("time limit of 2 s"), "{err}");
        // Generous: the point is that it ends, not how precisely.
        assert!(started.elapsed() < Duration::from_secs(60));
        assert!(server.hits.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    }
}
