//! The game contract over real WebSockets: a second, tiny mode (the counter game of
//! `support/counter.rs`) beside the arena on one node, placed only by its own mode, refusing a
//! join with its own code, ending its room by itself and reporting a result to a test sink; and
//! reconnects to held seats (resume within the grace, after it, with a spent token, and held
//! seats counting against the hard cap under concurrent joins).

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use coil_protocol::codec::server_frames;
use coil_protocol::envelope::{
    Join, RESUME_TOKEN_LEN, ServerEnvelope, decode_server_envelope, encode_join, encode_resume,
};
use coil_protocol::{ErrorCode, PROTOCOL_V12};
use coil_server::{ReportSink, RoomReport};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::counter::{self, CounterMode};
use support::{Socket, TestNode, WAIT};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

async fn start(mode: CounterMode) -> (TestNode, mpsc::Receiver<RoomReport>) {
    let (reports, received) = mpsc::channel(64);
    let node = TestNode::start_with_modes(
        |config| config.room_idle = Duration::from_secs(30),
        vec![Arc::new(mode)],
        ReportSink::new(reports),
    )
    .await;
    (node, received)
}

fn counter_mode(target: u32, grace: Duration) -> CounterMode {
    CounterMode {
        target,
        reconnect_grace: grace,
        hard_cap: 3,
        start_at: 2,
    }
}

async fn matchmake(node: &TestNode, body: Value) -> (u16, Value) {
    node.post_json("/api/matchmake", &body).await
}

/// A client of the counter game over a real WebSocket.
struct CounterClient {
    socket: Socket,
    count: u32,
    phase: u8,
    own: u32,
    session: Option<([u8; RESUME_TOKEN_LEN], u32)>,
    errors: Vec<u16>,
    closed: bool,
}

impl CounterClient {
    async fn connect(ws_url: &str) -> CounterClient {
        let (socket, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
        CounterClient {
            socket,
            count: 0,
            phase: 0,
            own: 0,
            session: None,
            errors: Vec::new(),
            closed: false,
        }
    }

    /// Matchmakes into `mode` and joins with the token; returns the client and the answer.
    async fn matchmake_and_join(node: &TestNode, body: Value) -> (CounterClient, Value) {
        let (status, answer) = matchmake(node, body).await;
        assert_eq!(status, 200, "{answer}");
        let client = CounterClient::join_with(&answer).await;
        (client, answer)
    }

    async fn join_with(answer: &Value) -> CounterClient {
        let mut client = CounterClient::connect(answer["wsUrl"].as_str().unwrap()).await;
        let mut frame = Vec::new();
        encode_join(
            &Join {
                version: PROTOCOL_V12,
                // Ignored: the identity comes from the token.
                name: "frame-name",
                skin: 0,
                token: Some(answer["joinToken"].as_str().unwrap().as_bytes()),
            },
            &mut frame,
        );
        client.send(frame).await;
        client
    }

    async fn resume(ws_url: &str, token: &[u8; RESUME_TOKEN_LEN]) -> CounterClient {
        let mut client = CounterClient::connect(ws_url).await;
        let mut frame = Vec::new();
        encode_resume(token, &mut frame);
        client.send(frame).await;
        client
    }

    async fn send(&mut self, frame: Vec<u8>) {
        self.socket
            .send(Message::Binary(frame.into()))
            .await
            .unwrap();
    }

    async fn add(&mut self, amount: u8) {
        self.send(vec![0x10, amount]).await;
    }

    async fn read_one(&mut self) -> bool {
        if self.closed {
            return false;
        }
        match tokio::time::timeout(WAIT, self.socket.next()).await {
            Ok(Some(Ok(Message::Binary(bytes)))) => {
                for frame in server_frames(&bytes) {
                    let (frame_type, payload) = frame.unwrap();
                    if frame_type == counter::STATE_FRAME {
                        (self.count, self.phase, self.own) =
                            counter::decode_state(payload).expect("a counter state frame");
                        continue;
                    }
                    match decode_server_envelope(frame_type, payload).unwrap() {
                        Some(ServerEnvelope::Session { token, grace_ms }) => {
                            self.session = Some((token, grace_ms))
                        }
                        Some(ServerEnvelope::Error { code, .. }) => self.errors.push(code),
                        _ => {}
                    }
                }
                true
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                self.closed = true;
                false
            }
            Ok(Some(Ok(_))) => true,
            Err(_) => panic!("no message from the server within {WAIT:?}"),
        }
    }

    async fn wait_until(&mut self, condition: impl Fn(&CounterClient) -> bool, what: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !condition(self) {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            if !self.read_one().await && !condition(self) {
                panic!("closed while waiting for {what}; errors {:?}", self.errors);
            }
        }
    }

    async fn errors_until_closed(&mut self) -> Vec<u16> {
        while self.read_one().await {}
        self.errors.clone()
    }

    /// Drops the connection without a word (a network switch).
    async fn drop_connection(self) {
        drop(self.socket);
    }
}

const IN_PROGRESS: u8 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_mode_runs_beside_the_arena_and_ends_its_room_with_a_result() {
    let (node, mut reports) = start(counter_mode(7, Duration::ZERO)).await;
    // Placed only by its own mode: two counter players share a room, an arena player is not
    // put there, and a counter player never lands in the arena room.
    let (mut ann, first) =
        CounterClient::matchmake_and_join(&node, json!({"mode": "counter", "playerName": "ann"}))
            .await;
    assert_eq!(first["mode"], "counter");
    let (status, arena) = matchmake(&node, json!({"playerName": "arena-player"})).await;
    assert_eq!(status, 200);
    assert_eq!(arena["mode"], "arena");
    assert_ne!(arena["roomId"], first["roomId"]);
    let (status, crossed) = matchmake(
        &node,
        json!({"mode": "counter", "roomOverride": arena["roomId"]}),
    )
    .await;
    assert_eq!(
        status, 409,
        "a counter player names the arena room: {crossed}"
    );
    let (status, unknown) = matchmake(&node, json!({"mode": "chess"})).await;
    assert_eq!(
        (status, unknown["error"]["code"].as_str()),
        (400, Some("unknown_mode"))
    );
    // A third player gets a seat while the lobby waits but joins only after the start.
    let (status, late) = matchmake(&node, json!({"mode": "counter", "playerName": "late"})).await;
    assert_eq!(status, 200);
    let (mut bob, second) =
        CounterClient::matchmake_and_join(&node, json!({"mode": "counter", "playerName": "bob"}))
            .await;
    assert_eq!(second["roomId"], first["roomId"]);
    ann.wait_until(|c| c.phase == IN_PROGRESS, "the match to start")
        .await;
    // The game refuses the late join with its own code.
    let mut refused = CounterClient::join_with(&late).await;
    assert_eq!(
        refused.errors_until_closed().await,
        vec![counter::MATCH_STARTED]
    );
    // Inputs reach the game; at the target the game completes and the room closes itself.
    ann.add(3).await;
    bob.add(4).await;
    ann.wait_until(|c| c.closed, "the room to close").await;
    assert!(ann.count >= 3, "ann saw the count move: {}", ann.count);
    assert_eq!(ann.errors, vec![ErrorCode::RoomClosed as u16]);
    let report = tokio::time::timeout(WAIT, reports.recv())
        .await
        .expect("a report within the wait")
        .expect("the sink is open");
    let RoomReport::MatchResult {
        room,
        mode,
        match_id,
        result,
    } = report
    else {
        panic!("expected a match result, got {report:?}");
    };
    assert_eq!(room.as_str(), first["roomId"].as_str().unwrap());
    assert_eq!(mode.as_str(), "counter");
    // `<room>:<room incarnation, 8 hex>:<match number>`: unique even if the room is remade.
    let parts: Vec<&str> = match_id.split(':').collect();
    assert_eq!(parts.len(), 3, "{match_id}");
    assert_eq!(parts[0], room.as_str());
    assert!(parts[1].len() == 8 && parts[1].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(parts[2], "1");
    let mut lines: Vec<(String, u32)> = result
        .players
        .iter()
        .map(|p| (p.display_name.clone(), p.kills))
        .collect();
    lines.sort();
    // The names come from the join tokens (the frame said "frame-name").
    assert_eq!(lines, vec![("ann".into(), 3), ("bob".into(), 4)]);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), reports.recv())
            .await
            .is_err(),
        "the result is reported once"
    );
    let (_, health) = node.get_json("/api/health").await;
    let modes: Vec<&str> = health["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, vec!["arena", "breach", "counter"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_player_resumes_within_the_grace_and_keeps_its_state() {
    let (node, _reports) = start(counter_mode(1_000, Duration::from_secs(30))).await;
    let (mut ann, answer) =
        CounterClient::matchmake_and_join(&node, json!({"mode": "counter", "playerName": "ann"}))
            .await;
    let (mut bob, _) =
        CounterClient::matchmake_and_join(&node, json!({"mode": "counter", "playerName": "bob"}))
            .await;
    ann.wait_until(
        |c| c.phase == IN_PROGRESS && c.session.is_some(),
        "the start",
    )
    .await;
    let (first_token, grace_ms) = ann.session.unwrap();
    assert_eq!(grace_ms, 30_000);
    ann.add(5).await;
    ann.wait_until(|c| c.own == 5, "ann's input applied").await;
    ann.drop_connection().await;
    // The seat is held: the game goes on, and the room still counts ann.
    bob.add(1).await;
    bob.wait_until(|c| c.count == 6, "bob's input").await;
    let ws_url = answer["wsUrl"].as_str().unwrap();
    let mut back = CounterClient::resume(ws_url, &first_token).await;
    back.wait_until(|c| c.session.is_some() && c.count == 6, "the resumed state")
        .await;
    assert_eq!(back.own, 5, "the same player, with what it had added");
    let (second_token, _) = back.session.unwrap();
    assert_ne!(
        second_token, first_token,
        "the token rotates on every resume"
    );
    back.add(2).await;
    back.wait_until(|c| c.own == 7, "input after the resume")
        .await;
    // The spent token is refused; the fresh one still works (and replaces this connection).
    let mut replayed = CounterClient::resume(ws_url, &first_token).await;
    assert_eq!(
        replayed.errors_until_closed().await,
        vec![ErrorCode::ReconnectRefused as u16]
    );
    let mut again = CounterClient::resume(ws_url, &second_token).await;
    again
        .wait_until(|c| c.session.is_some() && c.own == 7, "the second resume")
        .await;
    assert_eq!(
        back.errors_until_closed().await,
        vec![ErrorCode::Replaced as u16],
        "the older connection is told it was replaced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_after_the_grace_is_refused_with_its_own_code() {
    let (node, _reports) = start(counter_mode(1_000, Duration::from_millis(400))).await;
    let (mut ann, answer) =
        CounterClient::matchmake_and_join(&node, json!({"mode": "counter", "playerName": "ann"}))
            .await;
    ann.wait_until(|c| c.session.is_some(), "the session token")
        .await;
    let (token, _) = ann.session.unwrap();
    ann.drop_connection().await;
    // The grace is a span of time: let it pass (the core checks the instant itself, so a late
    // room tick cannot turn an expired seat back into a held one).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut late = CounterClient::resume(answer["wsUrl"].as_str().unwrap(), &token).await;
    assert_eq!(
        late.errors_until_closed().await,
        vec![ErrorCode::ReconnectExpired as u16]
    );
    // A token nobody issued is refused outright.
    let mut forged = CounterClient::resume(answer["wsUrl"].as_str().unwrap(), &[9; 16]).await;
    assert_eq!(
        forged.errors_until_closed().await,
        vec![ErrorCode::ReconnectRefused as u16]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_seats_count_against_the_hard_cap_under_concurrent_joins() {
    const HARD_CAP: usize = 8;
    let (node, _reports) = start(CounterMode {
        target: 1_000,
        reconnect_grace: Duration::from_secs(60),
        hard_cap: HARD_CAP,
        // The lobby never starts: only the runtime's caps can refuse a join.
        start_at: 1_000,
    })
    .await;
    let node = Arc::new(node);
    // Wave one: 100 players join at once; half of them drop at once and are held.
    let join_wave = |wave: usize, count: usize, drop_after: bool, rooms: Vec<String>| {
        let node = node.clone();
        async move {
            let mut tasks = Vec::new();
            for index in 0..count {
                let node = node.clone();
                // Wave two names the rooms wave one filled: only the caps can stop it.
                let room_override = (!rooms.is_empty()).then(|| rooms[index % rooms.len()].clone());
                tasks.push(tokio::spawn(async move {
                    let (status, answer) = matchmake(
                        &node,
                        json!({
                            "mode": "counter",
                            "playerName": format!("w{wave}p{index}"),
                            "roomOverride": room_override,
                        }),
                    )
                    .await;
                    if status != 200 {
                        return None;
                    }
                    let mut client = CounterClient::join_with(&answer).await;
                    // Seated once the first state arrives; refused if an error comes instead.
                    while client.errors.is_empty() && client.session.is_none() {
                        if !client.read_one().await {
                            break;
                        }
                    }
                    client.session?;
                    let room = answer["roomId"].as_str().unwrap().to_owned();
                    if drop_after && index % 2 == 0 {
                        client.drop_connection().await;
                        return Some((room, None));
                    }
                    Some((room, Some(client)))
                }));
            }
            let mut seated = Vec::new();
            for task in tasks {
                if let Some(outcome) = task.await.unwrap() {
                    seated.push(outcome);
                }
            }
            seated
        }
    };
    let first = join_wave(1, 100, true, Vec::new()).await;
    // Let the directory hear every held seat (one heartbeat), then aim 100 joins at those rooms.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut full_rooms: Vec<String> = first.iter().map(|(room, _)| room.clone()).collect();
    full_rooms.sort();
    full_rooms.dedup();
    let second = join_wave(2, 100, false, full_rooms).await;
    let mut per_room: HashMap<String, usize> = HashMap::new();
    for (room, _) in first.iter().chain(&second) {
        *per_room.entry(room.clone()).or_default() += 1;
    }
    // Every seat ever handed out is still taken (connected or held for the grace), so the sum
    // per room is what that room holds: never above the cap.
    for (room, seats) in &per_room {
        assert!(*seats <= HARD_CAP, "room {room} holds {seats} > {HARD_CAP}");
    }
    let seated = first.len() + second.len();
    assert!(
        first.len() >= 90,
        "most of wave one found a seat (got {})",
        first.len()
    );
    let (_, health) = node.get_json("/api/health").await;
    let counter = health["modes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mode"] == "counter")
        .unwrap()
        .clone();
    assert_eq!(
        counter["humans"].as_u64().unwrap() as usize,
        seated,
        "held seats are counted as players: {counter}"
    );
}
