//! Accounts in the all-in-one shape, end to end over real HTTP and WebSockets: a registered or
//! guest player matchmakes with `Authorization: Bearer`, and the join token the node accepts
//! carries the account's id and display name; forged tokens and banned accounts are refused;
//! anonymous arena play stays possible and cannot claim an account id; the node's join route
//! is rate limited.

mod support;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coil_api::{Accounts, AccountsConfig, RateLimits};
use coil_auth::RateRule;
use coil_protocol::PROTOCOL_V12;
use coil_server::NodeConfig;
use coil_store::{AccountId, AccountStore};
use serde_json::{Value, json};
use support::WAIT;

struct AccountsNode {
    addr: std::net::SocketAddr,
    accounts: Accounts,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _data_dir: tempfile::TempDir,
}

impl AccountsNode {
    async fn start(adjust: impl FnOnce(&mut AccountsConfig)) -> AccountsNode {
        AccountsNode::start_with(|_| {}, adjust).await
    }

    async fn start_with(
        adjust_node: impl FnOnce(&mut NodeConfig),
        adjust: impl FnOnce(&mut AccountsConfig),
    ) -> AccountsNode {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::for_tests(data_dir.path());
        adjust_node(&mut config);
        let listener = coil_server::bind(config.listen).unwrap();
        let addr = listener.local_addr().unwrap();
        config.public_url = format!("ws://{addr}");
        let mut accounts_config = AccountsConfig::for_tests(data_dir.path());
        adjust(&mut accounts_config);
        let services = coil_server::all_in_one_with_accounts(
            &config,
            coil_server::modes::configured(&config).unwrap(),
            Duration::from_secs(20),
            accounts_config,
        )
        .unwrap();
        let platform = services.accounts.clone().expect("all-in-one has accounts");
        let store = AccountStore::connect(&config.database_url).await.unwrap();
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(coil_server::run(config, listener, services, async move {
            let _ = signal.await;
        }));
        let node = AccountsNode {
            addr,
            accounts: Accounts::new(platform, store),
            _shutdown: shutdown,
            _data_dir: data_dir,
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        while reqwest::get(node.url("/api/health")).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "node did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        node
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> (u16, Value) {
        let mut request = reqwest::Client::new().post(self.url(path)).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// The player id and name a join token carries (its payload is public; only the signature
/// is secret): version, then length-prefixed player id and player name.
fn token_identity(join_token: &str) -> (String, String) {
    let payload = URL_SAFE_NO_PAD
        .decode(join_token.split('.').next().unwrap())
        .unwrap();
    let id_len = usize::from(payload[1]);
    let id = String::from_utf8(payload[2..2 + id_len].to_vec()).unwrap();
    let name_len = usize::from(payload[2 + id_len]);
    let name = String::from_utf8(payload[3 + id_len..3 + id_len + name_len].to_vec()).unwrap();
    (id, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_player_matchmakes_as_its_account_and_joins() {
    let node = AccountsNode::start(|_| {}).await;
    let (status, registered) = node
        .post(
            "/api/auth/register",
            json!({ "username": "Ada", "password": "correct horse battery" }),
            None,
        )
        .await;
    assert_eq!(status, 201, "{registered}");
    let access = registered["accessToken"].as_str().unwrap();
    // The body's name and id are ignored: identity comes from the token.
    let (status, answer) = node
        .post(
            "/api/matchmake",
            json!({ "playerName": "Impostor", "playerId": "someone-else" }),
            Some(access),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (player_id, player_name) = token_identity(answer["joinToken"].as_str().unwrap());
    assert_eq!(player_id, registered["account"]["id"].as_str().unwrap());
    assert_eq!(player_name, "Ada");
    join_and_see_the_game(&answer).await;
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Joins with a matchmake answer's token and waits for the first game frame (the node
/// accepted the token); any error frame fails the test.
async fn join_and_see_the_game(answer: &Value) {
    join_and_keep_playing(answer).await;
}

/// Like [`join_and_see_the_game`], and hands back the live socket.
async fn join_and_keep_playing(answer: &Value) -> Socket {
    use coil_protocol::codec::server_frames;
    use coil_protocol::envelope::{Join, ServerEnvelope, decode_server_envelope, encode_join};
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut socket, _) = tokio_tungstenite::connect_async(answer["wsUrl"].as_str().unwrap())
        .await
        .unwrap();
    let mut frame = Vec::new();
    encode_join(
        &Join {
            version: PROTOCOL_V12,
            name: "Ada",
            skin: 1,
            token: Some(answer["joinToken"].as_str().unwrap().as_bytes()),
        },
        &mut frame,
    );
    socket.send(Message::binary(frame)).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("no game frame in time")
            .expect("socket closed")
            .unwrap();
        let Message::Binary(bytes) = message else {
            continue;
        };
        for frame in server_frames(&bytes) {
            let (frame_type, payload) = frame.unwrap();
            match decode_server_envelope(frame_type, payload).unwrap() {
                Some(ServerEnvelope::Error { code, reason }) => {
                    panic!("join refused: {code} {reason}")
                }
                Some(_) => {}
                None => return socket,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_origin_may_call_matchmake_and_the_accounts_api_with_a_bearer_token() {
    const ORIGIN: &str = "https://play.example.com";
    let node = AccountsNode::start_with(
        |config| config.cors_origins = vec![ORIGIN.to_owned()],
        |_| {},
    )
    .await;
    let client = reqwest::Client::new();
    let preflight = |path: &str, method: &str, origin: &str| {
        client
            .request(reqwest::Method::OPTIONS, node.url(path))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", method)
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
    };
    for (path, method) in [
        ("/api/matchmake", "POST"),
        ("/api/auth/login", "POST"),
        ("/api/sessions", "DELETE"),
        ("/api/me", "PATCH"),
        ("/api/leaderboard", "GET"),
    ] {
        let response = preflight(path, method, ORIGIN).await.unwrap();
        let headers = response.headers();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        assert_eq!(header("access-control-allow-origin"), ORIGIN, "{path}");
        assert!(
            header("access-control-allow-methods").contains(&method.to_ascii_lowercase()),
            "{path}: {:?}",
            header("access-control-allow-methods")
        );
        assert!(
            header("access-control-allow-headers").contains("authorization"),
            "{path}: {:?}",
            header("access-control-allow-headers")
        );
    }
    // Another site gets no permission.
    let response = preflight("/api/matchmake", "POST", "https://evil.example.com")
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // A real cross-origin call can read Retry-After on a refusal.
    let answer = client
        .post(node.url("/api/matchmake"))
        .header("Origin", ORIGIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer
            .headers()
            .get("access-control-expose-headers")
            .and_then(|value| value.to_str().ok())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("retry-after")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_ends_the_players_live_connection_at_once() {
    use coil_protocol::codec::server_frames;
    use coil_protocol::envelope::{ServerEnvelope, decode_server_envelope};
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let node = AccountsNode::start(|_| {}).await;
    let mut sockets = Vec::new();
    let mut ids = Vec::new();
    for name in ["Cheater", "Bystander"] {
        let (status, registered) = node
            .post(
                "/api/auth/register",
                json!({ "username": name, "password": "correct horse battery" }),
                None,
            )
            .await;
        assert_eq!(status, 201, "{registered}");
        let (status, answer) = node
            .post(
                "/api/matchmake",
                json!({}),
                registered["accessToken"].as_str(),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        sockets.push(join_and_keep_playing(&answer).await);
        ids.push(AccountId::parse(registered["account"]["id"].as_str().unwrap()).unwrap());
    }
    node.accounts.ban(&ids[0], "aimbot", None).await.unwrap();
    // The banned player's socket gets error 33 (Kicked) and closes; the other keeps playing.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut bystander = sockets.pop().unwrap();
    let mut cheater = sockets.pop().unwrap();
    let code = 'kicked: loop {
        let message = tokio::time::timeout_at(deadline, cheater.next())
            .await
            .expect("the banned player was not disconnected in time");
        let bytes = match message {
            Some(Ok(Message::Binary(bytes))) => bytes,
            // Liveness pings and the like.
            Some(Ok(_)) => continue,
            other => panic!("closed without an error frame: {other:?}"),
        };
        for frame in server_frames(&bytes) {
            let (frame_type, payload) = frame.unwrap();
            if let Ok(Some(ServerEnvelope::Error { code, .. })) =
                decode_server_envelope(frame_type, payload)
            {
                break 'kicked code;
            }
        }
    };
    assert_eq!(code, 33, "a ban ends the connection with Kicked");
    let still_playing = tokio::time::timeout(Duration::from_secs(2), async {
        let mut frames = 0;
        while let Some(Ok(message)) = bystander.next().await {
            if let Message::Binary(bytes) = message {
                for frame in server_frames(&bytes) {
                    let (frame_type, payload) = frame.unwrap();
                    if let Ok(Some(ServerEnvelope::Error { code, reason })) =
                        decode_server_envelope(frame_type, payload)
                    {
                        panic!("the other player was cut too: {code} {reason}");
                    }
                }
                frames += 1;
            }
            if frames >= 10 {
                return;
            }
        }
        panic!("the other player's socket closed");
    })
    .await;
    assert!(
        still_playing.is_ok(),
        "the other player stopped getting frames"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_matchmake_as_their_guest_account() {
    let node = AccountsNode::start(|_| {}).await;
    let (_, guest) = node
        .post(
            "/api/auth/guest",
            json!({ "deviceSecret": "d".repeat(32) }),
            None,
        )
        .await;
    let (status, answer) = node
        .post("/api/matchmake", json!({}), guest["accessToken"].as_str())
        .await;
    assert_eq!(status, 200, "{answer}");
    let (player_id, player_name) = token_identity(answer["joinToken"].as_str().unwrap());
    assert_eq!(player_id, guest["account"]["id"].as_str().unwrap());
    assert!(player_name.starts_with("guest-"), "{player_name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_banned_accounts_and_account_ids_without_a_token_are_refused() {
    let node = AccountsNode::start(|_| {}).await;
    let (status, body) = node
        .post("/api/matchmake", json!({}), Some("not.a.token"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_invalid"))
    );
    let (_, registered) = node
        .post(
            "/api/auth/register",
            json!({ "username": "Mallory", "password": "correct horse battery" }),
            None,
        )
        .await;
    let access = registered["accessToken"].as_str().unwrap().to_owned();
    let id = AccountId::parse(registered["account"]["id"].as_str().unwrap()).unwrap();
    // Anonymous play is on (coil serve's default), but it cannot claim an account's id.
    let (status, body) = node
        .post("/api/matchmake", json!({ "playerId": id.as_str() }), None)
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = node
        .post("/api/matchmake", json!({ "playerName": "anon" }), None)
        .await;
    assert_eq!(status, 200);
    // A ban refuses the live token at the matchmaker at once.
    node.accounts.ban(&id, "aimbot", None).await.unwrap();
    let (status, body) = node.post("/api/matchmake", json!({}), Some(&access)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("account_banned")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_matchmaking_can_be_switched_off() {
    let node = AccountsNode::start(|config| config.allow_anonymous_matchmaking = false).await;
    let (status, body) = node.post("/api/matchmake", json!({}), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_attempts_and_matchmakes_are_rate_limited_per_address() {
    let node = AccountsNode::start(|config| {
        config.limits = RateLimits {
            join_ip: RateRule::parse("join_ip", "3/1h").unwrap(),
            matchmake_ip: RateRule::parse("matchmake_ip", "2/1h").unwrap(),
            ..RateLimits::off()
        };
    })
    .await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        // A plain GET of the WebSocket route counts as a join attempt (it is refused for not
        // upgrading, which is fine: the limiter runs first).
        let response = client
            .get(node.url("/api/room/limit-test"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status().as_u16() == 429 {
            assert!(response.headers().get("retry-after").is_some());
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    assert_eq!(
        statuses.iter().filter(|status| **status == 429).count(),
        1,
        "{statuses:?}"
    );
    let mut matchmakes = Vec::new();
    for _ in 0..3 {
        matchmakes.push(node.post("/api/matchmake", json!({}), None).await.0);
    }
    assert_eq!(matchmakes, [200, 200, 429]);
}
