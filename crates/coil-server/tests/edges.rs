//! The edges of a player's connection, over real sockets on 127.0.0.1 (issue 17): clients that
//! stop reading or read too slowly are cut within a bound of the slow-client timeout while the
//! room keeps ticking, and the handshake's edge cases — control frames before the join, unknown
//! versions, oversized first messages, Unicode names, and seats reserved for token holders.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use coil_protocol::envelope::client_type;
use coil_protocol::{ErrorCode, PROTOCOL_V11, PROTOCOL_V12};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use support::{Player, TestNode, Throttled, WAIT, connect_with_receive_buffer, error_frames};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The slow-client timeout the stall tests configure: short, so the tests are quick.
const SLOW_CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a stalled client may stay seated before the test calls it a failure: four times
/// the timeout. The room probes each connection with a WebSocket Ping every `PING_INTERVAL`
/// and cuts it once a ping stays unanswered for the timeout, so the cut comes about
/// `PING_INTERVAL + timeout` (plus a tick) after the client stops reading — 4 s here, half the
/// bound, which leaves room for a loaded 2-core machine. Without the probe the cut waits for
/// the kernel's buffers to fill: tens of seconds, or never for a reader that drains a little.
fn stall_bound() -> Duration {
    let bound = SLOW_CLIENT_TIMEOUT * 4;
    assert!(
        coil_server::room::PING_INTERVAL + SLOW_CLIENT_TIMEOUT <= bound / 2,
        "the liveness ping is too rare for a stalled client to be cut within {bound:?}"
    );
    bound
}

/// Reads until the player is seated (its own snake arrives) or the server refuses and closes;
/// `Err` carries the error codes received.
async fn seated_or_refused(player: &mut Player) -> Result<(), Vec<u16>> {
    let deadline = Instant::now() + WAIT;
    while player.mirror.own_snake().is_none() {
        assert!(Instant::now() < deadline, "neither seated nor refused");
        if !player.read_one().await {
            return Err(player.errors.iter().map(|(code, _)| *code).collect());
        }
    }
    Ok(())
}

/// Keeps `watcher` reading while waiting for the node to seat only `humans` players; returns
/// how long after `started` that happened and how many states the watcher got meanwhile.
/// Fails once `bound` has passed since `started`.
async fn wait_for_humans_while_watching(
    node: &TestNode,
    watcher: &mut Player,
    humans: u64,
    started: Instant,
    bound: Duration,
) -> (Duration, u64) {
    let states_before = watcher.mirror.states_applied();
    let mut next_check = started;
    loop {
        if Instant::now() >= next_check {
            if node.humans().await == humans {
                return (
                    started.elapsed(),
                    watcher.mirror.states_applied() - states_before,
                );
            }
            next_check = Instant::now() + Duration::from_millis(100);
        }
        assert!(
            started.elapsed() < bound,
            "the node still seats more than {humans} human(s) after {bound:?}"
        );
        assert!(watcher.read_one().await, "the watcher was disconnected");
    }
}

/// The room kept its tick rate (20 Hz in tests) for the watcher while a client stalled: at
/// least a quarter of the ticks arrived, which a loaded machine still manages and a room that
/// waited on the stalled socket does not.
fn assert_room_kept_ticking(states: u64, during: Duration) {
    let expected = during.as_secs_f64() * 20.0;
    assert!(
        states as f64 >= expected / 4.0,
        "the watcher got {states} states in {during:?} (about {expected:.0} expected)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_and_its_seat_freed() {
    let node = TestNode::start(|config| {
        config.slow_client_timeout = SLOW_CLIENT_TIMEOUT;
        config.room_soft_cap = 1;
        config.room_hard_cap = 2;
        config.room_population_target = 0;
    })
    .await;
    let mut watcher = Player::join(&node, "stall", "watcher").await;
    // Joined, then never read again: the socket is kept open but never polled, so it answers
    // no ping and its kernel buffers (default size, autotuned) soak up the stream.
    let mut stalled = Player::join(&node, "stall", "stalled").await;
    let stopped_reading = Instant::now();
    // The room is at its hard cap while the stalled client holds its seat.
    let mut third = Player::join_only(&node, "stall", "third", PROTOCOL_V11, None).await;
    assert_eq!(
        seated_or_refused(&mut third).await,
        Err(vec![ErrorCode::RoomFull as u16])
    );

    let (cut_after, states) =
        wait_for_humans_while_watching(&node, &mut watcher, 1, stopped_reading, stall_bound())
            .await;
    assert!(
        cut_after >= SLOW_CLIENT_TIMEOUT,
        "cut after {cut_after:?}, before the timeout of {SLOW_CLIENT_TIMEOUT:?}"
    );
    assert_room_kept_ticking(states, cut_after);

    // The freed seat takes a new player at the hard cap.
    let mut late = Player::join_only(&node, "stall", "late", PROTOCOL_V11, None).await;
    assert_eq!(seated_or_refused(&mut late).await, Ok(()));
    // Reading again, the stalled client finds what the kernel held, the reason and the end.
    assert_eq!(
        stalled.read_until_closed().await,
        vec![ErrorCode::SlowClient as u16]
    );
}

/// A client reading 100 bytes a second, far less than its stream, is cut within the bound and
/// its seat freed. With `forge_pongs` it also sends Pongs it made up (unsolicited Pongs are
/// legal WebSocket): guessed sequence numbers, counting up, and the largest one; they must not
/// pass for answers to the room's pings.
async fn assert_slow_reader_is_cut(room: &str, forge_pongs: bool) {
    let node = TestNode::start(|config| {
        config.slow_client_timeout = SLOW_CLIENT_TIMEOUT;
        config.room_soft_cap = 1;
        config.room_hard_cap = 2;
        // Bots make the stream a few kilobytes a second, far more than the reader takes.
        config.room_population_target = 12;
    })
    .await;
    let mut watcher = Player::join(&node, room, "watcher").await;

    // A real WebSocket client (it answers pings when it reads them) over a socket with a
    // small receive buffer, throttled to 10 bytes every 100 ms once it is seated.
    let tcp = connect_with_receive_buffer(node.addr, 4 * 1024).await;
    let (tcp, throttle) = Throttled::new(tcp, 10, Duration::from_millis(100));
    let (mut slow, _) = tokio_tungstenite::client_async(node.ws_url(room), tcp)
        .await
        .unwrap();
    slow.send(Message::Binary(
        support::join_frame(PROTOCOL_V11, "slow", None).into(),
    ))
    .await
    .unwrap();
    match tokio::time::timeout(WAIT, slow.next()).await {
        Ok(Some(Ok(Message::Binary(first)))) => {
            assert_eq!(error_frames(&first), vec![], "the slow client was refused")
        }
        other => panic!("no first state for the slow client: {other:?}"),
    }
    assert_eq!(node.humans().await, 2);
    throttle.store(true, Ordering::Relaxed);
    let started_slow = Instant::now();
    let (mut slow_sink, mut slow_stream) = slow.split();
    // The slow client keeps reading (slowly) in its own task until the server ends it.
    let reader = tokio::spawn(async move {
        let mut bytes = 0usize;
        while let Some(Ok(message)) = slow_stream.next().await {
            bytes += message.len();
            if message.is_close() {
                break;
            }
        }
        bytes
    });
    let forger = tokio::spawn(async move {
        if !forge_pongs {
            return;
        }
        let mut guesses = vec![u32::MAX];
        guesses.extend(1..=1_000);
        for guess in guesses {
            let pong = Message::Pong(guess.to_le_bytes().to_vec().into());
            if slow_sink.send(pong).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    let (cut_after, states) =
        wait_for_humans_while_watching(&node, &mut watcher, 1, started_slow, stall_bound()).await;
    assert!(
        cut_after >= SLOW_CLIENT_TIMEOUT,
        "cut after {cut_after:?}, before the timeout of {SLOW_CLIENT_TIMEOUT:?}"
    );
    assert_room_kept_ticking(states, cut_after);
    forger.abort();
    // The server closed the connection: read at full speed, the client reaches its end.
    throttle.store(false, Ordering::Relaxed);
    let drained = tokio::time::timeout(WAIT, reader)
        .await
        .expect("the slow client's connection was not closed")
        .unwrap();
    assert!(drained > 0);
    let mut late = Player::join_only(&node, room, "late", PROTOCOL_V11, None).await;
    assert_eq!(seated_or_refused(&mut late).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reading_100_bytes_a_second_is_cut_and_its_seat_freed() {
    assert_slow_reader_is_cut("slow", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_cannot_keep_its_seat_with_made_up_pongs() {
    assert_slow_reader_is_cut("forger", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_ping_and_pong_before_and_after_the_join_are_allowed() {
    let node = TestNode::start(|config| config.room_population_target = 0).await;
    let mut player = Player::from_socket(Player::connect(&node, "control").await);
    // RFC 6455 §5.5: control frames may come at any time; client libraries send keep-alives.
    player
        .socket
        .send(Message::Ping(b"early".to_vec().into()))
        .await
        .unwrap();
    player
        .socket
        .send(Message::Pong(b"unasked".to_vec().into()))
        .await
        .unwrap();
    player
        .send(support::join_frame(PROTOCOL_V11, "pinger", None))
        .await;
    read_until_seated_and_ponged(&mut player, b"early").await;
    // And after the join: the stream goes on.
    player
        .socket
        .send(Message::Pong(b"unasked".to_vec().into()))
        .await
        .unwrap();
    player
        .socket
        .send(Message::Ping(b"later".to_vec().into()))
        .await
        .unwrap();
    let states = player.mirror.states_applied();
    read_until_seated_and_ponged(&mut player, b"later").await;
    player
        .wait_until(
            |p| p.mirror.states_applied() >= states + 3,
            "states after the control frames",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_control_frames_may_precede_the_join_and_more_are_refused() {
    // docs/protocol.md promises 16: a client library's keep-alive, not a client that never joins.
    let node = TestNode::start(|config| config.room_population_target = 0).await;
    for (control_frames, refused) in [(16, false), (17, true)] {
        let mut player = Player::from_socket(Player::connect(&node, "keepalive").await);
        for index in 0..control_frames {
            let payload = format!("k{index}").into_bytes().into();
            let frame = if index % 2 == 0 {
                Message::Ping(payload)
            } else {
                Message::Pong(payload)
            };
            player.socket.send(frame).await.unwrap();
        }
        player
            .send(support::join_frame(PROTOCOL_V11, "patient", None))
            .await;
        let expected = if refused {
            Err(vec![ErrorCode::OutOfOrder as u16])
        } else {
            Ok(())
        };
        assert_eq!(
            seated_or_refused(&mut player).await,
            expected,
            "{control_frames} control frames"
        );
    }
}

/// Reads (applying states) until the player is seated and the server answered the Ping with
/// `payload`; fails on an error frame or the end of the connection.
async fn read_until_seated_and_ponged(player: &mut Player, payload: &[u8]) {
    let deadline = Instant::now() + WAIT;
    let mut answered = false;
    while player.mirror.own_snake().is_none() || !answered {
        assert!(
            Instant::now() < deadline,
            "not seated and answered (answered: {answered})"
        );
        match tokio::time::timeout(WAIT, player.socket.next()).await {
            Ok(Some(Ok(Message::Pong(pong)))) => answered |= pong[..] == *payload,
            Ok(Some(Ok(Message::Binary(bytes)))) => {
                assert_eq!(error_frames(&bytes), vec![], "the server refused");
                player.mirror.apply_message(&bytes).unwrap();
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_version_is_error_5_whatever_follows_it() {
    let node = TestNode::start(|config| config.room_population_target = 0).await;
    let frames: Vec<Vec<u8>> = vec![
        // Nothing after the version: a v11 reading would call it truncated.
        vec![client_type::JOIN, 13],
        // A "name length" that runs past the end.
        vec![client_type::JOIN, 13, 200, 1],
        // An older version with trailing bytes.
        vec![client_type::JOIN, 10, 5, b'a', 0, 0, 0, 0, 0, 0, 0, 0],
        // A v13 client's longer join (its layout is not ours).
        support::join_frame(13, "future", None),
        // A resume of another version.
        vec![client_type::RESUME, 9],
    ];
    for frame in frames {
        let mut player = Player::from_socket(Player::connect(&node, "versions").await);
        player.send(frame.clone()).await;
        assert_eq!(
            player.read_until_closed().await,
            vec![ErrorCode::UnsupportedVersion as u16],
            "frame {frame:?}"
        );
    }
    assert_eq!(node.humans().await, 0);
}

/// Sends `message` as the first message and returns the error codes and the close code the
/// server answered with (`None`: the connection ended without a close frame).
async fn first_message_answer(node: &TestNode, message: Vec<u8>) -> (Vec<u16>, Option<u16>) {
    let mut socket = Player::connect(node, "oversized").await;
    // The server may answer before it has read the whole message: a failed send is not the
    // answer, what comes back is.
    let _ = socket.send(Message::Binary(message.into())).await;
    let mut codes = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await {
            Ok(Some(Ok(Message::Binary(bytes)))) => {
                codes.extend(error_frames(&bytes).into_iter().map(|(code, _)| code));
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return (codes, frame.map(|frame| u16::from(frame.code)));
            }
            Ok(Some(Ok(_))) => {}
            Ok(None | Some(Err(_))) => return (codes, None),
            Err(_) => panic!("the server neither answered nor closed"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_message_over_1024_bytes_gets_error_3_and_a_close_frame() {
    let node = TestNode::start(|config| config.room_population_target = 0).await;
    let protocol_error = Some(u16::from(CloseCode::Protocol));
    // One byte over the limit: refused for its size, with the error frame and a close frame
    // (not a bare TCP close).
    let mut over = support::join_frame(PROTOCOL_V11, "big", None);
    over.resize(coil_protocol::MAX_CLIENT_MESSAGE + 1, 0);
    assert_eq!(
        first_message_answer(&node, over).await,
        (vec![ErrorCode::Oversized as u16], protocol_error)
    );
    // Far over it, in one frame (small enough for the sockets' buffers on any machine, so the
    // client's write never races the server's close).
    assert_eq!(
        first_message_answer(&node, vec![client_type::JOIN; 8 * 1024]).await,
        (vec![ErrorCode::Oversized as u16], protocol_error)
    );
    // At the limit the message is read, and this one is refused for what it says.
    let mut at_limit = support::join_frame(PROTOCOL_V11, "big", None);
    at_limit.resize(coil_protocol::MAX_CLIENT_MESSAGE, 0);
    assert_eq!(
        first_message_answer(&node, at_limit).await,
        (vec![ErrorCode::Truncated as u16], protocol_error)
    );
}

/// Waits until the player's own snake's name has arrived and returns it.
async fn own_name(player: &mut Player) -> String {
    let own = |p: &Player| {
        let id = p.mirror.init()?.snake_id;
        Some(p.mirror.identity(id)?.name.clone())
    };
    player
        .wait_until(|p| own(p).is_some(), "the own snake's name")
        .await;
    own(player).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_display_names_are_accepted_and_normalized() {
    let node = TestNode::start(|config| config.room_population_target = 0).await;
    let mut jose = Player::join(&node, "names", "José").await;
    assert_eq!(own_name(&mut jose).await, "José");
    // The same name typed with a combining accent is stored in its composed (NFC) form.
    let mut decomposed = Player::join(&node, "names", "Jose\u{301}").await;
    assert_eq!(own_name(&mut decomposed).await, "José");
    let mut cjk = Player::join(&node, "names", "山田").await;
    assert_eq!(own_name(&mut cjk).await, "山田");
    // A name that reorders itself (a right-to-left override) is refused as a bad name.
    let mut liar = Player::join_only(&node, "names", "ab\u{202e}cd", PROTOCOL_V11, None).await;
    assert_eq!(
        seated_or_refused(&mut liar).await,
        Err(vec![ErrorCode::BadName as u16])
    );

    // Through the matchmaker, the signed token carries the Unicode name to the node.
    let (status, answer) = node.matchmake(json!({"playerName": "José"})).await;
    assert_eq!(status, 200, "{answer}");
    let mut player = Player::join_only(
        &node,
        answer["roomId"].as_str().unwrap(),
        "ignored",
        PROTOCOL_V12,
        Some(answer["joinToken"].as_str().unwrap().as_bytes()),
    )
    .await;
    assert_eq!(own_name(&mut player).await, "José");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v11_joins_never_take_seats_reserved_for_token_holders() {
    const HARD_CAP: usize = 5;
    const RESERVED: usize = 3;
    let node = TestNode::start(|config| {
        config.room_soft_cap = RESERVED;
        config.room_hard_cap = HARD_CAP;
        config.room_population_target = 0;
    })
    .await;
    // Token holders' seats are reserved in the directory by the matchmaker; the room fills to
    // its soft cap, so all of them are in one room.
    let mut answers = Vec::new();
    for index in 0..RESERVED {
        let (status, answer) = node
            .matchmake(json!({"playerName": format!("holder{index}")}))
            .await;
        assert_eq!(status, 200, "{answer}");
        answers.push(answer);
    }
    let room = answers[0]["roomId"].as_str().unwrap().to_string();
    assert!(
        answers.iter().all(|answer| answer["roomId"] == room),
        "{answers:?}"
    );

    // Token-less joins take only the seats nobody reserved.
    let mut anonymous = Vec::new();
    let mut refused = Vec::new();
    for index in 0..HARD_CAP {
        let mut player =
            Player::join_only(&node, &room, &format!("anon{index}"), PROTOCOL_V11, None).await;
        match seated_or_refused(&mut player).await {
            Ok(()) => anonymous.push(player),
            Err(codes) => refused.push(codes),
        }
    }
    assert_eq!(anonymous.len(), HARD_CAP - RESERVED, "refused: {refused:?}");
    assert!(
        refused
            .iter()
            .all(|codes| codes == &[ErrorCode::RoomFull as u16]),
        "{refused:?}"
    );

    // Every token holder still gets in, all at once.
    let mut joins = Vec::new();
    for (index, answer) in answers.into_iter().enumerate() {
        let addr = node.addr;
        joins.push(tokio::spawn(async move {
            let token = answer["joinToken"].as_str().unwrap().to_string();
            let room = answer["roomId"].as_str().unwrap().to_string();
            let url = format!("ws://{addr}/api/room/{room}");
            let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            let mut player = Player::from_socket(socket);
            player
                .send(support::join_frame(
                    PROTOCOL_V12,
                    &format!("holder{index}"),
                    Some(token.as_bytes()),
                ))
                .await;
            let outcome = seated_or_refused(&mut player).await;
            (outcome, player)
        }));
    }
    let mut holders = Vec::new();
    for join in joins {
        let (outcome, player) = join.await.unwrap();
        assert_eq!(outcome, Ok(()), "a token holder was refused");
        holders.push(player);
    }
    assert_eq!(node.humans().await, HARD_CAP as u64);
    // The room is full now, for token-less joins too.
    let mut late = Player::join_only(&node, &room, "late", PROTOCOL_V11, None).await;
    assert_eq!(
        seated_or_refused(&mut late).await,
        Err(vec![ErrorCode::RoomFull as u16])
    );
}
