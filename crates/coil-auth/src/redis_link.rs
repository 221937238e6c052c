//! The Redis connection the fleet's identity state shares: revocations, rate-limit buckets and
//! account events, all under one key prefix, every command under a deadline.

use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionManager;

/// A Redis failure, named by operation. The message never contains the URL (it may hold a
/// password).
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis {operation} failed: {source}")]
    Command {
        operation: &'static str,
        #[source]
        source: redis::RedisError,
    },
    #[error("redis {operation} timed out after {after:?}")]
    Timeout {
        operation: &'static str,
        after: Duration,
    },
}

/// A reconnecting connection, a key prefix and a per-command deadline. Cheap to clone.
#[derive(Clone)]
pub struct RedisLink {
    pub(crate) client: redis::Client,
    pub(crate) connection: ConnectionManager,
    pub(crate) prefix: String,
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Default deadline of one Redis command.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(500);

impl RedisLink {
    /// Connects (within `timeout`) to `url`; every key starts with `prefix` (e.g. `coil:acct:`).
    pub async fn connect(
        url: &str,
        prefix: &str,
        timeout: Duration,
    ) -> Result<RedisLink, RedisError> {
        let client = redis::Client::open(url).map_err(|source| RedisError::Command {
            operation: "connect",
            source,
        })?;
        let connection = within(timeout, "connect", ConnectionManager::new(client.clone())).await?;
        Ok(RedisLink {
            client,
            connection,
            prefix: prefix.to_owned(),
            timeout,
        })
    }

    pub(crate) fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        key.push_str(&parts.join(":"));
        key
    }

    pub(crate) async fn run<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisError> {
        within(self.timeout, operation, call).await
    }
}

pub(crate) async fn within<T>(
    limit: Duration,
    operation: &'static str,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, RedisError> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(RedisError::Command { operation, source }),
        Err(_elapsed) => Err(RedisError::Timeout {
            operation,
            after: limit,
        }),
    }
}
