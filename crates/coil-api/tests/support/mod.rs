//! A real accounts API on 127.0.0.1:0 (axum with connect info, as the server runs it) over a
//! real SQLite file or PostgreSQL schema, with a hand-stepped clock, and a small JSON client.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::sync::Arc;

use coil_api::{Accounts, AccountsConfig, Platform};
use coil_auth::{
    AccessTokenSigner, AccountEvents, ManualClock, MemoryAccountEvents, MemoryRateLimiter,
    MemoryRevocationList, RateLimiter, RevocationList,
};
use coil_store::{AccountStore, Leaderboard};
use rand::Rng;
use serde_json::Value;
use sqlx::Connection;

pub const START_MS: u64 = 1_800_000_000_000;

/// One database for a test: SQLite in a temp dir, or a fresh PostgreSQL schema.
pub struct TestDatabase {
    pub url: String,
    postgres_schema: Option<(String, String)>,
    pub directory: tempfile::TempDir,
}

impl TestDatabase {
    pub fn sqlite() -> TestDatabase {
        let directory = tempfile::tempdir().unwrap();
        TestDatabase {
            url: format!(
                "sqlite://{}",
                directory.path().join("accounts.db").display()
            ),
            postgres_schema: None,
            directory,
        }
    }

    pub async fn postgres() -> Option<TestDatabase> {
        let Ok(base_url) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!(
                "skipped: TEST_DATABASE_URL is not set, so the PostgreSQL variant did not run"
            );
            return None;
        };
        let schema = format!("t_{:016x}", rand::thread_rng().r#gen::<u64>());
        let mut admin = sqlx::PgConnection::connect(&base_url).await.unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let separator = if base_url.contains('?') { '&' } else { '?' };
        Some(TestDatabase {
            url: format!("{base_url}{separator}options[search_path]={schema}"),
            postgres_schema: Some((base_url, schema)),
            directory: tempfile::tempdir().unwrap(),
        })
    }

    pub async fn store(&self) -> AccountStore {
        Leaderboard::connect(&self.url).await.unwrap().accounts()
    }

    pub async fn drop_schema(self) {
        if let Some((base_url, schema)) = self.postgres_schema {
            let mut admin = sqlx::PgConnection::connect(&base_url).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&mut admin)
                .await
                .unwrap();
            admin.close().await.unwrap();
        }
    }
}

/// Shared pieces two replicas of one deployment have in common.
pub struct Shared {
    pub signer_seed: String,
    pub revocations: Arc<dyn RevocationList>,
    pub events: Arc<dyn AccountEvents>,
    pub limiter: Arc<dyn RateLimiter>,
}

/// One API replica serving on 127.0.0.1.
pub struct TestApi {
    pub addr: SocketAddr,
    pub clock: ManualClock,
    pub accounts: Accounts,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A fresh signing seed (standard base64 of 32 bytes).
pub fn new_seed() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl TestApi {
    /// An all-in-one style replica: everything in memory, the given database.
    pub async fn start(
        database: &TestDatabase,
        adjust: impl FnOnce(&mut AccountsConfig),
    ) -> TestApi {
        let clock = ManualClock::starting_at(START_MS);
        let shared = Shared {
            signer_seed: new_seed(),
            revocations: Arc::new(MemoryRevocationList::new(clock.shared())),
            events: Arc::new(MemoryAccountEvents::default()),
            limiter: Arc::new(MemoryRateLimiter::new(clock.shared())),
        };
        TestApi::start_with(database, &shared, clock, adjust).await
    }

    /// A replica over shared pieces (two of these make two replicas of one deployment).
    pub async fn start_with(
        database: &TestDatabase,
        shared: &Shared,
        clock: ManualClock,
        adjust: impl FnOnce(&mut AccountsConfig),
    ) -> TestApi {
        let mut config = AccountsConfig::for_tests(database.directory.path());
        adjust(&mut config);
        let signer =
            AccessTokenSigner::from_seed_base64(&shared.signer_seed, config.access.clone())
                .unwrap();
        let platform = Platform::from_parts(
            config,
            signer,
            shared.revocations.clone(),
            shared.events.clone(),
            shared.limiter.clone(),
            clock.shared(),
        )
        .unwrap();
        let store = database.store().await;
        let accounts = Accounts::new(platform.clone(), store.clone());
        let router = platform.router(store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        TestApi {
            addr,
            clock,
            accounts,
            http: reqwest::Client::new(),
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends `method path` with an optional JSON body, bearer token and extra headers.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(reqwest::Method::POST, path, Some(body), None, &[])
            .await
    }

    pub async fn get(&self, path: &str, bearer: &str) -> Reply {
        self.call(reqwest::Method::GET, path, None, Some(bearer), &[])
            .await
    }

    pub async fn register(&self, username: &str, password: &str) -> Reply {
        self.post(
            "/api/auth/register",
            serde_json::json!({ "username": username, "password": password }),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.post(
            "/api/auth/login",
            serde_json::json!({ "username": username, "password": password }),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post(
            "/api/auth/refresh",
            serde_json::json!({ "refreshToken": refresh_token }),
        )
        .await
    }
}

/// A response: status, `Retry-After`, JSON body (Null when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
}

impl Reply {
    async fn from(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header("retry-after");
        let content_type = header("content-type");
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            retry_after,
            content_type,
            body,
        }
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn access(&self) -> String {
        self.body["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_owned()
    }

    pub fn refresh_token(&self) -> String {
        self.body["refreshToken"]
            .as_str()
            .expect("refreshToken")
            .to_owned()
    }

    pub fn account_id(&self) -> String {
        self.body["account"]["id"]
            .as_str()
            .expect("account.id")
            .to_owned()
    }

    /// Asserts the node's error shape and returns the code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.code(), code, "{self:?}");
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{self:?}"
        );
        assert!(
            self.content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("application/json")),
            "{self:?}"
        );
    }
}
