//! What a request's commit does, as a pure function of the session's state, whether the
//! handler changed any field, the timeouts, and the time: [`plan`]. Its table of cases is the
//! README's list of lifecycle guarantees, and each row is a unit test below.

use std::time::Duration;

use crate::backend::Plan;
use crate::clock::millis;
use crate::handle::{ClientToken, Intent, Origin, SessionState};
use crate::store::SessionMeta;

/// A session's timeouts: the layer's, or those that apply to one session once its own
/// settings (remember-me, a fixed end) are taken into account ([`Timeouts::for_session`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// Expire a session unused this long (sliding).
    pub(crate) idle: Option<Duration>,
    /// Expire a session this long after it started, however much it is used.
    pub(crate) absolute: Option<Duration>,
    /// A fixed end, in milliseconds since the epoch (a session's own `end_at`).
    pub(crate) end_ms: Option<u64>,
}

/// What the layer allows a handler to choose for its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RememberPolicy {
    /// The longest remember-me duration; longer requests are cut to it.
    pub(crate) max: Duration,
    /// The absolute timeout of remembered sessions, when the layer allows them another one
    /// than its own; `None`: the layer's absolute timeout caps them too.
    pub(crate) absolute: Option<Duration>,
}

/// One session's own settings, as stored in its internal fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Lifetime {
    /// Remember me: how long the session lasts since its last use, in milliseconds.
    pub(crate) remember_ms: Option<u64>,
    /// A fixed end, in milliseconds since the epoch.
    pub(crate) end_ms: Option<u64>,
}

impl Timeouts {
    /// The timeouts of one session: a remembered session's idle timeout is its remember
    /// duration (capped by the policy), and its absolute timeout the policy's if the layer
    /// set one, else the layer's; a fixed end only ever shortens the session.
    pub(crate) fn for_session(&self, policy: &RememberPolicy, lifetime: Lifetime) -> Self {
        let mut timeouts = *self;
        if let Some(remember) = lifetime.remember_ms {
            timeouts.idle = Some(Duration::from_millis(remember).min(policy.max));
            if let Some(absolute) = policy.absolute {
                timeouts.absolute = Some(absolute);
            }
        }
        timeouts.end_ms = earliest(self.end_ms, lifetime.end_ms);
        timeouts
    }
}

/// The meta of a session created at `created_ms` and used at `now_ms`: the idle deadline
/// slides, the absolute one (creation plus the absolute timeout, or the fixed end if that is
/// earlier) never moves, and the session expires at the earlier of the two.
pub(crate) fn deadlines(timeouts: &Timeouts, created_ms: u64, now_ms: u64) -> SessionMeta {
    let absolute_ms = earliest(
        timeouts
            .absolute
            .map(|timeout| created_ms.saturating_add(millis(timeout))),
        timeouts.end_ms,
    );
    let idle_ms = timeouts
        .idle
        .map(|timeout| now_ms.saturating_add(millis(timeout)));
    let expires_ms = match (idle_ms, absolute_ms) {
        (Some(idle), Some(absolute)) => Some(idle.min(absolute)),
        (one, other) => one.or(other),
    };
    SessionMeta {
        created_ms,
        seen_ms: now_ms,
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

/// The store operations and token of one commit (or of an explicit `save()`).
///
/// | origin | intent | fields changed | plan |
/// |---|---|---|---|
/// | stored | destroy | no | delete the stored session; forget the token |
/// | stored | destroy | yes (written after `destroy()`) | reset in place: create a fresh session under a new id, created now, with only the new writes; then delete the old one |
/// | new | destroy | no | nothing stored; forget the token if the client sent one |
/// | new | destroy | yes | create it (under the id drawn by `destroy()`) |
/// | new, dead token | keep or renew | no | forget the token, so it costs nothing again |
/// | new, no, unusable or ambiguous token | keep or renew | no | nothing: a session never written to is not stored (a renewal of it neither stores nor sends anything) |
/// | new | keep or renew | yes | create it |
/// | stored | renew | any | move it to a new id, with the changes |
/// | stored | keep | yes | save the changed fields, with the refreshed idle deadline |
/// | stored | keep | no | touch (deadlines only) if the current timeouts make them earlier, if they slid by a quarter of the idle timeout, or if the token must be reissued; else nothing |
///
/// "Changed", for a new session and after `destroy()`, means changed away from the
/// defaults: a session whose fields were all written with their default values is not
/// stored. `timeouts` are the session's own ([`Timeouts::for_session`]): a remembered
/// session's deadlines follow its remember duration, and a fixed end caps them.
pub(crate) fn plan(state: &SessionState, changed: bool, timeouts: &Timeouts, now: u64) -> Plan {
    match (&state.origin, &state.intent) {
        (Origin::Stored { .. }, Intent::Destroy { to }) if changed => Plan::Restart {
            from: state.id.clone(),
            to: to.clone(),
            meta: deadlines(timeouts, now, now),
        },
        (Origin::New { .. }, Intent::Destroy { to }) if changed => Plan::Create {
            id: to.clone().unwrap_or_else(|| state.id.clone()),
            meta: deadlines(timeouts, now, now),
        },
        (origin, Intent::Destroy { .. }) => Plan::Destroy {
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
            end_ms: None,
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
            end_ms: None,
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

    fn destroyed() -> Intent {
        Intent::Destroy { to: Some(id(3)) }
    }

    #[test]
    fn destroying_a_stored_session_deletes_it_and_forgets_the_token() {
        let t = timeouts(Some(30), None);
        let state = stored(meta_at(&t, T0), false, destroyed());
        assert_eq!(
            plan(&state, false, &t, T0),
            Plan::Destroy {
                stored: Some(id(1)),
                forget: true
            }
        );
    }

    #[test]
    fn writes_after_destroy_reset_the_session_in_place_with_a_new_id_and_creation_time() {
        let t = timeouts(Some(30), Some(60));
        // Created at T0, destroyed and written to 50 minutes later.
        let state = stored(meta_at(&t, T0), false, destroyed());
        let now = T0 + 50 * MIN;
        assert_eq!(
            plan(&state, true, &t, now),
            Plan::Restart {
                from: id(1),
                to: Some(id(3)),
                meta: deadlines(&t, now, now)
            }
        );
        // The absolute timeout restarts with the new session.
        let Plan::Restart { meta, .. } = plan(&state, true, &t, now) else {
            unreachable!()
        };
        assert_eq!(meta.created_ms, now);
        assert_eq!(meta.absolute_ms, Some(now + 60 * MIN));
        assert!(Plan::Restart {
            from: id(1),
            to: None,
            meta
        }
        .is_multi_step());
    }

    #[test]
    fn writes_after_destroying_a_new_session_create_it_under_the_id_destroy_drew() {
        let t = timeouts(Some(30), None);
        for token in [ClientToken::None, ClientToken::Dead, ClientToken::Unusable] {
            assert_eq!(
                plan(&new(token, destroyed()), true, &t, T0),
                Plan::Create {
                    id: id(3),
                    meta: deadlines(&t, T0, T0)
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
                plan(&new(token, destroyed()), false, &t, T0),
                Plan::Destroy {
                    stored: None,
                    forget: true
                }
            );
        }
        assert_eq!(
            plan(&new(ClientToken::None, destroyed()), false, &t, T0),
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

    fn policy(max_days: u64, absolute_min: Option<u64>) -> RememberPolicy {
        RememberPolicy {
            max: Duration::from_millis(max_days * 24 * 60 * MIN),
            absolute: absolute_min.map(|m| Duration::from_millis(m * MIN)),
        }
    }

    const DAY: u64 = 24 * 60 * MIN;

    #[test]
    fn a_remembered_session_lasts_its_remember_duration_since_last_use() {
        let layer = timeouts(Some(30), None);
        let lifetime = Lifetime {
            remember_ms: Some(30 * DAY),
            end_ms: None,
        };
        let t = layer.for_session(&policy(400, None), lifetime);
        assert_eq!(t.idle, Some(Duration::from_millis(30 * DAY)));
        let meta = deadlines(&t, T0, T0 + DAY);
        assert_eq!(meta.expires_ms, Some(T0 + 31 * DAY));
        // Without the choice, the layer's timeouts apply unchanged.
        assert_eq!(
            layer.for_session(&policy(400, None), Lifetime::default()),
            layer
        );
    }

    #[test]
    fn the_remember_duration_is_cut_to_the_layers_maximum() {
        let lifetime = Lifetime {
            remember_ms: Some(365 * DAY),
            end_ms: None,
        };
        let t = timeouts(Some(30), None).for_session(&policy(30, None), lifetime);
        assert_eq!(t.idle, Some(Duration::from_millis(30 * DAY)));
    }

    #[test]
    fn the_layers_absolute_timeout_caps_remembered_sessions_unless_it_allows_longer() {
        let layer = timeouts(Some(30), Some(8 * 60));
        let lifetime = Lifetime {
            remember_ms: Some(30 * DAY),
            end_ms: None,
        };
        let capped = layer.for_session(&policy(400, None), lifetime);
        assert_eq!(
            deadlines(&capped, T0, T0).expires_ms,
            Some(T0 + 8 * 60 * MIN),
            "the 8-hour absolute timeout still caps a remembered session"
        );
        let allowed = layer.for_session(&policy(400, Some(90 * 24 * 60)), lifetime);
        let meta = deadlines(&allowed, T0, T0);
        assert_eq!(meta.expires_ms, Some(T0 + 30 * DAY));
        assert_eq!(meta.absolute_ms, Some(T0 + 90 * DAY));
        // The policy's absolute timeout is for remembered sessions only.
        assert_eq!(
            layer.for_session(&policy(400, Some(90 * 24 * 60)), Lifetime::default()),
            layer
        );
    }

    #[test]
    fn a_fixed_end_caps_every_deadline_and_never_extends_one() {
        let layer = timeouts(Some(30), Some(8 * 60));
        let end = Lifetime {
            remember_ms: None,
            end_ms: Some(T0 + 10 * MIN),
        };
        let t = layer.for_session(&policy(400, None), end);
        let meta = deadlines(&t, T0, T0);
        assert_eq!(meta.expires_ms, Some(T0 + 10 * MIN));
        assert_eq!(meta.absolute_ms, Some(T0 + 10 * MIN));
        // Past the end: expired whatever was stored.
        assert_eq!(tightened(&t, &meta, T0 + 10 * MIN), None);
        // An end later than the absolute deadline changes nothing.
        let late = Lifetime {
            remember_ms: None,
            end_ms: Some(T0 + 100 * DAY),
        };
        let t = layer.for_session(&policy(400, None), late);
        assert_eq!(deadlines(&t, T0, T0), deadlines(&layer, T0, T0));
    }

    #[test]
    fn choosing_remember_me_on_a_stored_session_saves_the_longer_deadline() {
        let layer = timeouts(Some(30), None);
        let state = stored(meta_at(&layer, T0), false, Intent::Keep);
        let remembered = layer.for_session(
            &policy(400, None),
            Lifetime {
                remember_ms: Some(30 * DAY),
                end_ms: None,
            },
        );
        // The choice is an internal-field change: a save with the remembered deadline.
        assert_eq!(
            plan(&state, true, &remembered, T0 + MIN),
            Plan::Save {
                id: id(1),
                meta: deadlines(&remembered, T0, T0 + MIN)
            }
        );
    }

    #[test]
    fn a_session_stored_remembered_and_read_again_is_not_cut_to_the_layers_idle_timeout() {
        let remembered = timeouts(Some(30), None).for_session(
            &policy(400, None),
            Lifetime {
                remember_ms: Some(30 * DAY),
                end_ms: None,
            },
        );
        let stored_meta = deadlines(&remembered, T0, T0);
        let now = T0 + 2 * DAY;
        assert_eq!(
            tightened(&remembered, &stored_meta, now),
            Some(stored_meta.expires_ms)
        );
        assert_eq!(
            plan(&stored_state(stored_meta), false, &remembered, now),
            Plan::Nothing
        );
    }

    #[test]
    fn after_an_explicit_save_the_commit_writes_nothing_unless_something_changed_since() {
        // What a save leaves behind: the session stored with the meta it wrote.
        let t = timeouts(Some(30), None);
        let saved = stored(deadlines(&t, T0, T0 + MIN), false, Intent::Keep);
        assert_eq!(plan(&saved, false, &t, T0 + MIN), Plan::Nothing);
        assert!(matches!(
            plan(&saved, true, &t, T0 + MIN),
            Plan::Save { .. }
        ));
    }
}
