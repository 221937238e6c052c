//! Breach on the runtime, over real WebSockets: quick play places two players into one breach
//! room (never into the arena), the match starts, bots fill the teams, the Rust client mirror
//! follows the server's frames, the identity comes from the join token, and the match result
//! reaches the node's report sink once; a dropped player resumes its soldier; a finished match
//! is stored and served by id and in each signed-in player's history.

mod support;

use std::sync::Arc;
use std::time::Duration;

use coil_breach::input::Intent;
use coil_breach::math::Angle;
use coil_breach::mirror::ClientMirror;
use coil_breach::wire::encode_input;
use coil_breach::{BreachConfig, BreachMode};
use coil_protocol::PROTOCOL_V12;
use coil_protocol::codec::server_frames;
use coil_protocol::envelope::{
    Join, RESUME_TOKEN_LEN, ServerEnvelope, decode_server_envelope, encode_join, encode_resume,
};
use coil_server::{ReportSink, RoomReport};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{Socket, TestNode, WAIT};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// A quick match: a kill limit of 1 is reached within seconds by bots that shoot.
fn quick_breach() -> BreachMode {
    BreachMode {
        config: BreachConfig {
            kill_limit: 1,
            countdown_ticks: 10,
            scoreboard_ticks: 30,
            ..BreachConfig::default()
        },
    }
}

struct BreachClient {
    socket: Socket,
    mirror: ClientMirror,
    session: Option<[u8; RESUME_TOKEN_LEN]>,
    errors: Vec<u16>,
    sequence: u32,
    closed: bool,
}

impl BreachClient {
    async fn connect(ws_url: &str, first: Vec<u8>) -> BreachClient {
        let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
        socket.send(Message::Binary(first.into())).await.unwrap();
        BreachClient {
            socket,
            mirror: ClientMirror::new(),
            session: None,
            errors: Vec::new(),
            sequence: 0,
            closed: false,
        }
    }

    async fn join(answer: &Value) -> BreachClient {
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
        BreachClient::connect(answer["wsUrl"].as_str().unwrap(), frame).await
    }

    async fn resume(ws_url: &str, token: &[u8; RESUME_TOKEN_LEN]) -> BreachClient {
        let mut frame = Vec::new();
        encode_resume(token, &mut frame);
        BreachClient::connect(ws_url, frame).await
    }

    async fn read_one(&mut self) -> bool {
        if self.closed {
            return false;
        }
        match tokio::time::timeout(WAIT, self.socket.next()).await {
            Ok(Some(Ok(Message::Binary(bytes)))) => {
                for frame in server_frames(&bytes) {
                    let (frame_type, payload) = frame.unwrap();
                    match decode_server_envelope(frame_type, payload) {
                        Ok(Some(ServerEnvelope::Session { token, .. })) => {
                            self.session = Some(token)
                        }
                        Ok(Some(ServerEnvelope::Error { code, .. })) => self.errors.push(code),
                        _ => {}
                    }
                }
                self.mirror
                    .apply_message(&bytes)
                    .expect("the breach mirror follows the server");
                true
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                self.closed = true;
                false
            }
            Ok(Some(Ok(_))) => true,
            Err(_) => panic!("no message within {WAIT:?}"),
        }
    }

    async fn wait_until(&mut self, condition: impl Fn(&BreachClient) -> bool, what: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !condition(self) {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            if !self.read_one().await && !condition(self) {
                panic!("closed while waiting for {what}; errors {:?}", self.errors);
            }
        }
    }

    /// Sends one walking input (the same rule as the browser client: one per tick at most).
    async fn walk(&mut self, direction: u8) {
        self.sequence += 1;
        let mut frame = Vec::new();
        encode_input(
            &Intent {
                sequence: self.sequence,
                direction,
                ..Intent::idle(Angle(0))
            },
            &mut frame,
        );
        self.socket
            .send(Message::Binary(frame.into()))
            .await
            .unwrap();
    }
}

const IN_PROGRESS: u8 = 2;

async fn start() -> (TestNode, mpsc::Receiver<RoomReport>) {
    let (reports, received) = mpsc::channel(64);
    let node = TestNode::start_with_modes(
        |_| {},
        vec![Arc::new(quick_breach())],
        ReportSink::new(reports),
    )
    .await;
    (node, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_play_puts_two_players_into_a_breach_match_that_reports_its_result() {
    let (node, mut reports) = start().await;
    let (status, ann_answer) = node
        .post_json(
            "/api/matchmake",
            &json!({"mode": "breach", "playerName": "ann"}),
        )
        .await;
    assert_eq!(status, 200, "{ann_answer}");
    assert_eq!(ann_answer["mode"], "breach");
    let (_, bob_answer) = node
        .post_json(
            "/api/matchmake",
            &json!({"mode": "breach", "playerName": "bob"}),
        )
        .await;
    assert_eq!(bob_answer["roomId"], ann_answer["roomId"], "fill-first");
    let mut ann = BreachClient::join(&ann_answer).await;
    let mut bob = BreachClient::join(&bob_answer).await;
    ann.wait_until(|c| c.mirror.init.is_some(), "init").await;
    // The roster names come from the join tokens, not the frames' "ignored".
    ann.wait_until(
        |c| {
            c.mirror.roster.iter().any(|entry| entry.name == "ann")
                && c.mirror.roster.iter().any(|entry| entry.name == "bob")
        },
        "both humans on the roster",
    )
    .await;
    assert!(
        ann.mirror
            .roster
            .iter()
            .all(|entry| entry.name != "ignored"),
        "the frame's name is never used"
    );
    ann.wait_until(|c| c.mirror.phase.0 == IN_PROGRESS, "the match to start")
        .await;
    ann.wait_until(|c| c.mirror.roster.len() == 8, "bots filling the teams")
        .await;
    // A player that walks sees its own inputs acknowledged.
    for _ in 0..10 {
        ann.walk(2).await;
        ann.read_one().await;
    }
    ann.wait_until(|c| c.mirror.own.ack > 0, "an acknowledged input")
        .await;
    // Bots reach the kill limit of 1 soon: the result reaches the sink, once.
    let report = tokio::time::timeout(Duration::from_secs(90), reports.recv())
        .await
        .expect("a result within 90 s")
        .expect("the sink is open");
    let RoomReport::MatchResult { mode, result, .. } = report else {
        panic!("expected a match result, got {report:?}");
    };
    assert_eq!(mode.as_str(), "breach");
    let humans: Vec<&str> = result
        .players
        .iter()
        .filter(|p| !p.bot)
        .map(|p| p.display_name.as_str())
        .collect();
    assert!(
        humans.contains(&"ann") && humans.contains(&"bob"),
        "{humans:?}"
    );
    assert_eq!(result.players.len(), 8);
    assert!(result.team_scores.iter().any(|score| *score >= 1));
    // Both clients see the scoreboard.
    bob.wait_until(|c| c.mirror.scoreboard.is_some(), "the scoreboard")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_breach_player_resumes_its_seat() {
    let (node, _reports) = start().await;
    let (_, answer) = node
        .post_json(
            "/api/matchmake",
            &json!({"mode": "breach", "playerName": "cat"}),
        )
        .await;
    let mut cat = BreachClient::join(&answer).await;
    cat.wait_until(
        |c| c.session.is_some() && c.mirror.init.is_some(),
        "a session",
    )
    .await;
    let token = cat.session.unwrap();
    let slot_before = cat.mirror.init.as_ref().map(|init| init.slot);
    drop(cat.socket);
    let mut back = BreachClient::resume(answer["wsUrl"].as_str().unwrap(), &token).await;
    back.wait_until(
        |c| c.mirror.init.is_some() && c.session.is_some(),
        "the resumed init",
    )
    .await;
    assert_eq!(
        back.mirror.init.as_ref().map(|init| init.slot),
        slot_before,
        "the same soldier"
    );
    assert_ne!(back.session, Some(token), "a fresh token");
    let (_, health) = node.get_json("/api/health").await;
    let breach = health["modes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mode"] == "breach")
        .cloned()
        .unwrap();
    assert_eq!(breach["humans"], 1, "{breach}");
}

/// `role: "spectator"` in the matchmake body (what the page's "Watch breach" sends) is signed
/// into the join token: the room seats a spectator, not a ninth soldier. An unknown role is a
/// bad request. Before the matchmaker read `role`, "Watch breach" quietly took a player seat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spectator_role_from_the_matchmaker_joins_as_a_spectator() {
    let (node, _reports) = start().await;
    let (status, answer) = node
        .post_json(
            "/api/matchmake",
            &json!({"mode": "breach", "playerName": "eve", "role": "spectator"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let mut eve = BreachClient::join(&answer).await;
    eve.wait_until(|c| c.mirror.init.is_some(), "init").await;
    let init = eve.mirror.init.as_ref().unwrap();
    assert_eq!(init.slot, 0xff, "a spectator has no slot");
    assert_eq!(init.team, 2, "the spectators' team");
    assert!(
        eve.mirror.roster.iter().all(|entry| entry.name != "eve"),
        "a spectator is not on the roster"
    );
    let (status, refused) = node
        .post_json(
            "/api/matchmake",
            &json!({"mode": "breach", "playerName": "mal", "role": "referee"}),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_match_is_stored_and_served_by_id_and_in_each_players_history() {
    let node = TestNode::start_storing_results(|_| {}, vec![Arc::new(quick_breach())]).await;
    let (ann_token, ann_id) = node.guest("ann").await;
    let (bob_token, bob_id) = node.guest("bob").await;
    let mut clients = Vec::new();
    for token in [&ann_token, &bob_token] {
        let (status, answer) = node
            .post_json_as("/api/matchmake", &json!({ "mode": "breach" }), Some(token))
            .await;
        assert_eq!(status, 200, "{answer}");
        clients.push(BreachClient::join(&answer).await);
    }
    let history_path = format!("/api/players/{ann_id}/matches");
    // Bots reach the kill limit of 1 soon; the players keep reading their frames meanwhile.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let history = loop {
        for client in &mut clients {
            client.read_one().await;
        }
        let (status, history) = node.get_json(&history_path).await;
        assert_eq!(status, 200, "{history}");
        if !history["matches"].as_array().unwrap().is_empty() {
            break history;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no stored match within 90 s"
        );
    };
    let line = &history["matches"][0];
    assert_eq!(line["mode"], "breach");
    assert_eq!(line["player"]["accountId"], ann_id.as_str());
    assert_eq!(history["next"], Value::Null, "one short page");
    let match_id = line["matchId"].as_str().unwrap();

    let (status, stored) = node.get_json(&format!("/api/matches/{match_id}")).await;
    assert_eq!(status, 200, "{stored}");
    let players = stored["players"].as_array().unwrap();
    assert_eq!(players.len(), 8, "{stored}");
    let accounts: Vec<&str> = players
        .iter()
        .filter_map(|p| p["accountId"].as_str())
        .collect();
    assert!(
        accounts.contains(&ann_id.as_str()) && accounts.contains(&bob_id.as_str()),
        "{accounts:?}"
    );
    // Bots are stored by name only.
    assert!(
        players
            .iter()
            .filter(|p| p["bot"] == true)
            .all(|p| p["accountId"].is_null())
    );
    assert!(players.iter().filter(|p| p["bot"] == true).count() == 6);
    assert!(
        stored["teamScores"]
            .as_array()
            .unwrap()
            .iter()
            .any(|score| score.as_u64() >= Some(1))
    );
    assert_eq!(stored["reason"], "kill_limit");
    let (_, bobs) = node
        .get_json(&format!("/api/players/{bob_id}/matches"))
        .await;
    assert_eq!(bobs["matches"][0]["matchId"], match_id);

    // Bad input: a malformed id, an unknown match, a junk cursor, a limit out of range.
    let (status, _) = node.get_json("/api/matches/has%20space").await;
    assert_eq!(status, 400);
    let (status, body) = node.get_json("/api/matches/eu-x:00000000:1").await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    let (status, _) = node.get_json(&format!("{history_path}?before=junk!")).await;
    assert_eq!(status, 400);
    let (status, _) = node.get_json(&format!("{history_path}?limit=0")).await;
    assert_eq!(status, 400);
    let (status, _) = node.get_json("/api/players/not-an-account/matches").await;
    assert_eq!(status, 400);
    let metrics = node.metrics().await;
    assert!(
        support::metric_sum(&metrics, "coil_match_result_writes_total") >= 1.0,
        "the write is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_players_rating_is_hidden_until_calibrated() {
    use coil_store::{AccountId, MatchRecord, RatedSeat};

    let node = TestNode::start(|_| {}).await;
    let store =
        coil_store::Leaderboard::connect(&coil_store::default_database_url(node.data_dir.path()))
            .await
            .unwrap()
            .matches();
    let (ann, bob) = (AccountId::generate(), AccountId::generate());
    // Ann wins ten 1v1 matches of "duel" and one of "breach"; each win is +1, each loss -1.
    for (index, mode) in std::iter::repeat_n("duel", 10)
        .chain(["breach"])
        .enumerate()
    {
        let record = MatchRecord {
            match_id: format!("r-{index}"),
            mode: mode.into(),
            room: "room-r".into(),
            winner: Some(0),
            reason: "kill_limit".into(),
            team_scores: vec![1, 0],
            duration_ms: 1,
            ended_at_ms: 1 + index as i64,
            details: Vec::new(),
            players: vec![seat(&ann, 0), seat(&bob, 1)],
        };
        store
            .record_rated(&record, |teams: &[Vec<RatedSeat>]| {
                Some(
                    teams
                        .iter()
                        .zip([1.0, -1.0])
                        .map(|(team, step)| {
                            team.iter()
                                .map(|seat| coil_store::NewRating {
                                    mean: seat.current.map_or(25.0, |r| r.mean) + step,
                                    uncertainty: 1.0,
                                    displayed: None,
                                })
                                .collect()
                        })
                        .collect(),
                )
            })
            .await
            .unwrap();
    }
    let (status, body) = node
        .get_json(&format!("/api/players/{}/ratings", ann.as_str()))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"ratings": [
            {"mode": "breach", "matches": 1, "matchesLeft": 9, "rating": null},
            // Calibrated after 10: mean 35, sigma 1, shown as 35 - 3 x 1.
            {"mode": "duel", "matches": 10, "matchesLeft": 0, "rating": 32.0},
        ]})
    );
    let (_, never) = node
        .get_json(&format!(
            "/api/players/{}/ratings",
            AccountId::generate().as_str()
        ))
        .await;
    assert_eq!(never, json!({"ratings": []}));
    let (status, _) = node.get_json("/api/players/nope/ratings").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ranked_leaderboard_shows_calibrated_accounts_best_first() {
    use coil_store::{AccountId, MatchRecord, NewRating, RatedSeat};

    let node = TestNode::start(|_| {}).await;
    let store =
        coil_store::Leaderboard::connect(&coil_store::default_database_url(node.data_dir.path()))
            .await
            .unwrap()
            .matches();
    let (_, ann) = node.guest("ranked-ann").await;
    let (_, bob) = node.guest("ranked-bob").await;
    let (ann, bob) = (
        AccountId::parse(&ann).unwrap(),
        AccountId::parse(&bob).unwrap(),
    );
    // Ann beats Bob ten times: +1 / -1 each, shown (mean - 3) once ten are played.
    for index in 0..10 {
        let record = MatchRecord {
            match_id: format!("ranked-{index}"),
            mode: "duel".into(),
            room: "room-r".into(),
            winner: Some(0),
            reason: "kill_limit".into(),
            team_scores: vec![1, 0],
            duration_ms: 1,
            ended_at_ms: 1 + index,
            details: Vec::new(),
            players: vec![seat(&ann, 0), seat(&bob, 1)],
        };
        store
            .record_rated(&record, |teams: &[Vec<RatedSeat>]| {
                Some(
                    teams
                        .iter()
                        .zip([1.0, -1.0])
                        .map(|(team, step)| {
                            team.iter()
                                .map(|seat| {
                                    let mean = seat.current.map_or(25.0, |r| r.mean) + step;
                                    let played = seat.current.map_or(0, |r| r.matches) + 1;
                                    NewRating {
                                        mean,
                                        uncertainty: 1.0,
                                        displayed: (played >= 10).then_some(mean - 3.0),
                                    }
                                })
                                .collect()
                        })
                        .collect(),
                )
            })
            .await
            .unwrap();
        if index == 8 {
            let (status, board) = node.get_json("/api/leaderboard/ranked?mode=duel").await;
            assert_eq!(status, 200, "{board}");
            assert_eq!(
                board["entries"],
                json!([]),
                "nobody is calibrated after nine"
            );
        }
    }
    let (status, board) = node
        .get_json("/api/leaderboard/ranked?mode=duel&limit=1")
        .await;
    assert_eq!(status, 200, "{board}");
    assert_eq!(board["entries"][0]["accountId"], ann.as_str());
    assert_eq!(board["entries"][0]["rank"], 1);
    assert_eq!(board["entries"][0]["rating"], 32.0);
    let next = board["next"].as_str().expect("a full page has a next");
    let (_, second) = node
        .get_json(&format!(
            "/api/leaderboard/ranked?mode=duel&limit=1&after={next}"
        ))
        .await;
    assert_eq!(second["entries"][0]["accountId"], bob.as_str());
    assert_eq!(second["entries"][0]["rank"], 2);
    assert_eq!(second["entries"][0]["rating"], 12.0);
    for bad in ["mode=Duel", "limit=0", "limit=101", "after=junk"] {
        let (status, _) = node
            .get_json(&format!("/api/leaderboard/ranked?{bad}"))
            .await;
        assert_eq!(status, 400, "{bad}");
    }
}

/// A verified human's seat in a stored test match.
fn seat(account: &coil_store::AccountId, team: u8) -> coil_store::MatchPlayer {
    coil_store::MatchPlayer {
        account: Some(account.clone()),
        player_key: account.as_str().to_owned(),
        display_name: "p".into(),
        team,
        kills: 1,
        deaths: 1,
        assists: 0,
        score: 1,
        left_early: false,
        bot: false,
    }
}
