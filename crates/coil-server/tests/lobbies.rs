//! Custom lobbies end to end in the all-in-one shape, over real HTTP and WebSockets: a guest
//! creates a private breach lobby with a password and settings, connects as its host, and the
//! node's report makes it appear in the lobby browser; quick play never lands there; joins need
//! the password or an invite; wrong passwords are rate-limited; only the host makes invites;
//! settings out of range and modes without lobbies are refused.

mod support;

use std::time::Duration;

use coil_protocol::PROTOCOL_V12;
use coil_protocol::envelope::{Join, encode_join};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{Socket, TestNode};
use tokio_tungstenite::tungstenite::Message;

/// Connects with a lobby or matchmake answer's token and keeps reading in the background, so
/// the seat stays connected.
async fn connect(answer: &Value) -> tokio::task::JoinHandle<()> {
    let mut frame = Vec::new();
    encode_join(
        &Join {
            version: PROTOCOL_V12,
            name: "ignored",
            skin: 0,
            token: Some(answer["joinToken"].as_str().unwrap().as_bytes()),
        },
        &mut frame,
    );
    let (mut socket, _): (Socket, _) =
        tokio_tungstenite::connect_async(answer["wsUrl"].as_str().unwrap())
            .await
            .unwrap();
    socket.send(Message::Binary(frame.into())).await.unwrap();
    tokio::spawn(async move { while let Some(Ok(_)) = socket.next().await {} })
}

/// Polls `GET path` until `condition` holds on the answer (heartbeats are once a second).
async fn get_until(node: &TestNode, path: &str, condition: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, answer) = node.get_json(path).await;
        if status == 200 && condition(&answer) {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "GET {path} never satisfied the condition; last {status} {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn listed<'a>(page: &'a Value, id: &str) -> Option<&'a Value> {
    page["lobbies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|lobby| lobby["id"] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_lobby_is_listed_joined_with_its_password_or_an_invite_and_never_quick_played() {
    let node = TestNode::start(|_| {}).await;
    let (host_token, host_id) = node.guest("host").await;
    let (status, created) = node
        .post_json_as(
            "/api/lobbies",
            &json!({
                "mode": "breach",
                "password": "hunter22-secret",
                "settings": {"map": "courtyard", "maxPlayers": 4, "killLimit": 10}
            }),
            Some(&host_token),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let lobby_id = created["lobbyId"].as_str().unwrap().to_owned();
    assert_eq!(created["roomId"], lobby_id);
    assert!(created["inviteCode"].is_string(), "{created}");
    let _host = connect(&created).await;

    // The node reports the lobby: listed with its rules, host, lock and password flag, and
    // nothing of the password itself.
    let page = get_until(&node, "/api/lobbies?mode=breach", |page| {
        listed(page, &lobby_id).is_some_and(|lobby| lobby["players"] == 1)
    })
    .await;
    let lobby = listed(&page, &lobby_id).unwrap();
    assert_eq!(lobby["map"], "courtyard");
    assert_eq!(lobby["maxPlayers"], 4);
    assert_eq!(lobby["phase"], "waiting");
    assert_eq!(lobby["private"], true);
    assert_eq!(lobby["password"], true);
    assert_eq!(lobby["custom"], true);
    assert_eq!(lobby["hostId"], host_id.as_str());
    assert!(!page.to_string().contains("argon2"), "{page}");
    let (status, one) = node.get_json(&format!("/api/lobbies/{lobby_id}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["id"], lobby_id.as_str());
    assert!(!one.to_string().contains("argon2"), "{one}");
    // Filters: a password filter hides it, another map hides it.
    let (_, no_password) = node
        .get_json("/api/lobbies?mode=breach&noPassword=true")
        .await;
    assert!(listed(&no_password, &lobby_id).is_none(), "{no_password}");
    let (_, other_map) = node
        .get_json("/api/lobbies?mode=breach&map=warehouse")
        .await;
    assert!(listed(&other_map, &lobby_id).is_none(), "{other_map}");

    // Quick play into breach never lands in the private lobby.
    for name in ["q1", "q2", "q3"] {
        let (status, quick) = node
            .matchmake(json!({"mode": "breach", "playerName": name}))
            .await;
        assert_eq!(status, 200, "{quick}");
        assert_ne!(quick["roomId"], lobby_id.as_str());
    }

    let join_path = format!("/api/lobbies/{lobby_id}/join");
    // No password or invite: refused; a forged invite: refused.
    let (status, refused) = node.post_json(&join_path, &json!({})).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("lobby_private"))
    );
    let (status, refused) = node
        .post_json(&join_path, &json!({"inviteCode": "AAAA"}))
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("invite_invalid"))
    );
    // The invite from the answer lets a guest in; so does the password.
    let (invited_token, _) = node.guest("invited").await;
    let (status, invited) = node
        .post_json_as(
            &join_path,
            &json!({"inviteCode": created["inviteCode"]}),
            Some(&invited_token),
        )
        .await;
    assert_eq!(status, 200, "{invited}");
    assert_eq!(invited["roomId"], lobby_id.as_str());
    let (status, with_password) = node
        .post_json(
            &join_path,
            &json!({"password": "hunter22-secret", "playerName": "pat"}),
        )
        .await;
    assert_eq!(status, 200, "{with_password}");
    assert_eq!(with_password["roomId"], lobby_id.as_str());
    // Wrong passwords: refused, then rate-limited per client and lobby.
    let mut codes = Vec::new();
    for _ in 0..12 {
        let (status, refused) = node
            .post_json(&join_path, &json!({"password": "not-the-password"}))
            .await;
        codes.push((
            status,
            refused["error"]["code"].as_str().unwrap_or("").to_owned(),
        ));
    }
    assert_eq!(codes[0], (403, "wrong_password".to_owned()), "{codes:?}");
    assert!(
        codes.iter().any(|(status, _)| *status == 429),
        "wrong passwords are rate-limited: {codes:?}"
    );

    // The lobby seats 4: with the host, the invited guest and pat connected, one more fits;
    // then the lobby is full and says so before any token is signed.
    let _invited = connect(&invited).await;
    let _pat = connect(&with_password).await;
    let (status, fourth) = node
        .post_json(
            &join_path,
            &json!({"inviteCode": created["inviteCode"], "playerName": "quinn"}),
        )
        .await;
    assert_eq!(status, 200, "{fourth}");
    let _quinn = connect(&fourth).await;
    get_until(&node, &format!("/api/lobbies/{lobby_id}"), |lobby| {
        lobby["players"] == 4
    })
    .await;
    let (status, full) = node
        .post_json(
            &join_path,
            &json!({"inviteCode": created["inviteCode"], "playerName": "rex"}),
        )
        .await;
    assert_eq!(
        (status, full["error"]["code"].as_str()),
        (409, Some("room_full")),
        "{full}"
    );
    // Invites: the host makes them; another account may not; nobody anonymous.
    let invites = format!("/api/lobbies/{lobby_id}/invites");
    let (status, invite) = node
        .post_json_as(&invites, &json!({}), Some(&host_token))
        .await;
    assert_eq!(status, 201, "{invite}");
    assert!(invite["inviteCode"].is_string());
    let (status, refused) = node
        .post_json_as(&invites, &json!({}), Some(&invited_token))
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("not_host"))
    );
    let (status, _) = node.post_json(&invites, &json!({})).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lobby_requests_get_clear_errors() {
    let node = TestNode::start(|_| {}).await;
    let (token, _) = node.guest("maker").await;
    for (body, code) in [
        (
            json!({"mode": "breach", "settings": {"maxPlayers": 3}}),
            "bad_settings",
        ),
        (
            json!({"mode": "breach", "settings": {"killLimit": 100000}}),
            "bad_settings",
        ),
        (
            json!({"mode": "breach", "settings": {"gravity": 2}}),
            "bad_settings",
        ),
        (
            json!({"mode": "breach", "settings": {"map": ["a"]}}),
            "bad_request",
        ),
        (json!({"mode": "arena"}), "no_custom_lobbies"),
        (
            json!({"mode": "breach", "password": "short"}),
            "bad_request",
        ),
        (json!({"mode": "breach", "colour": "red"}), "bad_request"),
    ] {
        let (status, refused) = node.post_json_as("/api/lobbies", &body, Some(&token)).await;
        assert_eq!(status, 400, "{body} -> {refused}");
        assert_eq!(refused["error"]["code"], code, "{body} -> {refused}");
    }
    let (status, refused) = node.get_json("/api/lobbies/us-nothing-here").await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (404, Some("lobby_unknown"))
    );
    let (status, refused) = node
        .post_json("/api/lobbies/not!a!room/join", &json!({}))
        .await;
    assert_eq!(status, 404, "{refused}");
    for query in [
        "limit=0",
        "limit=101",
        "cursor=garbage",
        "notFull=maybe",
        "mode=NOT_A_MODE",
    ] {
        let (status, refused) = node.get_json(&format!("/api/lobbies?{query}")).await;
        assert_eq!(status, 400, "{query} -> {refused}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_custom_lobby_is_listed_and_pages_with_a_cursor() {
    let node = TestNode::start(|_| {}).await;
    let mut ids = Vec::new();
    let mut hosts = Vec::new();
    for index in 0..3 {
        let (token, _) = node.guest(&format!("public-{index}")).await;
        let (status, created) = node
            .post_json_as(
                "/api/lobbies",
                &json!({"mode": "breach", "settings": {"mapVote": true}}),
                Some(&token),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        assert!(created["inviteCode"].is_null());
        hosts.push(connect(&created).await);
        ids.push(created["lobbyId"].as_str().unwrap().to_owned());
    }
    get_until(&node, "/api/lobbies?mode=breach&limit=100", |page| {
        ids.iter().all(|id| listed(page, id).is_some())
    })
    .await;
    // One at a time, following the cursor, every lobby once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..20 {
        let (status, page) = node
            .get_json(&format!("/api/lobbies?mode=breach&limit=1&cursor={cursor}"))
            .await;
        assert_eq!(status, 200, "{page}");
        for lobby in page["lobbies"].as_array().unwrap() {
            seen.push(lobby["id"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.sort();
    seen.retain(|id| ids.contains(id));
    assert_eq!(seen, expected);
}

/// Reads server-sent events from `response` until one of type `event` whose data satisfies
/// `condition` arrives; returns its data.
async fn next_event(
    response: &mut reqwest::Response,
    buffer: &mut String,
    event: &str,
    condition: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let kind = block.lines().find_map(|line| line.strip_prefix("event: "));
            let data = block.lines().find_map(|line| line.strip_prefix("data: "));
            if let (Some(kind), Some(data)) = (kind, data) {
                let data: Value = serde_json::from_str(data).unwrap();
                if kind == event && condition(&data) {
                    return data;
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {event} event in time"))
            .unwrap()
            .expect("the feed stays open");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_sends_the_lobbies_then_their_changes() {
    let node = TestNode::start(|_| {}).await;
    let (token, _) = node.guest("feed-host").await;
    let (status, created) = node
        .post_json_as("/api/lobbies", &json!({"mode": "breach"}), Some(&token))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["lobbyId"].as_str().unwrap().to_owned();
    let _host = connect(&created).await;
    let (status, refused) = node.get_json("/api/lobbies/feed?mode=breach").await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (406, Some("not_acceptable"))
    );
    let mut feed = reqwest::Client::new()
        .get(node.url("/api/lobbies/feed?mode=breach"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    assert!(
        feed.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    let first = next_event(&mut feed, &mut buffer, "lobby", |lobby| {
        lobby["id"] == id.as_str() && lobby["players"] == 1
    })
    .await;
    assert_eq!(first["maxPlayers"], 8);
    // A second player joins: the feed says so.
    let (status, joined) = node
        .post_json(
            &format!("/api/lobbies/{id}/join"),
            &json!({"playerName": "sam"}),
        )
        .await;
    assert_eq!(status, 200, "{joined}");
    let _second = connect(&joined).await;
    next_event(&mut feed, &mut buffer, "lobby", |lobby| {
        lobby["id"] == id.as_str() && lobby["players"] == 2
    })
    .await;
    // A bad parameter is a clear error, not a stream.
    let bad = reqwest::Client::new()
        .get(node.url("/api/lobbies/feed?region=no/such"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
