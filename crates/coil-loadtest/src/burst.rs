//! The matchmake-burst scenario: placements through `POST /api/matchmake` at an even rate.
//!
//! Open loop: arrival `i` is due at `i / rate` seconds whether or not earlier answers came back,
//! so a slow matchmaker shows up as latency and refusals, not as a politely lower rate. At most
//! `concurrency` placements are in flight; an arrival that finds them all busy is not sent and is
//! counted (`not_sent_generator_busy`), so a saturated generator is never mistaken for a fast
//! matchmaker. With `--join` every placed player also opens its room's WebSocket, joins with the
//! token, waits for the first frame and leaves: the seat is confirmed, then freed, so a long
//! burst does not fill the fleet.
//!
//! Must not send more than the planned placements, must not outlive [`run`], and never touches
//! anything but the matchmaker and the node URLs the matchmaker hands out.

use std::sync::Arc;
use std::time::Duration;

use coil_protocol::ErrorCode;
use coil_protocol::codec::server_frames;
use coil_protocol::envelope::{ServerEnvelope, decode_server_envelope};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::histogram::AtomicHistogram;
use crate::player::{JoinTicket, Joiner};
use crate::report::{JoinReport, Percentiles};
use crate::stats::{Counter, ReasonCounts};

/// Connect + first frame of a `--join`; a node that takes longer is reported as a timeout.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the run waits for answers still in flight after the last placement was sent.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The sender wakes this often and sends every arrival that fell due since.
const SEND_PERIOD: Duration = Duration::from_millis(1);

/// What a burst asks for (validated by `args`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurstPlan {
    pub placements: usize,
    pub over: Duration,
    pub join: bool,
    pub concurrency: usize,
    pub quiet: bool,
}

/// The figures of one burst.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BurstReport {
    pub placements_requested: usize,
    /// placements / ramp (`None` when everything was sent at once).
    pub offered_per_second: Option<f64>,
    pub concurrency: usize,
    pub sent: u64,
    /// Arrivals dropped because `concurrency` placements were already in flight.
    pub not_sent_generator_busy: u64,
    /// 200 answers with a room and a token.
    pub placed: u64,
    /// Everything else, by reason: "matchmake: HTTP 503", "matchmake: timeout", ...
    pub refused_by_reason: std::collections::BTreeMap<String, u64>,
    /// First request sent → last answer received.
    pub elapsed_seconds: f64,
    /// placed / elapsed_seconds: what the matchmaker sustained.
    pub placed_per_second: f64,
    /// Request → answer of the placed requests, milliseconds.
    pub placement_latency_ms: Percentiles,
    /// Request → answer of the refused ones.
    pub refusal_latency_ms: Percentiles,
    /// With --join: connect + join + first frame of every placed player; latency is end to
    /// end, from the matchmake request to the first frame.
    pub joins: Option<JoinReport>,
    /// CPU-seconds the generator used (it shares the machine: read it beside the figures).
    pub generator_cpu_seconds: Option<f64>,
}

#[derive(Default)]
struct Tally {
    sent: Counter,
    not_sent: Counter,
    placed: Counter,
    refused: ReasonCounts,
    placed_us: AtomicHistogram,
    refused_us: AtomicHistogram,
    joins_ok: Counter,
    join_failures: ReasonCounts,
    end_to_end_us: AtomicHistogram,
}

/// Runs the burst and returns its figures; every task it started has ended when it returns.
pub async fn run(joiner: Arc<Joiner>, plan: BurstPlan) -> BurstReport {
    let tally = Arc::new(Tally::default());
    let cpu_before = crate::procstat::cpu_seconds(std::process::id());
    let permits = Arc::new(Semaphore::new(plan.concurrency));
    let mut tasks = JoinSet::new();
    let progress = (!plan.quiet).then(|| tokio::spawn(progress(tally.clone(), plan.placements)));
    let started = Instant::now();
    let rate = (!plan.over.is_zero()).then(|| plan.placements as f64 / plan.over.as_secs_f64());
    let mut sent = 0usize;
    let mut ticker = tokio::time::interval(SEND_PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while sent < plan.placements {
        let due = match rate {
            Some(rate) => {
                ((started.elapsed().as_secs_f64() * rate) as usize + 1).min(plan.placements)
            }
            None => plan.placements,
        };
        while sent < due {
            match permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    tally.sent.increment();
                    let (joiner, tally) = (joiner.clone(), tally.clone());
                    let join = plan.join;
                    tasks.spawn(async move {
                        place_one(&joiner, &tally, sent, join).await;
                        drop(permit);
                    });
                }
                Err(_) => tally.not_sent.increment(),
            }
            sent += 1;
        }
        // Reap finished tasks as we go so the set stays as small as what is in flight.
        while tasks.try_join_next().is_some() {}
        if sent < plan.placements {
            ticker.tick().await;
        }
    }
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(progress) = progress {
        progress.abort();
    }
    let cpu_after = crate::procstat::cpu_seconds(std::process::id());
    let placed = tally.placed.get();
    let joins = plan.join.then(|| {
        let succeeded = tally.joins_ok.get();
        let failures = tally.join_failures.snapshot();
        let failed: u64 = failures.values().sum();
        JoinReport {
            attempts: succeeded + failed,
            succeeded,
            failed,
            success_rate: (succeeded + failed > 0)
                .then(|| succeeded as f64 / (succeeded + failed) as f64),
            failures_by_reason: failures,
            latency_ms: Percentiles::millis_from_micros(&tally.end_to_end_us.take()),
            replacements: 0,
        }
    });
    BurstReport {
        placements_requested: plan.placements,
        offered_per_second: rate,
        concurrency: plan.concurrency,
        sent: tally.sent.get(),
        not_sent_generator_busy: tally.not_sent.get(),
        placed,
        refused_by_reason: tally.refused.snapshot(),
        elapsed_seconds: elapsed,
        placed_per_second: if elapsed > 0.0 {
            placed as f64 / elapsed
        } else {
            0.0
        },
        placement_latency_ms: Percentiles::millis_from_micros(&tally.placed_us.take()),
        refusal_latency_ms: Percentiles::millis_from_micros(&tally.refused_us.take()),
        joins,
        generator_cpu_seconds: cpu_before
            .zip(cpu_after)
            .map(|(before, after)| after - before),
    }
}

async fn place_one(joiner: &Joiner, tally: &Tally, index: usize, join: bool) {
    let name = format!("b{index}");
    let asked = Instant::now();
    let ticket = joiner.ticket("burst", &name, 0).await;
    let answered_us = asked.elapsed().as_micros() as u64;
    let ticket = match ticket {
        Ok(ticket) => {
            tally.placed.increment();
            tally.placed_us.record(answered_us);
            ticket
        }
        Err(reason) => {
            tally.refused.add(&reason);
            tally.refused_us.record(answered_us);
            return;
        }
    };
    if !join {
        return;
    }
    match tokio::time::timeout(JOIN_TIMEOUT, join_and_leave(&ticket)).await {
        Ok(Ok(())) => {
            tally.joins_ok.increment();
            tally
                .end_to_end_us
                .record(asked.elapsed().as_micros() as u64);
        }
        Ok(Err(reason)) => tally.join_failures.add(&reason),
        Err(_) => tally.join_failures.add("join: timeout"),
    }
}

/// Connects, sends the join, reads the first message (an error frame is a refusal), closes.
async fn join_and_leave(ticket: &JoinTicket) -> Result<(), String> {
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .max_message_size(Some(1 << 20));
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(ticket.ws_url.as_str(), Some(config), true)
            .await
            .map_err(|error| crate::player::connect_failure(&error))?;
    socket
        .send(Message::Binary(ticket.join_frame.clone().into()))
        .await
        .map_err(|_| "closed before first frame".to_string())?;
    let outcome = loop {
        match socket.next().await {
            Some(Ok(Message::Binary(bytes))) => break refusal(&bytes).map_or(Ok(()), Err),
            Some(Ok(Message::Close(_))) | None => break Err("closed before first frame".into()),
            Some(Ok(_)) => continue,
            Some(Err(_)) => break Err("read error before first frame".into()),
        }
    };
    let _ = socket.close(None).await;
    outcome
}

/// The error frame in a server message, as a report reason.
fn refusal(message: &[u8]) -> Option<String> {
    for frame in server_frames(message) {
        let Ok((frame_type, payload)) = frame else {
            return Some("malformed first message".into());
        };
        if let Ok(Some(ServerEnvelope::Error { code, .. })) =
            decode_server_envelope(frame_type, payload)
        {
            return Some(match ErrorCode::from_u16(code) {
                Some(known) => format!("error {code} {known:?}"),
                None => format!("error {code}"),
            });
        }
    }
    None
}

async fn progress(tally: Arc<Tally>, planned: usize) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    loop {
        ticker.tick().await;
        eprintln!(
            "matchmake-burst: sent {}/{planned}, placed {}, refused {}, joined {}",
            tally.sent.get(),
            tally.placed.get(),
            tally.refused.snapshot().values().sum::<u64>(),
            tally.joins_ok.get()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_frame_is_a_refusal_and_state_is_not() {
        let mut message = Vec::new();
        let mut writer = coil_protocol::codec::Writer::new(&mut message);
        coil_protocol::envelope::write_error(&mut writer, ErrorCode::RoomFull, "room is full");
        assert_eq!(refusal(&message).as_deref(), Some("error 10 RoomFull"));
        assert_eq!(refusal(&[0x90, 0x00]), None);
        assert_eq!(refusal(&[0x82]).as_deref(), Some("malformed first message"));
    }
}
