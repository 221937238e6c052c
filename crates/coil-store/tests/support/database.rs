//! A database that exists only for one test, on either backend, and `on_both_backends!`, which
//! turns one `async fn check(&TestDatabase)` into a SQLite test and a PostgreSQL test (the
//! latter only when `TEST_DATABASE_URL` is set; CI always sets it). Shared by the store's
//! suites through `#[path]`.

#![allow(dead_code)]

use coil_store::{AccountStore, Leaderboard, MatchStore};
use rand::Rng;
use sqlx::Connection;

/// A database that exists only for one test: a SQLite file in a temp dir, or a PostgreSQL
/// schema that is dropped at the end.
pub struct TestDatabase {
    pub url: String,
    pub expected_backend: &'static str,
    postgres_schema: Option<(String, String)>,
    _directory: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub fn sqlite() -> TestDatabase {
        let directory = tempfile::tempdir().expect("create temp dir");
        // A nested, not-yet-existing directory: connect must create it.
        let file = directory.path().join("nested").join("leaderboard.db");
        TestDatabase {
            url: format!("sqlite://{}", file.display()),
            expected_backend: "sqlite",
            postgres_schema: None,
            _directory: Some(directory),
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
        let mut admin = sqlx::PgConnection::connect(&base_url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .expect("create test schema");
        admin.close().await.expect("close admin connection");
        let separator = if base_url.contains('?') { '&' } else { '?' };
        Some(TestDatabase {
            url: format!("{base_url}{separator}options[search_path]={schema}"),
            expected_backend: "postgres",
            postgres_schema: Some((base_url, schema)),
            _directory: None,
        })
    }

    pub async fn leaderboard(&self) -> Leaderboard {
        Leaderboard::connect(&self.url)
            .await
            .expect("connect to test database")
    }

    pub async fn accounts(&self) -> AccountStore {
        self.leaderboard().await.accounts()
    }

    pub async fn matches(&self) -> MatchStore {
        self.leaderboard().await.matches()
    }

    pub async fn drop_postgres_schema(self) {
        if let Some((base_url, schema)) = self.postgres_schema {
            let mut admin = sqlx::PgConnection::connect(&base_url)
                .await
                .expect("reconnect");
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&mut admin)
                .await
                .expect("drop test schema");
            admin.close().await.expect("close admin connection");
        }
    }
}

macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $check() {
                    let database = crate::database::TestDatabase::sqlite();
                    super::$check(&database).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $check() {
                    let Some(database) = crate::database::TestDatabase::postgres().await else {
                        return;
                    };
                    super::$check(&database).await;
                    database.drop_postgres_schema().await;
                }
            )*
        }
    };
}
