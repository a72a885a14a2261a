//! The answer a joint-punishment check gives for one domain.
//!
//! `RESTRICTED` when any measure in force for the domain prohibits, else `REVIEW` when
//! one is an important factor for the partner's own review, else `CLEAR`. Supervision
//! measures are the registry's own business and never change a partner's answer.

use super::measures::Effect;
use serde::{Deserialize, Serialize};

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[graphql(
    rename_items = "SCREAMING_SNAKE_CASE",
    remote = "entity::check_record::Decision"
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Decision {
    /// Nothing in force restricts the operator in this domain.
    Clear,
    /// A measure in force is an important factor for the partner's own review.
    Review,
    /// A measure in force bars the operator from the procedure.
    Restricted,
}

/// What one measure in force contributes to the answer.
pub fn effect_decision(effect: Effect) -> Decision {
    match effect {
        Effect::Prohibit => Decision::Restricted,
        Effect::Consider => Decision::Review,
        Effect::Supervise => Decision::Clear,
    }
}

/// Whether a measure with this effect bears on a partner's answer, and so is a *hit*
/// of a check: prohibitions and review factors do, supervision measures never do.
/// A CLEAR answer therefore has no hits, in the answer and in its receipt.
pub fn bears_on_answer(effect: Effect) -> bool {
    effect_decision(effect) != Decision::Clear
}

/// The answer for the effects of every measure in force for the checked domain: the
/// strictest one wins; no measures at all is `CLEAR`.
pub fn decide(effects: impl IntoIterator<Item = Effect>) -> Decision {
    effects
        .into_iter()
        .map(effect_decision)
        .max()
        .unwrap_or(Decision::Clear)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Effect::*;

    #[test]
    fn nothing_in_force_is_clear() {
        assert_eq!(decide([]), Decision::Clear);
    }

    #[test]
    fn each_effect_on_its_own() {
        assert_eq!(decide([Prohibit]), Decision::Restricted);
        assert_eq!(decide([Consider]), Decision::Review);
        assert_eq!(decide([Supervise]), Decision::Clear);
    }

    #[test]
    fn prohibit_beats_consider_in_any_order() {
        assert_eq!(decide([Consider, Prohibit]), Decision::Restricted);
        assert_eq!(decide([Prohibit, Consider]), Decision::Restricted);
        assert_eq!(decide([Supervise, Consider, Supervise]), Decision::Review);
    }

    #[test]
    fn supervision_never_changes_the_answer() {
        for base in [vec![], vec![Consider], vec![Prohibit]] {
            let mut with = base.clone();
            with.push(Supervise);
            with.insert(0, Supervise);
            assert_eq!(decide(base), decide(with));
        }
    }

    #[test]
    fn only_measures_that_change_the_answer_are_hits() {
        assert!(bears_on_answer(Prohibit));
        assert!(bears_on_answer(Consider));
        assert!(!bears_on_answer(Supervise));
        // Whatever the hits, the answer is what they decide: none means CLEAR.
        let effects = [Supervise, Consider];
        let hits: Vec<Effect> = effects
            .into_iter()
            .filter(|e| bears_on_answer(*e))
            .collect();
        assert_eq!(decide(hits), decide(effects));
    }
}
