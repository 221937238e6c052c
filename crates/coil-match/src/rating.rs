//! Ratings: each account's skill estimate, its update after a match, and what players are shown.
//!
//! Owns the rating model of ranked play: a [`Rating`] is a Bayesian belief about an account's
//! skill, a mean and an uncertainty (σ), updated by [`update_match`] from the result of a match
//! between two teams. The arithmetic is the Weng-Lin model of the `skillratings` crate
//! (`skillratings::weng_lin`), the system the OpenSkill libraries implement.
//!
//! Why Weng-Lin and not Glicko-2: Glicko-2 rates one player against one opponent, and a team
//! game forced through it has to invent a composite opponent per player. Weng-Lin ("A Bayesian
//! Approximation Method for Online Ranking", Weng and Lin, JMLR 12, 2011) is built for matches
//! of teams with several players each, of equal or different sizes, keeps a per-player
//! uncertainty like TrueSkill does, and updates in closed form (no iteration, no factor graph),
//! which makes a 4v4 update a few hundred nanoseconds. TrueSkill would also fit but is patented
//! for commercial use and slower; Elo keeps no uncertainty, so it cannot tell a new account from
//! a settled one.
//!
//! The rules this module states and its tests check:
//! - [`update_match`] is symmetric: listing the teams the other way round with the mirrored
//!   outcome gives the mirrored answer. A team's total change of mean is `Σσ²(team) / c ×
//!   (score − expected)`, so the winners' total gain divided by their Σσ² equals the losers'
//!   total loss divided by theirs; for two teams of equal Σσ² (equal sizes and equal
//!   uncertainties) the total change of mean is zero. A draw between equal teams moves no mean.
//! - The number the matcher compares is the mean ([`Rating::matchmaking_skill`]): the best
//!   estimate of how strong a player is. The conservative value (mean − k·σ) is for display and
//!   leaderboards: matching on it would treat every new account as weak and hand its first
//!   matches to the weakest players, whom a strong newcomer would then beat (the smurf problem).
//! - What a player is shown is [`RatingSettings::displayed`]: nothing until the account has
//!   played `calibration_matches` matches, then the conservative value, which only rises as the
//!   system grows surer of the player.
//!
//! Must not: read a clock, touch storage or decide who plays whom (the queue does that); panic
//! on bad input (a non-finite rating or an empty team is a [`RatingError`]).

use serde::{Deserialize, Serialize};
use skillratings::Outcomes;
use skillratings::weng_lin::{WengLinConfig, WengLinRating, weng_lin_two_teams};

/// One account's skill belief: the mean and its uncertainty σ, in Weng-Lin's units (a new
/// account is 25 ± 25/3; β, the gap for a ~2:1 chance of winning, is 25/6 by default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rating {
    pub mean: f64,
    pub uncertainty: f64,
}

impl Rating {
    /// Where every new account starts: mean 25, σ 25/3 (the model's own defaults).
    pub const NEW_ACCOUNT: Rating = Rating {
        mean: 25.0,
        uncertainty: 25.0 / 3.0,
    };

    /// The number the ranked queue compares: the mean (see the module doc for why not the
    /// conservative value).
    pub fn matchmaking_skill(&self) -> f64 {
        self.mean
    }

    /// A finite mean and a finite, non-negative uncertainty.
    pub fn is_valid(&self) -> bool {
        self.mean.is_finite() && self.uncertainty.is_finite() && self.uncertainty >= 0.0
    }
}

impl Default for Rating {
    fn default() -> Rating {
        Rating::NEW_ACCOUNT
    }
}

/// The outcome of a two-team match, from the order in which the teams were listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MatchOutcome {
    FirstTeamWon,
    SecondTeamWon,
    Draw,
}

impl MatchOutcome {
    /// The same result with the teams listed the other way round.
    pub fn mirrored(self) -> MatchOutcome {
        match self {
            MatchOutcome::FirstTeamWon => MatchOutcome::SecondTeamWon,
            MatchOutcome::SecondTeamWon => MatchOutcome::FirstTeamWon,
            MatchOutcome::Draw => MatchOutcome::Draw,
        }
    }

    fn for_first_team(self) -> Outcomes {
        match self {
            MatchOutcome::FirstTeamWon => Outcomes::WIN,
            MatchOutcome::SecondTeamWon => Outcomes::LOSS,
            MatchOutcome::Draw => Outcomes::DRAW,
        }
    }
}

/// Tunables of the rating model and of what players see.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RatingSettings {
    /// Weng-Lin's β: the mean difference that gives the stronger side about a 2:1 chance.
    /// Raise it for games with more luck, lower it for games of pure skill.
    pub beta: f64,
    /// Added in quadrature to every σ before an update (OpenSkill's τ), so an uncertainty never
    /// settles at zero and a player who improves can still move.
    pub dynamics: f64,
    /// The least σ² factor an update can leave (Weng-Lin's κ), which keeps σ positive.
    pub uncertainty_tolerance: f64,
    /// Matches an account plays before it is shown a rating.
    pub calibration_matches: u32,
    /// The k of the displayed value mean − k·σ (3: the player is better than that with ~99%).
    pub display_sigmas: f64,
}

impl Default for RatingSettings {
    fn default() -> RatingSettings {
        RatingSettings {
            beta: 25.0 / 6.0,
            dynamics: 25.0 / 300.0,
            uncertainty_tolerance: 0.000_1,
            calibration_matches: 10,
            display_sigmas: 3.0,
        }
    }
}

/// What a player is shown of its own rating.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum DisplayedRating {
    /// Still calibrating: no number yet.
    Calibrating { matches_left: u32 },
    /// The conservative value, mean − k·σ.
    Rated { value: f64 },
}

impl RatingSettings {
    /// mean − k·σ: a value the player is very probably above.
    pub fn conservative(&self, rating: Rating) -> f64 {
        rating.mean - self.display_sigmas * rating.uncertainty
    }

    /// Whether an account that has played `matches_played` ranked matches is calibrated.
    pub fn is_calibrated(&self, matches_played: u32) -> bool {
        matches_played >= self.calibration_matches
    }

    /// What the account is shown: nothing until calibrated, then the conservative value.
    pub fn displayed(&self, rating: Rating, matches_played: u32) -> DisplayedRating {
        if self.is_calibrated(matches_played) {
            DisplayedRating::Rated {
                value: self.conservative(rating),
            }
        } else {
            DisplayedRating::Calibrating {
                matches_left: self.calibration_matches - matches_played,
            }
        }
    }

    fn is_valid(&self) -> bool {
        self.beta.is_finite()
            && self.beta > 0.0
            && self.dynamics.is_finite()
            && self.dynamics >= 0.0
            && self.uncertainty_tolerance.is_finite()
            && self.uncertainty_tolerance > 0.0
            && self.display_sigmas.is_finite()
    }
}

/// Why a match could not be rated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    #[error("a rated match has exactly two teams, got {teams}")]
    TeamCount { teams: usize },
    #[error("team {team} has no players")]
    EmptyTeam { team: usize },
    #[error(
        "team {team}, player {player}: the rating is not finite or its uncertainty is negative"
    )]
    InvalidRating { team: usize, player: usize },
    #[error("the rating settings are out of range (beta and tolerance > 0, dynamics >= 0)")]
    InvalidSettings,
}

/// New ratings for every player of a two-team match, in the order given.
///
/// Each σ first grows by `settings.dynamics` (in quadrature), then Weng-Lin's two-team update
/// moves every player's mean by its share (σ²/Σσ² of its team) of the team's surprise, and
/// shrinks its σ. Teams may differ in size. Symmetric in the sense of the module doc.
pub fn update_match(
    teams: &[Vec<Rating>],
    outcome: MatchOutcome,
    settings: &RatingSettings,
) -> Result<Vec<Vec<Rating>>, RatingError> {
    if teams.len() != 2 {
        return Err(RatingError::TeamCount { teams: teams.len() });
    }
    if !settings.is_valid() {
        return Err(RatingError::InvalidSettings);
    }
    let mut prepared: [Vec<WengLinRating>; 2] = [Vec::new(), Vec::new()];
    for (team, players) in teams.iter().enumerate() {
        if players.is_empty() {
            return Err(RatingError::EmptyTeam { team });
        }
        for (player, rating) in players.iter().enumerate() {
            if !rating.is_valid() {
                return Err(RatingError::InvalidRating { team, player });
            }
            prepared[team].push(WengLinRating {
                rating: rating.mean,
                uncertainty: rating.uncertainty.hypot(settings.dynamics),
            });
        }
    }
    let config = WengLinConfig {
        beta: settings.beta,
        uncertainty_tolerance: settings.uncertainty_tolerance,
    };
    let (first, second) = weng_lin_two_teams(
        &prepared[0],
        &prepared[1],
        &outcome.for_first_team(),
        &config,
    );
    let back = |team: Vec<WengLinRating>| {
        team.into_iter()
            .map(|rating| Rating {
                mean: rating.rating,
                uncertainty: rating.uncertainty,
            })
            .collect()
    };
    Ok(vec![back(first), back(second)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn team(ratings: &[(f64, f64)]) -> Vec<Rating> {
        ratings
            .iter()
            .map(|&(mean, uncertainty)| Rating { mean, uncertainty })
            .collect()
    }

    fn total_mean(team: &[Rating]) -> f64 {
        team.iter().map(|rating| rating.mean).sum()
    }

    fn sum_of_variances(team: &[Rating], settings: &RatingSettings) -> f64 {
        team.iter()
            .map(|rating| rating.uncertainty.powi(2) + settings.dynamics.powi(2))
            .sum()
    }

    #[test]
    fn winners_gain_losers_lose_and_everyone_grows_surer() {
        let settings = RatingSettings::default();
        let teams = vec![vec![Rating::NEW_ACCOUNT; 4], vec![Rating::NEW_ACCOUNT; 4]];
        let after = update_match(&teams, MatchOutcome::FirstTeamWon, &settings).unwrap();
        for rating in &after[0] {
            assert!(rating.mean > 25.0, "{rating:?}");
            assert!(rating.uncertainty < 25.0 / 3.0, "{rating:?}");
        }
        for rating in &after[1] {
            assert!(rating.mean < 25.0, "{rating:?}");
            assert!(rating.uncertainty < 25.0 / 3.0, "{rating:?}");
        }
    }

    #[test]
    fn an_upset_moves_ratings_more_than_the_expected_result() {
        let settings = RatingSettings::default();
        let strong = team(&[(35.0, 3.0); 4]);
        let weak = team(&[(20.0, 3.0); 4]);
        let teams = vec![strong, weak];
        let expected = update_match(&teams, MatchOutcome::FirstTeamWon, &settings).unwrap();
        let upset = update_match(&teams, MatchOutcome::SecondTeamWon, &settings).unwrap();
        let gain_expected = expected[0][0].mean - 35.0;
        let loss_upset = 35.0 - upset[0][0].mean;
        assert!(gain_expected > 0.0 && loss_upset > 0.0);
        assert!(
            loss_upset > 3.0 * gain_expected,
            "{gain_expected} {loss_upset}"
        );
    }

    #[test]
    fn a_draw_between_equal_teams_moves_no_mean() {
        let settings = RatingSettings::default();
        let teams = vec![
            team(&[(30.0, 4.0), (20.0, 2.0)]),
            team(&[(25.0, 4.0), (25.0, 2.0)]),
        ];
        let after = update_match(&teams, MatchOutcome::Draw, &settings).unwrap();
        for (before, after) in teams.iter().flatten().zip(after.iter().flatten()) {
            assert!(
                (before.mean - after.mean).abs() < 1e-12,
                "{before:?} {after:?}"
            );
            assert!(after.uncertainty < before.uncertainty.hypot(settings.dynamics));
        }
    }

    #[test]
    fn a_player_who_is_less_certain_moves_more() {
        let settings = RatingSettings::default();
        let teams = vec![
            team(&[(25.0, 8.0), (25.0, 1.0)]),
            team(&[(25.0, 4.0), (25.0, 4.0)]),
        ];
        let after = update_match(&teams, MatchOutcome::FirstTeamWon, &settings).unwrap();
        assert!(after[0][0].mean - 25.0 > 10.0 * (after[0][1].mean - 25.0));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let settings = RatingSettings::default();
        let good = vec![Rating::NEW_ACCOUNT; 2];
        assert_eq!(
            update_match(std::slice::from_ref(&good), MatchOutcome::Draw, &settings),
            Err(RatingError::TeamCount { teams: 1 })
        );
        assert_eq!(
            update_match(
                &[good.clone(), good.clone(), good.clone()],
                MatchOutcome::Draw,
                &settings
            ),
            Err(RatingError::TeamCount { teams: 3 })
        );
        assert_eq!(
            update_match(&[good.clone(), vec![]], MatchOutcome::Draw, &settings),
            Err(RatingError::EmptyTeam { team: 1 })
        );
        for bad in [
            Rating {
                mean: f64::NAN,
                uncertainty: 1.0,
            },
            Rating {
                mean: 25.0,
                uncertainty: -1.0,
            },
            Rating {
                mean: f64::INFINITY,
                uncertainty: 1.0,
            },
        ] {
            assert_eq!(
                update_match(
                    &[good.clone(), vec![Rating::NEW_ACCOUNT, bad]],
                    MatchOutcome::Draw,
                    &settings
                ),
                Err(RatingError::InvalidRating { team: 1, player: 1 })
            );
        }
        let broken = RatingSettings {
            beta: 0.0,
            ..settings
        };
        assert_eq!(
            update_match(&[good.clone(), good], MatchOutcome::Draw, &broken),
            Err(RatingError::InvalidSettings)
        );
    }

    #[test]
    fn the_display_waits_for_calibration_then_shows_the_conservative_value() {
        let settings = RatingSettings::default();
        let rating = Rating {
            mean: 30.0,
            uncertainty: 2.0,
        };
        assert_eq!(
            settings.displayed(rating, 0),
            DisplayedRating::Calibrating { matches_left: 10 }
        );
        assert_eq!(
            settings.displayed(rating, 9),
            DisplayedRating::Calibrating { matches_left: 1 }
        );
        assert!(!settings.is_calibrated(9));
        assert!(settings.is_calibrated(10));
        assert_eq!(
            settings.displayed(rating, 10),
            DisplayedRating::Rated { value: 24.0 }
        );
        assert_eq!(settings.conservative(Rating::NEW_ACCOUNT), 0.0);
        let quick = RatingSettings {
            calibration_matches: 3,
            ..settings
        };
        assert!(quick.is_calibrated(3));
        assert_eq!(Rating::default().matchmaking_skill(), 25.0);
    }

    fn rating() -> impl Strategy<Value = Rating> {
        (0.0..50.0f64, 0.5..9.0f64).prop_map(|(mean, uncertainty)| Rating { mean, uncertainty })
    }

    fn outcome() -> impl Strategy<Value = MatchOutcome> {
        prop_oneof![
            Just(MatchOutcome::FirstTeamWon),
            Just(MatchOutcome::SecondTeamWon),
            Just(MatchOutcome::Draw),
        ]
    }

    proptest! {
        #[test]
        fn swapping_the_teams_mirrors_the_result(
            first in prop::collection::vec(rating(), 1..6),
            second in prop::collection::vec(rating(), 1..6),
            outcome in outcome(),
        ) {
            let settings = RatingSettings::default();
            let forward =
                update_match(&[first.clone(), second.clone()], outcome, &settings).unwrap();
            let backward = update_match(&[second, first], outcome.mirrored(), &settings).unwrap();
            // Equal up to rounding (the sums run in another order).
            let close = |a: &[Rating], b: &[Rating]| {
                a.len() == b.len()
                    && a.iter().zip(b).all(|(a, b)| {
                        (a.mean - b.mean).abs() < 1e-9 && (a.uncertainty - b.uncertainty).abs() < 1e-9
                    })
            };
            prop_assert!(close(&forward[0], &backward[1]), "{:?} {:?}", forward, backward);
            prop_assert!(close(&forward[1], &backward[0]), "{:?} {:?}", forward, backward);
        }

        #[test]
        fn team_changes_balance_in_proportion_to_their_uncertainty(
            first in prop::collection::vec(rating(), 1..6),
            second in prop::collection::vec(rating(), 1..6),
            outcome in outcome(),
        ) {
            let settings = RatingSettings::default();
            let after =
                update_match(&[first.clone(), second.clone()], outcome, &settings).unwrap();
            let gain_first = (total_mean(&after[0]) - total_mean(&first))
                / sum_of_variances(&first, &settings);
            let gain_second = (total_mean(&after[1]) - total_mean(&second))
                / sum_of_variances(&second, &settings);
            prop_assert!((gain_first + gain_second).abs() < 1e-9, "{} {}", gain_first, gain_second);
            let winner_gained = match outcome {
                MatchOutcome::FirstTeamWon => gain_first > 0.0,
                MatchOutcome::SecondTeamWon => gain_second > 0.0,
                MatchOutcome::Draw => true,
            };
            prop_assert!(winner_gained);
        }

        #[test]
        fn equal_uncertainty_teams_of_one_size_exchange_rating_at_zero_sum(
            means in prop::collection::vec(0.0..50.0f64, 8),
            uncertainty in 0.5..9.0f64,
            outcome in outcome(),
        ) {
            let settings = RatingSettings::default();
            let players: Vec<Rating> =
                means.iter().map(|&mean| Rating { mean, uncertainty }).collect();
            let teams = vec![players[..4].to_vec(), players[4..].to_vec()];
            let after = update_match(&teams, outcome, &settings).unwrap();
            let change: f64 = after.iter().flatten().map(|rating| rating.mean).sum::<f64>()
                - means.iter().sum::<f64>();
            prop_assert!(change.abs() < 1e-9, "total change {}", change);
        }
    }
}
