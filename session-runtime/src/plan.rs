//! What a request's commit does, as a pure function of the session's state, whether the
//! handler changed any field, the timeouts, and the time: [`plan`]. Its table of cases is the
//! README's list of lifecycle guarantees, and each row is a unit test below.

use std::time::Duration;

use crate::backend::Plan;
use crate::clock::millis;
use crate::handle::{ClientToken, Intent, Origin, SessionState};
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

/// When a stored session expires under the *current* timeouts, or `None` if it already has:
/// a session whose creation plus the current absolute timeout has passed is expired whatever
/// deadline it was stored with, and an idle deadline further away than the current idle
/// timeout allows (or none, once an idle timeout is configured) is cut to now plus the idle
/// timeout. Tightening a timeout thus applies to sessions that already exist; the commit
/// then writes the tightened deadline (see [`needs_touch`]).
pub(crate) fn tightened(
    timeouts: &Timeouts,
    stored: &SessionMeta,
    now_ms: u64,
) -> Option<Option<u64>> {
    if stored.is_expired(now_ms) {
        return None;
    }
    let current = deadlines(timeouts, stored.created_ms, now_ms);
    if current
        .absolute_ms
        .is_some_and(|absolute| absolute <= now_ms)
    {
        return None;
    }
    Some(earliest(stored.expires_ms, current.expires_ms))
}

/// The earlier of two deadlines, `None` being "never".
pub(crate) fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (one, other) => one.or(other),
    }
}

/// Whether an unchanged session's deadlines should be written now:
///
/// - the absolute deadline differs from what the current timeout gives (it was changed);
/// - without an idle timeout, whenever the deadline differs from the current one (once,
///   after a configuration change: nothing slides);
/// - with one, when the deadline would move by at least a quarter of it: later (sliding,
///   so a busy session costs one cheap touch per quarter timeout rather than one per
///   request) or earlier (a tightened idle timeout; differences below a quarter, such as
///   clock skew between instances, wait for the next slide instead of making every
///   request write);
/// - a session stored without a deadline gets one once an idle timeout is configured.
fn needs_touch(timeouts: &Timeouts, stored: &SessionMeta, refreshed: &SessionMeta) -> bool {
    if refreshed.absolute_ms != stored.absolute_ms {
        return true;
    }
    let Some(idle) = timeouts.idle.map(millis) else {
        return refreshed.expires_ms != stored.expires_ms;
    };
    match (stored.expires_ms, refreshed.expires_ms) {
        (Some(old), Some(new)) => new.abs_diff(old) >= idle / 4,
        (None, Some(_)) => true,
        (_, None) => false,
    }
}

/// The store operations and token of one commit.
///
/// | origin | intent | fields changed | plan |
/// |---|---|---|---|
/// | any | destroy | any | delete the stored session (if any); forget the token (if the client sent one) |
/// | new, dead token | keep or renew | no | forget the token, so it costs nothing again |
/// | new, no, unusable or ambiguous token | keep or renew | no | nothing: a session never written to is not stored |
/// | new | keep or renew | yes | create it |
/// | stored | renew | any | move it to a new id, with the changes |
/// | stored | keep | yes | save the changed fields, with the refreshed idle deadline |
/// | stored | keep | no | touch (deadlines only) if the current timeouts make them earlier, if they slid by a quarter of the idle timeout, or if the token must be reissued; else nothing |
///
/// "Changed", for a new session, means changed away from the defaults: a session whose
/// fields were all written with their default values is not stored.
pub(crate) fn plan(state: &SessionState, changed: bool, timeouts: &Timeouts, now: u64) -> Plan {
    match (&state.origin, &state.intent) {
        (origin, Intent::Destroy) => Plan::Destroy {
            stored: matches!(origin, Origin::Stored { .. }).then(|| state.id.clone()),
            forget: *origin
                != Origin::New {
                    token: ClientToken::None,
                },
        },
        (
            Origin::New {
                token: ClientToken::Dead,
            },
            _,
        ) if !changed => Plan::Destroy {
            stored: None,
            forget: true,
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

    fn new(token: ClientToken, intent: Intent) -> SessionState {
        let mut state = SessionState::new(id(1), None, token);
        state.intent = intent;
        state
    }

    fn stored(meta: SessionMeta, reseal: bool, intent: Intent) -> SessionState {
        let mut state = SessionState::stored(id(1), meta, meta.expires_ms, reseal);
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
        for token in [
            ClientToken::None,
            ClientToken::Unusable,
            ClientToken::Ambiguous,
        ] {
            assert_eq!(
                plan(&new(token, Intent::Keep), false, &t, T0),
                Plan::Nothing
            );
            let renewed = Intent::Renew { to: Some(id(2)) };
            assert_eq!(plan(&new(token, renewed), false, &t, T0), Plan::Nothing);
        }
    }

    #[test]
    fn a_dead_token_is_forgotten_when_no_session_is_started() {
        let t = timeouts(Some(30), None);
        let forget = Plan::Destroy {
            stored: None,
            forget: true,
        };
        assert_eq!(
            plan(&new(ClientToken::Dead, Intent::Keep), false, &t, T0),
            forget
        );
        assert!(matches!(
            plan(&new(ClientToken::Dead, Intent::Keep), true, &t, T0),
            Plan::Create { .. }
        ));
    }

    #[test]
    fn changed_new_session_is_created_with_fresh_deadlines() {
        let t = timeouts(Some(30), Some(60));
        assert_eq!(
            plan(&new(ClientToken::Dead, Intent::Keep), true, &t, T0),
            Plan::Create {
                id: id(1),
                meta: deadlines(&t, T0, T0)
            }
        );
    }

    #[test]
    fn renewed_new_session_is_created_under_the_renewed_id() {
        let t = timeouts(Some(30), None);
        let state = new(ClientToken::None, Intent::Renew { to: Some(id(2)) });
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
        for token in [
            ClientToken::Dead,
            ClientToken::Unusable,
            ClientToken::Ambiguous,
        ] {
            assert_eq!(
                plan(&new(token, Intent::Destroy), true, &t, T0),
                Plan::Destroy {
                    stored: None,
                    forget: true
                }
            );
        }
        assert_eq!(
            plan(&new(ClientToken::None, Intent::Destroy), true, &t, T0),
            Plan::Destroy {
                stored: None,
                forget: false
            }
        );
    }

    #[test]
    fn a_session_past_the_current_absolute_timeout_is_expired_whatever_it_was_stored_with() {
        // Stored under no timeouts at all, 20 hours ago.
        let stored = deadlines(&timeouts(None, None), T0, T0);
        let now = T0 + 20 * 60 * MIN;
        assert_eq!(tightened(&timeouts(Some(15), Some(60)), &stored, now), None);
        assert!(tightened(&timeouts(Some(15), None), &stored, now).is_some());
    }

    #[test]
    fn an_idle_deadline_beyond_the_current_idle_timeout_is_cut_and_written_at_once() {
        // Stored under a 24 h idle timeout, read under 30 minutes.
        let stored = deadlines(&timeouts(Some(24 * 60), None), T0, T0);
        let t = timeouts(Some(30), None);
        let now = T0 + MIN;
        assert_eq!(tightened(&t, &stored, now), Some(Some(now + 30 * MIN)));
        let state = stored_state(stored);
        assert_eq!(
            plan(&state, false, &t, now),
            Plan::Touch {
                id: id(1),
                meta: deadlines(&t, T0, now)
            }
        );
    }

    #[test]
    fn a_session_stored_without_an_idle_deadline_gets_one_once_configured() {
        let stored = deadlines(&timeouts(None, None), T0, T0);
        let t = timeouts(Some(30), None);
        let now = T0 + 5 * MIN;
        assert_eq!(tightened(&t, &stored, now), Some(Some(now + 30 * MIN)));
        assert!(matches!(
            plan(&stored_state(stored), false, &t, now),
            Plan::Touch { .. }
        ));
    }

    #[test]
    fn a_new_absolute_timeout_is_written_to_sessions_that_had_none() {
        let stored = deadlines(&timeouts(Some(30), None), T0, T0);
        let t = timeouts(Some(30), Some(8 * 60));
        let Plan::Touch { meta, .. } = plan(&stored_state(stored), false, &t, T0 + MIN) else {
            panic!("expected a touch");
        };
        assert_eq!(meta.absolute_ms, Some(T0 + 8 * 60 * MIN));
    }

    #[test]
    fn sessions_within_the_current_timeouts_are_admitted_unchanged() {
        let t = timeouts(Some(30), Some(60));
        let stored = deadlines(&t, T0, T0);
        assert_eq!(
            tightened(&t, &stored, T0 + 10 * MIN),
            Some(stored.expires_ms)
        );
        assert_eq!(
            tightened(&t, &stored, T0 + 30 * MIN),
            None,
            "idle deadline reached"
        );
    }

    fn stored_state(meta: SessionMeta) -> SessionState {
        stored(meta, false, Intent::Keep)
    }

    #[test]
    fn dropping_the_idle_timeout_rewrites_the_old_idle_deadline_once() {
        let stored = deadlines(&timeouts(Some(30), None), T0, T0);
        let t = timeouts(None, Some(8 * 60));
        let now = T0 + 10 * MIN;
        let Plan::Touch { meta, .. } = plan(&stored_state(stored), false, &t, now) else {
            panic!("expected a touch");
        };
        assert_eq!(meta.expires_ms, Some(T0 + 8 * 60 * MIN));
        assert_eq!(
            plan(&stored_state(meta), false, &t, now + MIN),
            Plan::Nothing
        );
    }

    #[test]
    fn clock_skew_below_a_quarter_of_the_idle_timeout_writes_nothing() {
        let t = timeouts(Some(40), None);
        // Touched by an instance whose clock is 9 minutes ahead.
        let stored = deadlines(&t, T0, T0 + 9 * MIN);
        assert_eq!(plan(&stored_state(stored), false, &t, T0), Plan::Nothing);
    }
}
