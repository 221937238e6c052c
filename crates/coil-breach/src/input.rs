//! Inputs are intents: where a player wants to go, how fast, where it aims, and which
//! buttons it holds. The simulation decides everything else.
//!
//! [`InputGate`] is the validation at the boundary between untrusted frames and the
//! simulation, one per seat: sequence numbers must rise by at least one and by at most
//! [`MAX_SEQUENCE_JUMP`]; at most [`MAX_PENDING_INPUTS`] intents wait for the next ticks (one
//! is applied per tick, so sending faster moves no faster); between inputs the last intent is
//! held (movement and fire continue, the one-shot buttons reload and use do not repeat).

use crate::math::Angle;
use crate::player::Speed;
use std::collections::VecDeque;

/// The largest step between consecutive sequence numbers (two seconds of inputs at 30 Hz):
/// a legitimate client sends one input per tick over a reliable transport, so a larger jump
/// is a forged or broken client.
pub const MAX_SEQUENCE_JUMP: u32 = 60;
/// Intents that may wait for a tick. A client sends one per tick; network jitter can bunch
/// a few together. Overflow policy: the new input is refused (and counted), the queue kept.
pub const MAX_PENDING_INPUTS: usize = 4;

/// One client intent, decoded and range-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intent {
    pub sequence: u32,
    /// 0 = stand still, 1..=8 = +x then clockwise on screen in 45° steps.
    pub direction: u8,
    pub speed: Speed,
    pub facing: Angle,
    pub fire: bool,
    pub reload: bool,
    pub use_charge: bool,
}

impl Intent {
    pub fn idle(facing: Angle) -> Intent {
        Intent {
            sequence: 0,
            direction: 0,
            speed: Speed::Walk,
            facing,
            fire: false,
            reload: false,
            use_charge: false,
        }
    }
}

/// Why an input was refused before it reached the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceRefusal {
    /// The sequence number did not increase.
    Stale,
    /// The sequence number rose by more than [`MAX_SEQUENCE_JUMP`].
    Jump,
    /// More than [`MAX_PENDING_INPUTS`] intents are waiting.
    Flood,
}

/// A seat's input validation state and queue.
#[derive(Debug, Clone)]
pub struct InputGate {
    last_accepted: u32,
    last_applied: u32,
    pending: VecDeque<Intent>,
    held: Intent,
}

impl InputGate {
    pub fn new(facing: Angle) -> InputGate {
        InputGate {
            last_accepted: 0,
            last_applied: 0,
            pending: VecDeque::with_capacity(MAX_PENDING_INPUTS),
            held: Intent::idle(facing),
        }
    }

    /// Accepts or refuses a decoded intent.
    pub fn offer(&mut self, intent: Intent) -> Result<(), SequenceRefusal> {
        if intent.sequence <= self.last_accepted {
            return Err(SequenceRefusal::Stale);
        }
        if intent.sequence - self.last_accepted > MAX_SEQUENCE_JUMP {
            return Err(SequenceRefusal::Jump);
        }
        if self.pending.len() >= MAX_PENDING_INPUTS {
            return Err(SequenceRefusal::Flood);
        }
        self.last_accepted = intent.sequence;
        self.pending.push_back(intent);
        Ok(())
    }

    /// The intent for this tick: the next queued one, or the held one without its one-shot
    /// buttons.
    pub fn next_for_tick(&mut self) -> Intent {
        match self.pending.pop_front() {
            Some(intent) => {
                self.last_applied = intent.sequence;
                self.held = intent;
                intent
            }
            None => Intent {
                reload: false,
                use_charge: false,
                ..self.held
            },
        }
    }

    /// The sequence number of the last intent the simulation applied (acknowledged to the
    /// client so it can drop the inputs it no longer needs to replay).
    pub fn last_applied(&self) -> u32 {
        self.last_applied
    }

    /// Drops queued intents and the held movement (death, phase change), keeping sequence
    /// numbers so the client's counter stays valid.
    pub fn halt(&mut self, facing: Angle) {
        while let Some(intent) = self.pending.pop_front() {
            self.last_applied = intent.sequence;
        }
        self.held = Intent::idle(facing);
    }

    pub(crate) fn hash_into(&self, hasher: &mut crate::rng::StateHasher) {
        hasher.add(u64::from(self.last_accepted) << 32 | u64::from(self.last_applied));
        hasher.add(self.pending.len() as u64);
        for intent in self.pending.iter().chain(std::iter::once(&self.held)) {
            hasher.add(
                u64::from(intent.sequence)
                    | u64::from(intent.direction) << 32
                    | (intent.speed as u64) << 40
                    | u64::from(intent.facing.0) << 44
                    | u64::from(intent.fire) << 60
                    | u64::from(intent.reload) << 61
                    | u64::from(intent.use_charge) << 62,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(sequence: u32) -> Intent {
        Intent {
            sequence,
            direction: 1,
            reload: true,
            ..Intent::idle(Angle(0))
        }
    }

    #[test]
    fn sequences_must_rise_within_the_bound() {
        let mut gate = InputGate::new(Angle(0));
        assert_eq!(gate.offer(intent(0)), Err(SequenceRefusal::Stale));
        assert_eq!(gate.offer(intent(1)), Ok(()));
        assert_eq!(gate.offer(intent(1)), Err(SequenceRefusal::Stale));
        assert_eq!(
            gate.offer(intent(2 + MAX_SEQUENCE_JUMP)),
            Err(SequenceRefusal::Jump)
        );
        assert_eq!(gate.offer(intent(1 + MAX_SEQUENCE_JUMP)), Ok(()));
    }

    #[test]
    fn one_intent_per_tick_and_floods_are_refused() {
        let mut gate = InputGate::new(Angle(0));
        for sequence in 1..=MAX_PENDING_INPUTS as u32 {
            gate.offer(intent(sequence)).unwrap();
        }
        assert_eq!(
            gate.offer(intent(MAX_PENDING_INPUTS as u32 + 1)),
            Err(SequenceRefusal::Flood)
        );
        assert_eq!(gate.next_for_tick().sequence, 1);
        assert_eq!(gate.last_applied(), 1);
        for _ in 1..MAX_PENDING_INPUTS {
            gate.next_for_tick();
        }
        // Queue empty: the last intent is held without its one-shot buttons.
        let held = gate.next_for_tick();
        assert_eq!(held.direction, 1);
        assert!(!held.reload);
        assert_eq!(gate.last_applied(), MAX_PENDING_INPUTS as u32);
        gate.halt(Angle(5));
        assert_eq!(gate.next_for_tick().direction, 0);
    }
}
