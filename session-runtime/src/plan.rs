//! What a request's commit does, as a pure function of the session's state, whether the
//! handler changed any field, the timeouts, and the time: [`plan`]. Its table of cases is the
//! README's list of lifecycle guarantees, and each row is a unit test below.

use std::time::Duration;

use crate::backend::Plan;
use crate::clock::millis;
use crate::handle::{Intent, Origin, SessionState};
use crate::store::SessionMeta;

/// The layer's session timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// Expire a session unused this long (sliding).
    pub(crate) idle: Option<Duration>,
    /// Expire a session this long after it started, however much it is used.
    pub(crate) absolute: Option<Duration>,
}

/// The meta of a session created at `created_ms` and used at `now_ms`: the idle deadline
/// slides, the absolute one never moves, and the session expires at the earlier of the two.
pub(crate) fn deadlines(timeouts: &Timeouts, created_ms: u64, now_ms: u64) -> SessionMeta {
    let absolute_ms = timeouts
        .absolute
        .map(|timeout| created_ms.saturating_add(millis(timeout)));
    let idle_ms = timeouts
        .idle
        .map(|timeout| now_ms.saturating_add(millis(timeout)));
    let expires_ms = match (idle_ms, absolute_ms) {
        (Some(idle), Some(absolute)) => Some(idle.min(absolute)),
        (one, other) => one.or(other),
    };
    SessionMeta {
        created_ms,
        expires_ms,
        absolute_ms,
    }
}

/// Whether an unchanged session's deadline should be refreshed now: only when it would
/// move by at least a quarter of the idle timeout, so that a busy session costs one cheap
/// touch per quarter timeout rather than one per request.
fn needs_touch(timeouts: &Timeouts, stored: &SessionMeta, refreshed: &SessionMeta) -> bool {
    let (Some(idle), Some(old), Some(new)) =
        (timeouts.idle, stored.expires_ms, refreshed.expires_ms)
    else {
        return false;
    };
    new.saturating_sub(old) >= millis(idle) / 4
}

/// The store operations and token of one commit.
///
/// | origin | intent | fields changed | plan |
/// |---|---|---|---|
/// | any | destroy | any | delete the stored session (if any); forget the token (if the client sent one) |
/// | new | keep or renew | no | nothing: a session never written to is not stored |
/// | new | keep or renew | yes | create it |
/// | stored | renew | any | move it to a new id, with the changes |
/// | stored | keep | yes | save the changed fields, with the refreshed idle deadline |
/// | stored | keep | no | touch (deadline only) if it moved by a quarter of the idle timeout, or the token must be reissued; else nothing |
pub(crate) fn plan(state: &SessionState, changed: bool, timeouts: &Timeouts, now: u64) -> Plan {
    match (&state.origin, &state.intent) {
        (origin, Intent::Destroy) => Plan::Destroy {
            stored: matches!(origin, Origin::Stored { .. }).then(|| state.id.clone()),
            forget: !matches!(
                origin,
                Origin::New {
                    client_token: false
                }
            ),
        },
        (Origin::New { .. }, _) if !changed => Plan::Nothing,
        (Origin::New { .. }, intent) => Plan::Create {
            id: match intent {
                Intent::Renew { to: Some(to) } => to.clone(),
                _ => state.id.clone(),
            },
            meta: deadlines(timeouts, now, now),
        },
        (Origin::Stored { meta, reseal }, intent) => {
            let refreshed = deadlines(timeouts, meta.created_ms, now);
            let id = state.id.clone();
            match intent {
                Intent::Renew { to } => Plan::Renew {
                    from: id,
                    to: to.clone(),
                    meta: refreshed,
                },
                _ if changed => Plan::Save {
                    id,
                    meta: refreshed,
                },
                _ if *reseal || needs_touch(timeouts, meta, &refreshed) => Plan::Touch {
                    id,
                    meta: refreshed,
                },
                _ => Plan::Nothing,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::SessionId;

    const MIN: u64 = 60_000;
    const T0: u64 = 1_700_000_000_000;

    fn timeouts(idle_min: Option<u64>, absolute_min: Option<u64>) -> Timeouts {
        Timeouts {
            idle: idle_min.map(|m| Duration::from_millis(m * MIN)),
            absolute: absolute_min.map(|m| Duration::from_millis(m * MIN)),
        }
    }

    fn id(byte: u8) -> SessionId {
        SessionId::from_bytes([byte; 24])
    }

    fn new(client_token: bool, intent: Intent) -> SessionState {
        let mut state = SessionState::new(id(1), None, client_token);
        state.intent = intent;
        state
    }

    fn stored(meta: SessionMeta, reseal: bool, intent: Intent) -> SessionState {
        let mut state = SessionState::stored(id(1), meta, reseal);
        state.intent = intent;
        state
    }

    /// A session created at T0 under `t` and last refreshed at `used`.
    fn meta_at(t: &Timeouts, used: u64) -> SessionMeta {
        deadlines(t, T0, used)
    }

    #[test]
    fn deadlines_take_the_earlier_of_idle_and_absolute() {
        let t = timeouts(Some(30), Some(60));
        let early = deadlines(&t, T0, T0);
        assert_eq!(early.expires_ms, Some(T0 + 30 * MIN));
        assert_eq!(early.absolute_ms, Some(T0 + 60 * MIN));
        // Used at 50 minutes: idle would reach 80, absolute caps it at 60.
        let late = deadlines(&t, T0, T0 + 50 * MIN);
        assert_eq!(late.expires_ms, Some(T0 + 60 * MIN));
        assert_eq!(late.created_ms, T0);
    }

    #[test]
    fn deadlines_without_timeouts_never_expire() {
        let meta = deadlines(&timeouts(None, None), T0, T0);
        assert_eq!(meta.expires_ms, None);
        assert_eq!(meta.absolute_ms, None);
        assert!(!meta.is_expired(u64::MAX));
    }

    #[test]
    fn deadlines_saturate_instead_of_overflowing() {
        let t = Timeouts {
            idle: Some(Duration::MAX),
            absolute: Some(Duration::MAX),
        };
        assert_eq!(
            deadlines(&t, u64::MAX - 1, u64::MAX).expires_ms,
            Some(u64::MAX)
        );
    }

    #[test]
    fn the_absolute_deadline_never_moves_with_use() {
        let t = timeouts(Some(30), Some(60));
        for used in [T0, T0 + 10 * MIN, T0 + 59 * MIN, T0 + 600 * MIN] {
            assert_eq!(deadlines(&t, T0, used).absolute_ms, Some(T0 + 60 * MIN));
        }
    }

    #[test]
    fn untouched_new_session_is_not_stored() {
        let t = timeouts(Some(30), None);
        assert_eq!(
            plan(&new(false, Intent::Keep), false, &t, T0),
            Plan::Nothing
        );
        assert_eq!(plan(&new(true, Intent::Keep), false, &t, T0), Plan::Nothing);
        let renewed = Intent::Renew { to: Some(id(2)) };
        assert_eq!(plan(&new(false, renewed), false, &t, T0), Plan::Nothing);
    }

    #[test]
    fn changed_new_session_is_created_with_fresh_deadlines() {
        let t = timeouts(Some(30), Some(60));
        assert_eq!(
            plan(&new(true, Intent::Keep), true, &t, T0),
            Plan::Create {
                id: id(1),
                meta: deadlines(&t, T0, T0)
            }
        );
    }

    #[test]
    fn renewed_new_session_is_created_under_the_renewed_id() {
        let t = timeouts(Some(30), None);
        let state = new(false, Intent::Renew { to: Some(id(2)) });
        assert!(matches!(plan(&state, true, &t, T0), Plan::Create { id: to, .. } if to == id(2)));
    }

    #[test]
    fn unchanged_stored_session_writes_nothing_within_a_quarter_of_the_idle_timeout() {
        let t = timeouts(Some(40), None);
        let state = stored(meta_at(&t, T0), false, Intent::Keep);
        assert_eq!(plan(&state, false, &t, T0 + 9 * MIN), Plan::Nothing);
    }

    #[test]
    fn unchanged_stored_session_is_touched_after_a_quarter_of_the_idle_timeout() {
        let t = timeouts(Some(40), None);
        let state = stored(meta_at(&t, T0), false, Intent::Keep);
        let now = T0 + 10 * MIN;
        assert_eq!(
            plan(&state, false, &t, now),
            Plan::Touch {
                id: id(1),
                meta: deadlines(&t, T0, now)
            }
        );
    }

    #[test]
    fn unchanged_session_without_an_idle_timeout_is_never_touched() {
        let t = timeouts(None, Some(60));
        let state = stored(meta_at(&t, T0), false, Intent::Keep);
        assert_eq!(plan(&state, false, &t, T0 + 59 * MIN), Plan::Nothing);
    }

    #[test]
    fn a_token_that_must_be_reissued_is_touched_even_if_nothing_changed() {
        let t = timeouts(Some(40), None);
        let state = stored(meta_at(&t, T0), true, Intent::Keep);
        assert!(matches!(plan(&state, false, &t, T0), Plan::Touch { .. }));
    }

    #[test]
    fn changed_stored_session_saves_with_a_slid_idle_deadline_and_the_same_creation() {
        let t = timeouts(Some(30), Some(600));
        let state = stored(meta_at(&t, T0), false, Intent::Keep);
        let now = T0 + 5 * MIN;
        let Plan::Save { id: saved, meta } = plan(&state, true, &t, now) else {
            panic!("expected a save");
        };
        assert_eq!(saved, id(1));
        assert_eq!(meta.created_ms, T0);
        assert_eq!(meta.expires_ms, Some(now + 30 * MIN));
        assert_eq!(meta.absolute_ms, Some(T0 + 600 * MIN));
    }

    #[test]
    fn renewal_moves_a_stored_session_whether_or_not_it_changed() {
        let t = timeouts(Some(30), None);
        for changed in [false, true] {
            let state = stored(meta_at(&t, T0), false, Intent::Renew { to: Some(id(2)) });
            assert_eq!(
                plan(&state, changed, &t, T0),
                Plan::Renew {
                    from: id(1),
                    to: Some(id(2)),
                    meta: deadlines(&t, T0, T0)
                }
            );
        }
    }

    #[test]
    fn renewal_without_a_drawn_id_leaves_the_draw_to_the_commit() {
        let t = timeouts(Some(30), None);
        let state = stored(meta_at(&t, T0), false, Intent::Renew { to: None });
        assert!(matches!(
            plan(&state, false, &t, T0),
            Plan::Renew { to: None, .. }
        ));
    }

    #[test]
    fn destroying_a_stored_session_deletes_it_and_forgets_the_token() {
        let t = timeouts(Some(30), None);
        for changed in [false, true] {
            let state = stored(meta_at(&t, T0), false, Intent::Destroy);
            assert_eq!(
                plan(&state, changed, &t, T0),
                Plan::Destroy {
                    stored: Some(id(1)),
                    forget: true
                }
            );
        }
    }

    #[test]
    fn destroying_a_new_session_forgets_only_a_token_the_client_sent() {
        let t = timeouts(Some(30), None);
        assert_eq!(
            plan(&new(true, Intent::Destroy), true, &t, T0),
            Plan::Destroy {
                stored: None,
                forget: true
            }
        );
        assert_eq!(
            plan(&new(false, Intent::Destroy), true, &t, T0),
            Plan::Destroy {
                stored: None,
                forget: false
            }
        );
    }
}
